use serde::Deserialize;
use serde_saphyr::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Blk { run: Option<Spanned<String>>, needs: Option<Vec<Spanned<String>>>, timeout: Option<Spanned<u32>> }

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Top { description: Option<String>, blocks: Spanned<Pairs> }
#[derive(Debug)] struct Pairs(Vec<(Spanned<String>, Spanned<Blk>)>);
impl<'de> Deserialize<'de> for Pairs { fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> { struct V; impl<'de> serde::de::Visitor<'de> for V { type Value = Pairs; fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result { f.write_str("map") } fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Pairs, A::Error> { let mut v = vec![]; while let Some(k) = m.next_key()? { v.push((k, m.next_value()?)); } Ok(Pairs(v)) } } d.deserialize_map(V) } }

fn show(src: &str) {
    let r: Result<Option<Top>, _> = serde_saphyr::from_str_with_options(src, serde_saphyr::options!{ with_snippet: false });
    match r {
        Ok(v) => println!("OK {}", format!("{v:?}").replace("source_id: 0", "").chars().take(600).collect::<String>()),
        Err(e) => println!("ERR loc={:?} msg={} debug={:?}", e.location().map(|l| (l.line(), l.column(), l.span())), e, e),
    }
}

#[test]
fn scratch() {
    show("blocks:\n  a:\n    run: echo hi\n    needs: [b, c]\n  b:\n    run: |\n      x\n      y\n");
    show("blocks:\n  a:\n    neds: [b]\n");
    show("blocks:\n  a:\n    run: x\n  a:\n    run: y\n");
    show("blocks:\n  a:\n    run: x\n    timeout: abc\n");
    show("");
    show("# only comment\n");
    show("blocks: [\n");
    show("- a\n- b\n");
    show("blocks:\n  a: &x\n    run: x\n  b: *x\n");
    show("description: x\nblocks:\n  a:\n    run: [1]\n");
}
