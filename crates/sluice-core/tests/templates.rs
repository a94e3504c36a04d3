//! Templates: parsing, plain rendering, and shell rendering checked against
//! real POSIX shells: a hostile value must reach the process byte for byte
//! and run nothing, wherever in the command it is substituted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use serde_json::{Value, json};
use sluice_core::expr::{BlockFacts, EvalContext, Reference, RunFacts};
use sluice_core::status::BlockRunStatus;
use sluice_core::template::{Template, shell_quote};

const HOSTILE: &[&str] = &[
    "$(touch pwned); ' \" \\",
    "`touch pwned`",
    "'; touch pwned; '",
    "\"; touch pwned; \"",
    "${HOME}$PATH$((1+1))",
    "a\nb\n\ntouch pwned",
    "\\",
    "\\\\'\\\"",
    "",
    " ",
    "'",
    "''",
    "\"",
    "$'\\x41'",
    "!!",
    "*",
    "~root",
    "{a,b}",
    "#not a comment",
    "\tTab\r\n",
    "ünïcödé ✓",
    "EOF\ntouch pwned\nEOF",
];

/// The exact output of a template for a value.
type Expected = dyn Fn(&str) -> String;

/// A scratch directory owned by one shell run.
fn scratch_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sluice-core-templates-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The shells to check against: `sh` always, `bash` when installed.
fn shells() -> Vec<&'static str> {
    let mut shells = vec!["sh"];
    if Command::new("bash")
        .arg("-c")
        .arg("true")
        .status()
        .is_ok_and(|s| s.success())
    {
        shells.push("bash");
    }
    shells
}

/// Runs `script` in a fresh directory; returns stdout, and fails if the
/// script created a `pwned` file.
fn run(shell: &str, script: &str) -> Vec<u8> {
    let dir = scratch_dir();
    let output = Command::new(shell)
        .arg("-c")
        .arg(script)
        .current_dir(&dir)
        .output()
        .unwrap();
    let pwned = dir.join("pwned").exists();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(!pwned, "{shell} ran part of a value as code: {script}");
    assert!(
        output.status.success(),
        "{shell} failed on {script:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn render(template: &str, value: &str) -> String {
    let vars = BTreeMap::from([("v".to_owned(), Value::String(value.to_owned()))]);
    let blocks = BTreeMap::new();
    let run = RunFacts {
        id: "run-1".to_owned(),
        pipeline: "p".to_owned(),
        attempt: 1,
    };
    let ctx = EvalContext {
        vars: &vars,
        blocks: &blocks,
        upstreams: &[],
        run: &run,
    };
    Template::parse(template)
        .unwrap()
        .render_shell(&ctx)
        .unwrap()
}

#[test]
fn shell_quote_gives_back_the_exact_bytes() {
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote(""), "''");
    for shell in shells() {
        for value in HOSTILE {
            let out = run(shell, &format!("printf %s {}", shell_quote(value)));
            assert_eq!(out, value.as_bytes(), "{shell}: {value:?}");
        }
    }
}

#[test]
fn a_value_is_data_wherever_it_is_substituted() {
    // Each template, and the exact output it must give for a value.
    let plain = |value: &str| format!("<{value}>");
    let wrapped = |value: &str| format!("<pre-{value}-post>");
    let dotted = |value: &str| format!("<{value}.>");
    let cases: [(&str, &Expected); 13] = [
        ("printf '<%s>' ${{ vars.v }}", &plain),
        ("printf '<%s>' '${{ vars.v }}'", &plain),
        ("printf '<%s>' \"${{ vars.v }}\"", &plain),
        ("printf '<%s>' pre-${{ vars.v }}-post", &wrapped),
        ("printf '<%s>' 'pre-${{ vars.v }}-post'", &wrapped),
        ("printf '<%s>' \"pre-${{ vars.v }}-post\"", &wrapped),
        ("x=${{ vars.v }}; printf '<%s>' \"$x\"", &plain),
        ("printf '<%s>' \"$(printf '%s.' ${{ vars.v }})\"", &dotted),
        (
            "printf '<%s>' \"$(printf '%s.' \"${{ vars.v }}\")\"",
            &dotted,
        ),
        ("printf '<%s>' $(printf 1)${{ vars.v }}", &|value: &str| {
            format!("<1{value}>")
        }),
        (
            "cat <<EOF\nhere\nEOF\nprintf '<%s>' ${{ vars.v }}",
            &|value: &str| format!("here\n<{value}>"),
        ),
        (
            "printf '<%s>' \"${#HOME}\"${{ vars.v }} >/dev/null; printf '<%s>' ${{ vars.v }}",
            &plain,
        ),
        ("printf '<%s>' ${{ vars.v }} # ${{ vars.v }}", &plain),
    ];
    for shell in shells() {
        for (template, expected) in cases {
            for value in HOSTILE {
                let script = render(template, value);
                let out = String::from_utf8(run(shell, &script)).unwrap();
                assert_eq!(
                    out,
                    expected(value),
                    "{shell}: {template:?} with {value:?}\n{script}"
                );
            }
        }
    }
}

#[test]
fn places_where_quoting_cannot_protect_a_value_are_refused() {
    let refused = [
        "echo `echo ${{ vars.v }}`",
        "cat <<EOF\n${{ vars.v }}\nEOF",
        "cat <<'EOF'\n${{ vars.v }}\nEOF",
        "cat <<-EOF\n\t${{ vars.v }}\n\tEOF",
        "echo ${x:-${{ vars.v }}}",
        "echo \"${x:-${{ vars.v }}}\"",
        "echo $(( ${{ vars.v }} + 1 ))",
        "(( ${{ vars.v }} > 1 ))",
        "for (( i = ${{ vars.v }}; i < 2; i++ )); do :; done",
        "echo \\${{ vars.v }}",
        "echo \"\\${{ vars.v }}\"",
        "echo $${{ vars.v }}",
        "echo $'${{ vars.v }}'",
        "echo $[ ${{ vars.v }} ]",
    ];
    for src in refused {
        let template = Template::parse(src).unwrap();
        let error = template.check_shell().expect_err(src);
        assert_eq!(&src[error.offset..error.offset + 3], "${{", "{src}");
        assert!(error.message.contains("cannot be quoted safely"), "{error}");
        assert!(error.hint.is_some());
    }
    let accepted = [
        "cat <<EOF\nplain\nEOF\necho ${{ vars.v }}",
        "echo <<<${{ vars.v }}",
        "echo \"${#HOME}\" ${{ vars.v }}",
        "echo $((1 + 1)) ${{ vars.v }}",
        "echo `date` ${{ vars.v }}",
        "echo # ${{ vars.v }}",
    ];
    for src in accepted {
        Template::parse(src).unwrap().check_shell().expect(src);
    }
}

#[test]
fn parse_errors_point_at_the_problem() {
    let error = Template::parse("echo ${{ vars.x ").unwrap_err();
    assert_eq!(error.offset, 5);
    assert!(error.message.contains("unterminated"));
    let error = Template::parse("echo ${{ vars.x == }}").unwrap_err();
    assert_eq!(error.offset, 19);
    let error = Template::parse("echo ${{ }}").unwrap_err();
    assert!(error.message.contains("empty"), "{error}");
}

#[test]
fn plain_rendering_references_and_values() {
    let template = Template::parse(
        "${{ vars.n }}/${{ blocks.b.outputs.k }}/${{ run.id }}/${{ '}}' }}/${{ vars.missing }}",
    )
    .unwrap();
    assert_eq!(
        template.references(),
        vec![
            Reference::Var("n".to_owned()),
            Reference::BlockOutput {
                block: "b".to_owned(),
                key: "k".to_owned()
            },
            Reference::Run("id".to_owned()),
            Reference::Var("missing".to_owned()),
        ]
    );
    let vars = BTreeMap::from([
        ("n".to_owned(), json!(3)),
        ("missing".to_owned(), Value::Null),
        ("list".to_owned(), json!([1, "a"])),
    ]);
    let blocks = BTreeMap::from([(
        "b".to_owned(),
        BlockFacts {
            status: BlockRunStatus::Completed,
            outputs: BTreeMap::from([("k".to_owned(), "v w".to_owned())]),
        },
    )]);
    let run = RunFacts {
        id: "r1".to_owned(),
        pipeline: "p".to_owned(),
        attempt: 2,
    };
    let ctx = EvalContext {
        vars: &vars,
        blocks: &blocks,
        upstreams: &[],
        run: &run,
    };
    assert_eq!(template.render_plain(&ctx).unwrap(), "3/v w/r1/}}/");
    assert_eq!(
        template.render_shell(&ctx).unwrap(),
        "'3'/'v w'/'r1'/'}}'/''"
    );
    assert_eq!(template.source(), template.to_string());

    let single = Template::parse("${{ vars.list }}").unwrap();
    assert_eq!(single.render_value(&ctx).unwrap(), json!([1, "a"]));
    assert_eq!(single.render_plain(&ctx).unwrap(), r#"[1,"a"]"#);
    let mixed = Template::parse("n=${{ vars.n }}").unwrap();
    assert_eq!(mixed.render_value(&ctx).unwrap(), json!("n=3"));
    let fallback = Template::parse("${{ vars.missing || 'eu' }}").unwrap();
    assert_eq!(fallback.render_plain(&ctx).unwrap(), "eu");
    assert!(
        Template::parse("no substitution")
            .unwrap()
            .references()
            .is_empty()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_text_survives_shell_quoting(value in "[^\u{0}]{0,40}") {
        let out = run("sh", &format!("printf %s {}", shell_quote(&value)));
        prop_assert_eq!(out, value.as_bytes());
    }
}
