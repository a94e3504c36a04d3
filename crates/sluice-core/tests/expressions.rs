//! Expressions: parsing, references, and an evaluation table covering
//! literals, references, loose comparison, truthiness, `&&`/`||`, and the
//! status functions.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_core::expr::{BlockFacts, EvalContext, EvalError, Expr, Reference, RunFacts};
use sluice_core::status::BlockRunStatus;

struct World {
    vars: BTreeMap<String, Value>,
    blocks: BTreeMap<String, BlockFacts>,
    run: RunFacts,
}

fn world() -> World {
    World {
        vars: BTreeMap::from([
            ("env".to_owned(), json!("prod")),
            ("count".to_owned(), json!(10)),
            ("ratio".to_owned(), json!(0.5)),
            ("text_number".to_owned(), json!("10")),
            ("empty".to_owned(), json!("")),
            ("zero".to_owned(), json!(0)),
            ("nothing".to_owned(), Value::Null),
            ("flag".to_owned(), json!(true)),
            ("list".to_owned(), json!(["a", "b", 3])),
            ("map".to_owned(), json!({"k": 1})),
        ]),
        blocks: BTreeMap::from([
            (
                "extract".to_owned(),
                BlockFacts {
                    status: BlockRunStatus::Completed,
                    outputs: BTreeMap::from([
                        ("rows".to_owned(), "42".to_owned()),
                        ("name".to_owned(), "orders-2026".to_owned()),
                    ]),
                },
            ),
            (
                "load".to_owned(),
                BlockFacts {
                    status: BlockRunStatus::UpstreamFailed,
                    outputs: BTreeMap::new(),
                },
            ),
        ]),
        run: RunFacts {
            id: "run-7".to_owned(),
            pipeline: "etl".to_owned(),
            attempt: 2,
        },
    }
}

fn eval_with(src: &str, upstreams: &[BlockRunStatus]) -> bool {
    let world = world();
    let ctx = EvalContext {
        vars: &world.vars,
        blocks: &world.blocks,
        upstreams,
        run: &world.run,
    };
    Expr::parse(src)
        .unwrap_or_else(|error| panic!("{src}: {error}"))
        .evaluate(&ctx)
        .unwrap_or_else(|error| panic!("{src}: {error}"))
}

fn eval(src: &str) -> bool {
    eval_with(src, &[])
}

#[test]
fn evaluation_table() {
    let table: &[(&str, bool)] = &[
        // literals and truthiness
        ("true", true),
        ("false", false),
        ("null", false),
        ("0", false),
        ("1", true),
        ("-1.5", true),
        ("''", false),
        ("'x'", true),
        ("\"x\"", true),
        ("vars.empty", false),
        ("vars.zero", false),
        ("vars.nothing", false),
        ("vars.list", true),
        ("vars.map", true),
        // references and equality
        ("vars.env == 'prod'", true),
        ("vars.env == \"prod\"", true),
        ("vars.env != 'prod'", false),
        ("vars.env == 'Prod'", false),
        ("run.id == 'run-7'", true),
        ("run.pipeline == 'etl'", true),
        ("run.attempt == 2", true),
        ("run.attempt > 1", true),
        ("blocks.extract.status == 'completed'", true),
        ("blocks.load.status == 'upstream_failed'", true),
        ("blocks.extract.outputs.rows == 42", true),
        ("blocks.extract.outputs.rows > 9", true),
        ("blocks.extract.outputs.rows >= 42", true),
        ("blocks.extract.outputs.rows < 100", true),
        ("blocks.extract.outputs.rows <= 41", false),
        // a missing output, block or variable value is null
        ("blocks.extract.outputs.missing == null", true),
        ("blocks.nowhere.outputs.x == null", true),
        ("blocks.nowhere.status == null", true),
        ("!blocks.extract.outputs.missing", true),
        // loose comparison
        ("vars.text_number == 10", true),
        ("vars.count == '10'", true),
        ("vars.count == ' 10 '", true),
        ("vars.count == 'ten'", false),
        ("vars.count != 'ten'", true),
        ("vars.count > 'ten'", false),
        ("'10' > '9'", false),
        ("10 > 9", true),
        ("vars.ratio < 1", true),
        ("vars.flag == 1", true),
        ("vars.flag == true", true),
        ("null == 0", true),
        ("null == ''", true),
        ("'' == 0", true),
        ("vars.list == vars.list", true),
        ("vars.list != 'a'", true),
        ("0x10 == 16", true),
        // operators and precedence
        ("!false", true),
        ("!!'x'", true),
        ("true && false", false),
        ("true || false", true),
        ("false || false || 'x'", true),
        ("true && true && 0", false),
        ("false && true || true", true),
        ("!(true && false)", true),
        (
            "(vars.env == 'dev' || vars.env == 'prod') && vars.count >= 10",
            true,
        ),
        ("${{ vars.env == 'prod' }}", true),
        ("  ${{ false }}  ", false),
        // functions
        ("always()", true),
        ("contains(vars.list, 'b')", true),
        ("contains(vars.list, 3)", true),
        ("contains(vars.list, '3')", true),
        ("contains(vars.list, 'c')", false),
        ("contains(blocks.extract.outputs.name, '2026')", true),
        ("contains('abc', 'B')", false),
        ("startsWith(blocks.extract.outputs.name, 'orders-')", true),
        ("startsWith(vars.env, 'dev')", false),
        ("startsWith(run.attempt, 2)", true),
        ("'it''s' == \"it's\"", true),
        ("'a\"b' == \"a\\\"b\"", true),
    ];
    for (src, expected) in table {
        assert_eq!(eval(src), *expected, "{src}");
    }
}

#[test]
fn status_functions_read_the_direct_upstreams() {
    use BlockRunStatus::*;
    let cases: &[(&[BlockRunStatus], bool, bool)] = &[
        (&[], true, false),
        (&[Completed, Completed], true, false),
        (&[Completed, Failed], false, true),
        (&[UpstreamFailed], false, true),
        (&[Cancelled], false, false),
        (&[ConditionFailed], false, false),
    ];
    for (upstreams, success, failure) in cases {
        assert_eq!(eval_with("success()", upstreams), *success, "{upstreams:?}");
        assert_eq!(eval_with("failure()", upstreams), *failure, "{upstreams:?}");
        assert!(eval_with("always()", upstreams));
        assert_eq!(
            eval_with("failure() || success()", upstreams),
            *success || *failure
        );
    }
}

#[test]
fn values_of_and_and_or_are_operands() {
    let world = world();
    let ctx = EvalContext {
        vars: &world.vars,
        blocks: &world.blocks,
        upstreams: &[],
        run: &world.run,
    };
    let value = |src: &str| Expr::parse(src).unwrap().evaluate_value(&ctx).unwrap();
    assert_eq!(value("vars.nothing || 'eu'"), json!("eu"));
    assert_eq!(value("vars.env || 'eu'"), json!("prod"));
    assert_eq!(value("vars.env && vars.count"), json!(10));
    assert_eq!(value("vars.zero && vars.count"), json!(0));
    assert_eq!(value("3"), json!(3));
    assert_eq!(value("2.5"), json!(2.5));
}

#[test]
fn an_undeclared_variable_is_an_evaluation_error() {
    let world = world();
    let ctx = EvalContext {
        vars: &world.vars,
        blocks: &world.blocks,
        upstreams: &[],
        run: &world.run,
    };
    let error = Expr::parse("vars.nope == 1")
        .unwrap()
        .evaluate(&ctx)
        .unwrap_err();
    assert_eq!(error, EvalError::UnknownVariable("nope".to_owned()));
}

#[test]
fn references_and_status_function_use() {
    let expr = Expr::parse(
        "vars.a == blocks.b.outputs.c && blocks.d-e.status == 'failed' || run.id || failure()",
    )
    .unwrap();
    assert_eq!(
        expr.references(),
        vec![
            Reference::Var("a".to_owned()),
            Reference::BlockOutput {
                block: "b".to_owned(),
                key: "c".to_owned()
            },
            Reference::BlockStatus {
                block: "d-e".to_owned()
            },
            Reference::Run("id".to_owned()),
        ]
    );
    assert!(expr.uses_status_functions());
    assert!(!Expr::parse("vars.a").unwrap().uses_status_functions());
    assert!(Expr::parse("!always()").unwrap().uses_status_functions());
    assert!(
        Expr::parse("contains(vars.a, success())")
            .unwrap()
            .uses_status_functions()
    );
    assert_eq!(Expr::parse(" vars.a ").unwrap().source(), " vars.a ");
}

#[test]
fn parse_errors_have_an_offset_and_a_message() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "empty expression"),
        ("vars.", 5, "expected a variable name"),
        ("vars.a ==", 9, "ends too early"),
        ("vars.a = 'x'", 7, "unexpected character `=`"),
        ("vars.a & true", 7, "unexpected character `&`"),
        ("'open", 0, "unterminated string"),
        ("foo.bar", 0, "unknown name `foo`"),
        ("run.nope", 4, "unknown field `run.nope`"),
        ("blocks.b.result", 9, "unknown field `blocks.b.result`"),
        ("blocks.b.outputs", 16, "expected an output key"),
        ("nope()", 0, "unknown function `nope()`"),
        ("contains('a')", 0, "takes 2 arguments, found 1"),
        ("success(1)", 0, "takes 0 arguments, found 1"),
        ("(true", 5, "expected `)`"),
        ("true false", 5, "unexpected `false` after the end"),
        ("${{ true }} && ${{ false }}", 0, "unexpected character `$`"),
        ("1.2.3", 0, "is not a number"),
    ];
    for (src, offset, message) in cases {
        let error = Expr::parse(src).expect_err(src);
        assert_eq!(error.offset, *offset, "{src}: {error}");
        assert!(error.message.contains(message), "{src}: {error}");
    }
    assert!(Expr::parse("foo").unwrap_err().hint.is_some());
}

#[test]
fn nesting_is_bounded_without_overflowing_the_stack() {
    let deep = format!("{}true{}", "(".repeat(100_000), ")".repeat(100_000));
    let error = Expr::parse(&deep).unwrap_err();
    assert!(error.message.contains("nested"), "{error}");
    let nots = format!("{}true", "!".repeat(100_000));
    assert!(Expr::parse(&nots).is_err());
    let comparisons = vec!["1"; 10_000].join(" == ");
    assert!(Expr::parse(&comparisons).is_err());
    // Long flat chains are not nesting.
    let chain = vec!["false"; 10_000].join(" || ") + " || true";
    assert!(eval(&chain));
    let nested_ok = format!("{}true{}", "(".repeat(30), ")".repeat(30));
    assert!(eval(&nested_ok));
}
