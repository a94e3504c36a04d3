//! Variable resolution in layers, masking, and CLI assignments.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sluice_core::spec::{VariableSpec, parse_pipeline};
use sluice_core::vars::{
    ResolvedVariables, VariableLayer, VariablesError, parse_assignment, resolve_variables,
};

fn spec() -> BTreeMap<String, VariableSpec> {
    BTreeMap::from([
        (
            "region".to_owned(),
            VariableSpec {
                default: Some(json!("eu")),
                ..VariableSpec::default()
            },
        ),
        (
            "token".to_owned(),
            VariableSpec {
                default: Some(json!("s3cret")),
                secret: true,
                ..VariableSpec::default()
            },
        ),
        (
            "day".to_owned(),
            VariableSpec {
                required: true,
                ..VariableSpec::default()
            },
        ),
        (
            "batch".to_owned(),
            VariableSpec {
                required: true,
                default: Some(json!(100)),
                ..VariableSpec::default()
            },
        ),
        ("note".to_owned(), VariableSpec::default()),
    ])
}

fn values(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_owned(), value.clone()))
        .collect()
}

#[test]
fn higher_layers_win_and_the_layer_is_recorded() {
    let trigger = values(&[("region", json!("us")), ("day", json!("2026-01-01"))]);
    let backfill = values(&[("day", json!("2026-02-01"))]);
    let run = values(&[("region", json!("ap"))]);
    let resolved = resolve_variables(
        &spec(),
        &[
            (VariableLayer::Trigger, &trigger),
            (VariableLayer::Backfill, &backfill),
            (VariableLayer::Run, &run),
        ],
    )
    .unwrap();
    let layer = |name: &str| resolved.0[name].layer;
    assert_eq!(resolved.0["region"].value, json!("ap"));
    assert_eq!(layer("region"), VariableLayer::Run);
    assert_eq!(resolved.0["day"].value, json!("2026-02-01"));
    assert_eq!(layer("day"), VariableLayer::Backfill);
    assert_eq!(resolved.0["batch"].value, json!(100));
    assert_eq!(layer("batch"), VariableLayer::Default);
    assert_eq!(resolved.0["note"].value, Value::Null);
    assert!(resolved.0["token"].secret);

    assert_eq!(resolved.values()["token"], json!("s3cret"));
    assert_eq!(resolved.masked()["token"], json!("***"));
    assert_eq!(resolved.masked()["region"], json!("ap"));
    assert_eq!(resolved.secret_values(), vec!["s3cret".to_owned()]);
}

#[test]
fn resolved_variables_round_trip_as_json() {
    let run = values(&[("day", json!("2026-01-01"))]);
    let resolved = resolve_variables(&spec(), &[(VariableLayer::Run, &run)]).unwrap();
    let text = serde_json::to_string(&resolved).unwrap();
    let stored: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        stored["day"],
        json!({"value": "2026-01-01", "layer": "run", "secret": false})
    );
    let back: ResolvedVariables = serde_json::from_str(&text).unwrap();
    assert_eq!(back, resolved);
    let empty: ResolvedVariables = serde_json::from_str("{}").unwrap();
    assert!(empty.0.is_empty());
}

#[test]
fn every_missing_required_variable_is_named_at_once() {
    let spec = BTreeMap::from([
        (
            "day".to_owned(),
            VariableSpec {
                required: true,
                ..VariableSpec::default()
            },
        ),
        (
            "region".to_owned(),
            VariableSpec {
                required: true,
                ..VariableSpec::default()
            },
        ),
    ]);
    let error = resolve_variables(&spec, &[]).unwrap_err();
    assert_eq!(
        error,
        VariablesError::Missing {
            names: vec!["day".to_owned(), "region".to_owned()]
        }
    );
    assert_eq!(
        error.to_string(),
        "missing required variables `day`, `region`"
    );
    assert!(error.hint().unwrap().contains("-v day=VALUE"));
}

#[test]
fn a_value_for_an_undeclared_variable_is_refused() {
    let run = values(&[("regin", json!("us")), ("day", json!("x"))]);
    let error = resolve_variables(&spec(), &[(VariableLayer::Run, &run)]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown variable `regin`; the pipeline declares: batch, day, note, region, token"
    );
    assert_eq!(
        error.hint().unwrap(),
        "did you mean `region` instead of `regin`?"
    );

    let pipeline = parse_pipeline(
        "etl",
        "pipelines/etl.yaml",
        "variables: {a: 1, b: 2}\nblocks:\n  x:\n    run: echo\n",
    )
    .unwrap();
    let run = values(&[("fo", json!("1"))]);
    let error = pipeline
        .resolve_variables(&[(VariableLayer::Run, &run)])
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown variable `fo`; pipeline `etl` declares: a, b"
    );
    assert!(error.hint().is_some());
}

#[test]
fn cli_assignments_keep_the_value_as_text() {
    assert_eq!(
        parse_assignment("day=2026-01-01").unwrap(),
        ("day".to_owned(), json!("2026-01-01"))
    );
    assert_eq!(
        parse_assignment("n=5").unwrap(),
        ("n".to_owned(), json!("5"))
    );
    assert_eq!(
        parse_assignment("q=a=b").unwrap(),
        ("q".to_owned(), json!("a=b"))
    );
    assert_eq!(parse_assignment("e=").unwrap(), ("e".to_owned(), json!("")));
    assert_eq!(
        parse_assignment("novalue"),
        Err(VariablesError::InvalidAssignment("novalue".to_owned()))
    );
    assert_eq!(
        parse_assignment("1x=2"),
        Err(VariablesError::InvalidName("1x".to_owned()))
    );
    assert_eq!(
        parse_assignment("a-b=2"),
        Err(VariablesError::InvalidName("a-b".to_owned()))
    );
}

#[test]
fn layers_serialize_in_snake_case() {
    assert_eq!(
        serde_json::to_value(VariableLayer::Backfill).unwrap(),
        json!("backfill")
    );
    assert!(VariableLayer::Default < VariableLayer::Trigger);
    assert!(VariableLayer::Backfill < VariableLayer::Run);
}
