//! Hostile and random input: `parse_pipeline` never panics, refuses
//! resource-exhausting files (huge, deeply nested, alias bombs) with a clear
//! error instead of consuming memory and time, and always gives a real
//! position.

use proptest::prelude::*;
use sluice_core::spec::{Diagnostic, MAX_BLOCKS, MAX_FILE_BYTES, parse_pipeline};

fn parse(source: &str) -> Result<(), Vec<Diagnostic>> {
    parse_pipeline("hostile", "pipelines/hostile.yaml", source).map(|_| ())
}

fn first_error(source: &str) -> String {
    let diagnostics = parse(source).expect_err("hostile input must be refused");
    for diagnostic in &diagnostics {
        assert!(
            diagnostic.line >= 1 && diagnostic.column >= 1,
            "{diagnostic}"
        );
    }
    diagnostics[0].to_string()
}

#[test]
fn empty_and_garbage_are_refused() {
    assert!(first_error("").contains("pipeline has no blocks"));
    assert!(first_error("\n\n   \n").contains("pipeline has no blocks"));
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    first_error(&String::from_utf8_lossy(&garbage));
    first_error("\u{0}\u{1}\u{2}");
    first_error("\u{feff}:::");
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_parsing() {
    let big = "a: b\n".repeat(2_000_000);
    assert!(big.len() > MAX_FILE_BYTES);
    let error = first_error(&big);
    assert!(error.contains("too large"), "{error}");
}

#[test]
fn deep_nesting_is_refused() {
    for source in [
        "[".repeat(100_000),
        "{a: ".repeat(100_000),
        format!(
            "triggers: [{{name: t, variables: {{x: {}",
            "[".repeat(100_000)
        ),
        format!(
            "variables:\n  x: {}1{}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
    ] {
        let error = first_error(&source);
        assert!(error.contains("nested"), "{error}");
    }
    // Block-style nesting, one level per line.
    let mut deep = String::from("variables:\n  x:\n    default:\n");
    for level in 0..1_000 {
        deep.push_str(&" ".repeat(6 + level * 2));
        deep.push_str("a:\n");
    }
    let error = first_error(&deep);
    assert!(error.contains("nested"), "{error}");
}

#[test]
fn an_alias_bomb_is_refused() {
    let bomb = r#"
variables:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
blocks:
  a:
    run: echo
"#;
    let error = first_error(bomb);
    assert!(error.contains("alias"), "{error}");
    // A few aliases are fine.
    let shared = "variables:\n  a: &a [1, 2]\n  b: *a\nblocks:\n  x:\n    run: echo\n";
    assert!(parse(shared).is_ok());
}

#[test]
fn very_long_lines_are_handled() {
    let description = format!(
        "description: {}\nblocks:\n  a:\n    run: x\n",
        "x".repeat(3_000_000)
    );
    assert!(parse(&description).is_ok());
    first_error(&format!("{}: 1\n", "k".repeat(3_000_000)));
    let run = format!(
        "blocks:\n  a:\n    run: {}\n",
        "${{ run.id }} ".repeat(200_000)
    );
    assert!(parse(&run).is_ok());
    let undeclared = format!(
        "blocks:\n  a:\n    run: {}\n",
        "${{ vars.x }} ".repeat(200_000)
    );
    let diagnostics = parse(&undeclared).unwrap_err();
    assert!(diagnostics.len() <= 101, "diagnostics are capped");
    assert!(
        diagnostics
            .iter()
            .any(|d| d.message.contains("more problems are not shown"))
    );
    let condition = format!(
        "blocks:\n  a:\n    run: x\n    if: {}\n",
        vec!["true"; 200_000].join(" || ")
    );
    assert!(parse(&condition).is_ok());
}

#[test]
fn too_many_blocks_are_refused() {
    let blocks: String = (0..=MAX_BLOCKS)
        .map(|i| format!("  b{i}: {{run: x}}\n"))
        .collect();
    let error = first_error(&format!("blocks:\n{blocks}"));
    assert!(error.contains("limit"), "{error}");
}

#[test]
fn long_dependency_chains_do_not_overflow_the_stack() {
    let mut source = String::from("blocks:\n  b0:\n    run: x\n");
    for i in 1..5_000 {
        source.push_str(&format!(
            "  b{i}:\n    needs: b{}\n    run: echo ${{{{ blocks.b0.outputs.x }}}}\n",
            i - 1
        ));
    }
    let pipeline = parse_pipeline("chain", "pipelines/chain.yaml", &source).unwrap();
    assert_eq!(pipeline.upstream_closure("b4999").len(), 4_999);
    assert_eq!(pipeline.downstream_closure("b0").len(), 4_999);
    // The same chain closed into a cycle.
    let cyclic = source.replacen(
        "  b0:\n    run: x\n",
        "  b0:\n    needs: b4999\n    run: x\n",
        1,
    );
    let error = first_error(&cyclic);
    assert!(
        error.contains("dependency cycle: b0 -> b4999 -> b4998"),
        "{}",
        &error[..200.min(error.len())]
    );
}

const TOKENS: &[&str] = &[
    "blocks:",
    "triggers:",
    "variables:",
    "\n",
    "\n  ",
    "\n    ",
    "  ",
    " ",
    "a:",
    "b:",
    "run: ",
    "script: ",
    "pipeline: ",
    "needs: ",
    "if: ",
    "timeout: ",
    "retries: ",
    "- ",
    "name: ",
    "schedule: ",
    "every: ",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "&x ",
    "*x",
    "'",
    "\"",
    "#",
    "|",
    ">",
    "${{",
    "}}",
    "vars.a",
    "blocks.a.outputs.k",
    "success()",
    "==",
    "&&",
    "1",
    "-1",
    "0",
    "90s",
    "1h30m",
    "0 2 * * *",
    "true",
    "null",
    "~",
    "!!str",
    "---",
    "...",
    "<<: ",
    "\t",
    "\\",
    "ü",
    "\u{0}",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let source = String::from_utf8_lossy(&bytes);
        if let Err(diagnostics) = parse(&source) {
            prop_assert!(!diagnostics.is_empty());
            for diagnostic in diagnostics {
                prop_assert!(diagnostic.line >= 1 && diagnostic.column >= 1, "{}", diagnostic);
            }
        }
    }

    #[test]
    fn random_yaml_like_text_never_panics(
        tokens in proptest::collection::vec(proptest::sample::select(TOKENS), 0..120)
    ) {
        let source = tokens.concat();
        match parse(&source) {
            Ok(()) => {}
            Err(diagnostics) => {
                prop_assert!(!diagnostics.is_empty());
                for diagnostic in diagnostics {
                    prop_assert!(diagnostic.line >= 1 && diagnostic.column >= 1, "{}", diagnostic);
                }
            }
        }
    }

    #[test]
    fn random_blocks_never_panic(
        ids in proptest::collection::vec("[a-c]", 1..6),
        needs in proptest::collection::vec(proptest::collection::vec("[a-d]", 0..3), 1..6),
        commands in proptest::collection::vec("[ -~]{0,30}", 1..6),
    ) {
        let mut source = String::from("variables:\n  a: 1\nblocks:\n");
        for (index, id) in ids.iter().enumerate() {
            source.push_str(&format!("  {id}{index}:\n"));
            let need: Vec<String> = needs[index % needs.len()]
                .iter()
                .map(|need| format!("{need}{}", index.saturating_sub(1)))
                .collect();
            source.push_str(&format!("    needs: [{}]\n", need.join(", ")));
            let command = serde_json::to_string(&commands[index % commands.len()]).unwrap();
            source.push_str(&format!("    run: {command}\n"));
        }
        if let Err(diagnostics) = parse(&source) {
            for diagnostic in diagnostics {
                prop_assert!(diagnostic.line >= 1 && diagnostic.column >= 1, "{}", diagnostic);
            }
        }
    }
}
