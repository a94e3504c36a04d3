//! Reading valid pipelines: every key of the format lands in the domain
//! types, blocks come in topological order, closures follow `needs`, and
//! project-wide checks see across files. Also the JSON Schema.

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use serde_json::json;
use sluice_core::duration::Duration;
use sluice_core::spec::{
    Backoff, BlockKind, Catchup, OnLimit, Pipeline, RetryPolicy, TimeoutStatus, TriggerKind,
    WebhookScheme, json_schema, parse_pipeline, validate_project,
};

const FULL: &str = r#"
description: Nightly load of the orders
tags: [orders, nightly]
variables:
  region: eu-west-1
  day:
    required: true
    description: The day to load
  token:
    default: hunter2
    secret: true
  limits: [1, 2]
  nested:
    default: {a: 1}
  empty:
concurrency: 2
on_limit: skip
block_concurrency: 4
timeout: 1h
timeout_status: warning
sla: 45m
priority: 5
retries: 2
blocks:
  load:
    needs: [transform, extract]
    run: load --region ${{ vars.region }}
    retries: {count: 3, delay: 5s, backoff: exponential, max_delay: 1m}
  extract:
    script: scripts/extract.py
    timeout: 90
    env: {MODE: fast, PORT: 8080}
    labels: {gpu: "true"}
    artifacts: ["out/*.csv"]
    priority: 9
  transform:
    needs: extract
    if: ${{ blocks.extract.outputs.rows > 0 }}
    run: |
      echo "rows: ${{ blocks.extract.outputs.rows }}"
  report:
    needs: [load]
    pipeline: reporting
    variables:
      day: ${{ vars.day }}
      title: "Orders of ${{ vars.day }}"
triggers:
  - name: nightly
    schedule: "0 2 * * *"
    timezone: Europe/London
    catchup: all
    max_catchup: 30
    start: 2026-01-01T00:00:00Z
    variables: {day: "2026-01-01"}
  - name: seconds
    schedule: "*/30 * * * * *"
  - name: last-friday
    schedule: "0 9 * * 5L"
  - name: shorthand
    schedule: "@daily"
    enabled: false
  - name: quarter
    every: 15m
    anchor: 2026-01-01T00:00:00Z
    concurrency: 1
    on_limit: wait
    timeout: 10m
    timeout_status: cancelled
    sla: 5m
  - name: launch
    once: 2026-12-01T09:00:00+01:00
    catchup: none
  - name: forever
    always_on: true
    min_gap: 30s
  - name: api
    api: {token_env: ORDERS_TOKEN}
    variables_from: {day: /day}
  - name: plain-api
    api: true
  - name: github
    webhook: {scheme: github, secret_env: GITHUB_SECRET}
  - name: hook
    webhook: {secret_file: /etc/sluice/hook}
"#;

fn full() -> Pipeline {
    parse_pipeline("orders", "pipelines/orders.yaml", FULL).unwrap_or_else(|diagnostics| {
        panic!(
            "{}",
            diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

#[test]
fn every_pipeline_setting_is_read() {
    let pipeline = full();
    assert_eq!(pipeline.name, "orders");
    assert_eq!(pipeline.file, "pipelines/orders.yaml");
    assert_eq!(
        pipeline.description.as_deref(),
        Some("Nightly load of the orders")
    );
    assert_eq!(pipeline.tags, ["orders", "nightly"]);
    assert_eq!(pipeline.concurrency, NonZeroU32::new(2));
    assert_eq!(pipeline.on_limit, OnLimit::Skip);
    assert_eq!(pipeline.block_concurrency, NonZeroU32::new(4));
    assert_eq!(pipeline.timeout, Some(Duration::from_secs(3600)));
    assert_eq!(pipeline.timeout_status, TimeoutStatus::Warning);
    assert_eq!(pipeline.sla, Some(Duration::from_secs(2700)));
    assert_eq!(pipeline.priority, 5);
    assert_eq!(pipeline.retries.count, 2);
    assert_eq!(pipeline.retries.delay, RetryPolicy::DEFAULT_DELAY);

    let variables = &pipeline.variables;
    assert_eq!(variables["region"].default, Some(json!("eu-west-1")));
    assert!(variables["day"].required && variables["day"].default.is_none());
    assert_eq!(
        variables["day"].description.as_deref(),
        Some("The day to load")
    );
    assert!(variables["token"].secret);
    assert_eq!(variables["limits"].default, Some(json!([1, 2])));
    assert_eq!(variables["nested"].default, Some(json!({"a": 1})));
    assert_eq!(variables["empty"].default, None);
    assert_eq!(
        pipeline.secret_variable_names(),
        BTreeSet::from(["token".to_owned()])
    );
}

#[test]
fn blocks_are_in_topological_order_with_their_settings() {
    let pipeline = full();
    let ids: Vec<&str> = pipeline
        .blocks
        .iter()
        .map(|block| block.id.as_str())
        .collect();
    assert_eq!(ids, ["extract", "transform", "load", "report"]);

    let extract = pipeline.block("extract").unwrap();
    assert_eq!(
        extract.kind,
        BlockKind::Script {
            path: "scripts/extract.py".to_owned()
        }
    );
    assert_eq!(extract.timeout, Some(Duration::from_secs(90)));
    assert_eq!(extract.env["PORT"], "8080");
    assert_eq!(extract.labels["gpu"], "true");
    assert_eq!(extract.artifacts, ["out/*.csv"]);
    assert_eq!(extract.priority, Some(9));
    assert_eq!(extract.retries.count, 2, "the pipeline's retries apply");
    assert_eq!((extract.position.line, extract.position.column), (29, 3));
    assert_eq!(
        (extract.kind_position.line, extract.kind_position.column),
        (30, 13)
    );

    let load = pipeline.block("load").unwrap();
    assert_eq!(load.needs, ["transform", "extract"]);
    assert_eq!(
        load.retries,
        RetryPolicy {
            count: 3,
            delay: Duration::from_secs(5),
            backoff: Backoff::Exponential,
            max_delay: Some(Duration::from_secs(60)),
        }
    );
    let BlockKind::Run { command } = &load.kind else {
        panic!("load runs a command");
    };
    assert_eq!(command.source(), "load --region ${{ vars.region }}");

    let transform = pipeline.block("transform").unwrap();
    assert_eq!(transform.needs, ["extract"]);
    let condition = transform.condition.as_ref().unwrap();
    assert_eq!(condition.source(), "${{ blocks.extract.outputs.rows > 0 }}");

    let report = pipeline.block("report").unwrap();
    let BlockKind::Pipeline { name, variables } = &report.kind else {
        panic!("report runs a pipeline");
    };
    assert_eq!(name, "reporting");
    assert_eq!(variables["title"].source(), "Orders of ${{ vars.day }}");
    assert!(pipeline.block("nope").is_none());
}

#[test]
fn closures_follow_needs_both_ways() {
    let pipeline = full();
    let set = |names: &[&str]| {
        names
            .iter()
            .map(|name| (*name).to_owned())
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(
        pipeline.upstream_closure("report"),
        set(&["extract", "transform", "load"])
    );
    assert_eq!(pipeline.upstream_closure("extract"), set(&[]));
    assert_eq!(
        pipeline.downstream_closure("extract"),
        set(&["transform", "load", "report"])
    );
    assert_eq!(
        pipeline.downstream_closure("transform"),
        set(&["load", "report"])
    );
    assert_eq!(pipeline.downstream_closure("report"), set(&[]));
    assert_eq!(pipeline.downstream_closure("unknown"), set(&[]));
}

#[test]
fn the_file_name_must_be_a_valid_pipeline_name() {
    let diagnostics = parse_pipeline(
        "my pipeline",
        "pipelines/my pipeline.yaml",
        "blocks: {a: {run: x}}",
    )
    .unwrap_err();
    assert_eq!(
        diagnostics[0].to_string(),
        "pipelines/my pipeline.yaml:1:1: `my pipeline` is not a valid pipeline name\n  hint: rename \
         the file: a pipeline's name is its file name, made of letters, digits, `_`, `-` and `.`"
    );
    assert!(
        parse_pipeline(
            "daily.v2-etl_x",
            "pipelines/daily.v2-etl_x.yaml",
            "blocks: {a: {run: x}}"
        )
        .is_ok()
    );
}

#[test]
fn ties_keep_file_order() {
    let pipeline = parse_pipeline(
        "p",
        "pipelines/p.yaml",
        "blocks:\n  c:\n    run: x\n  a:\n    run: x\n  b:\n    needs: c\n    run: x\n  d:\n    run: x\n",
    )
    .unwrap();
    let ids: Vec<&str> = pipeline
        .blocks
        .iter()
        .map(|block| block.id.as_str())
        .collect();
    assert_eq!(ids, ["c", "a", "b", "d"]);
}

#[test]
fn every_trigger_kind_is_read() {
    let pipeline = full();
    let trigger = |name: &str| pipeline.trigger(name).unwrap();
    let nightly = trigger("nightly");
    assert_eq!(
        nightly.kind,
        TriggerKind::Schedule {
            cron: "0 2 * * *".to_owned(),
            timezone: "Europe/London".to_owned()
        }
    );
    assert_eq!(nightly.catchup, Catchup::All);
    assert_eq!(nightly.max_catchup, 30);
    assert_eq!(
        trigger("seconds").max_catchup,
        sluice_core::schedule::DEFAULT_MAX_CATCHUP
    );
    assert_eq!(trigger("launch").catchup, Catchup::None);
    assert_eq!(nightly.start, Some("2026-01-01T00:00:00Z".parse().unwrap()));
    assert_eq!(nightly.variables["day"], json!("2026-01-01"));
    assert!(nightly.enabled);
    assert_eq!(trigger("seconds").catchup, Catchup::Latest);
    assert!(!trigger("shorthand").enabled);
    assert!(
        matches!(&trigger("shorthand").kind, TriggerKind::Schedule { timezone, .. } if timezone == "UTC")
    );

    let quarter = trigger("quarter");
    assert_eq!(
        quarter.kind,
        TriggerKind::Every {
            interval: Duration::from_secs(900),
            anchor: Some("2026-01-01T00:00:00Z".parse().unwrap())
        }
    );
    assert_eq!(quarter.concurrency, NonZeroU32::new(1));
    assert_eq!(quarter.on_limit, Some(OnLimit::Wait));
    assert_eq!(quarter.timeout, Some(Duration::from_secs(600)));
    assert_eq!(quarter.timeout_status, Some(TimeoutStatus::Cancelled));
    assert_eq!(quarter.sla, Some(Duration::from_secs(300)));

    assert_eq!(
        trigger("launch").kind,
        TriggerKind::Once {
            at: "2026-12-01T08:00:00Z".parse().unwrap()
        }
    );
    assert_eq!(
        trigger("forever").kind,
        TriggerKind::AlwaysOn {
            min_gap: Some(Duration::from_secs(30))
        }
    );
    assert_eq!(
        trigger("api").kind,
        TriggerKind::Api {
            token_env: Some("ORDERS_TOKEN".to_owned())
        }
    );
    assert_eq!(trigger("api").variables_from["day"], "/day");
    assert_eq!(
        trigger("plain-api").kind,
        TriggerKind::Api { token_env: None }
    );
    assert_eq!(
        trigger("github").kind,
        TriggerKind::Webhook {
            scheme: WebhookScheme::Github,
            secret_env: Some("GITHUB_SECRET".to_owned()),
            secret_file: None
        }
    );
    assert_eq!(
        trigger("hook").kind,
        TriggerKind::Webhook {
            scheme: WebhookScheme::Standard,
            secret_env: None,
            secret_file: Some("/etc/sluice/hook".to_owned())
        }
    );
    assert_eq!(trigger("hook").kind.key(), "webhook");
}

#[test]
fn yaml_features_are_supported() {
    // Anchors and merge keys share settings; YAML 1.1 words stay strings.
    let source = r#"
variables:
  country: no
  answer: yes
x-defaults: &defaults
  retries: 1
  timeout: 5m
blocks:
  a:
    <<: *defaults
    run: echo a
"#;
    let diagnostics = parse_pipeline("p", "pipelines/p.yaml", source).unwrap_err();
    assert_eq!(
        diagnostics.len(),
        1,
        "unknown top-level keys are still refused"
    );
    assert!(diagnostics[0].message.contains("x-defaults"));

    let source = r#"
variables:
  country: no
  answer: yes
blocks:
  a: &a
    retries: 1
    timeout: 5m
    run: echo a
  b:
    <<: *a
    needs: a
"#;
    let pipeline = parse_pipeline("p", "pipelines/p.yaml", source).unwrap();
    assert_eq!(pipeline.variables["country"].default, Some(json!("no")));
    assert_eq!(pipeline.variables["answer"].default, Some(json!("yes")));
    let b = pipeline.block("b").unwrap();
    assert_eq!(b.timeout, Some(Duration::from_secs(300)));
    assert_eq!(b.retries.count, 1);
}

#[test]
fn project_checks_span_files() {
    let parent = parse_pipeline(
        "parent",
        "pipelines/parent.yaml",
        "blocks:\n  child:\n    pipeline: child\n    variables: {day: x, extra: y}\n  ghost:\n    pipeline: chlid\n",
    )
    .unwrap();
    let child = parse_pipeline(
        "child",
        "pipelines/child.yaml",
        "variables:\n  day: {required: true}\n  region: {required: true}\n  batch: {required: true, default: 1}\nblocks:\n  back:\n    pipeline: parent\n",
    )
    .unwrap();
    let rendered: Vec<String> = validate_project(&[parent.clone(), child.clone()])
        .iter()
        .map(ToString::to_string)
        .collect();
    insta::assert_snapshot!(rendered.join("\n"));

    let alone = parse_pipeline(
        "solo",
        "pipelines/solo.yaml",
        "blocks:\n  me:\n    pipeline: solo\n",
    )
    .unwrap();
    let rendered: Vec<String> = validate_project(&[alone])
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        rendered,
        [
            "pipelines/solo.yaml:3:15: block `me` runs its own pipeline `solo`\n  hint: a pipeline cannot run itself"
        ]
    );

    let fine = parse_pipeline("a", "pipelines/a.yaml", "blocks:\n  b:\n    pipeline: b\n").unwrap();
    let b = parse_pipeline("b", "pipelines/b.yaml", "blocks:\n  x:\n    run: echo\n").unwrap();
    assert!(validate_project(&[fine, b]).is_empty());
}

#[test]
fn the_json_schema_describes_the_file() {
    let schema = json_schema();
    let text = serde_json::to_string(&schema).unwrap();
    let reparsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(reparsed, schema);
    let properties = &schema["properties"];
    assert!(properties["blocks"].is_object());
    assert!(properties["triggers"].is_object());
    assert_eq!(schema["additionalProperties"], json!(false));
    assert!(
        properties["timeout_status"].to_string().contains("warning"),
        "{}",
        properties["timeout_status"]
    );
    assert!(
        text.contains("A shell command"),
        "doc comments become descriptions"
    );
    assert!(text.contains("schedule"));
    assert!(text.contains("\"minimum\":1"), "limits of at least 1");
    assert_eq!(schema["required"], json!(["blocks"]));
    let block = &schema["$defs"]["Block"];
    assert_eq!(
        block["oneOf"].as_array().unwrap().len(),
        3,
        "one of run, script, pipeline"
    );
    assert_eq!(block["additionalProperties"], json!(false));
    assert_eq!(
        schema["$defs"]["Trigger"]["oneOf"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    let trigger = &schema["$defs"]["Trigger"]["properties"];
    assert_eq!(trigger["max_catchup"]["maximum"], json!(10000));
    // A webhook is settings with exactly one secret source, never a bare
    // `true`.
    assert_eq!(
        schema["$defs"]["WebhookSettings"]["oneOf"],
        json!([{"required": ["secret_env"]}, {"required": ["secret_file"]}])
    );
    assert!(
        !schema["$defs"]["Webhook"].to_string().contains("boolean"),
        "{}",
        schema["$defs"]["Webhook"]
    );
}
