//! What a pipeline file looks like: the serde types that read
//! `pipelines/<name>.yaml`, with the position of every value that
//! validation may complain about. Their doc comments are the format
//! reference, and they generate the published JSON Schema
//! ([`super::json_schema`]).
//!
//! Values that need checking beyond their type (durations, expressions,
//! cron patterns, times) are read as text here and checked in
//! `validate.rs`, so that one file reports all of its problems at once
//! instead of stopping at the first.

use std::fmt;
use std::marker::PhantomData;

use schemars::JsonSchema;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::notify::RawNotify;
use super::operations::{RawDrift, RawRetention};
use super::span::Sp;
use super::{Backoff, Catchup, OnLimit, TimeoutStatus, WebhookScheme};

/// A sluice pipeline: a DAG of blocks, with variables, triggers and limits.
/// The file name (without `.yaml`) is the pipeline's name.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a pipeline: a mapping with `blocks` and optional settings"
)]
#[schemars(
    title = "sluice pipeline",
    rename = "Pipeline",
    extend("required" = ["blocks"])
)]
pub(crate) struct RawPipeline {
    /// What the pipeline is for, shown in the UI and the CLI.
    pub description: Option<Sp<String>>,
    /// Free-form tags to find and filter pipelines and their runs by.
    pub tags: Option<Vec<Sp<String>>>,
    /// The variables a run of this pipeline takes, by name
    /// (`[A-Za-z_][A-Za-z0-9_]*`). A run resolves them in layers, lowest
    /// first: these defaults < the trigger's values < a backfill window <
    /// the values given for the run. Blocks read them as
    /// `${{ vars.NAME }}`, `$SLUICE_VAR_<NAME>` and `$SLUICE_VARIABLES`.
    #[schemars(extend("propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}))]
    pub variables: Option<RawMap<RawVariable>>,
    /// The most runs of this pipeline that may be running at once. Omit it
    /// for no limit.
    #[schemars(range(min = 1))]
    pub concurrency: Option<Sp<u32>>,
    /// What happens to a new run when `concurrency` runs are already
    /// running: `wait` (the default) queues it, `skip` cancels it at once.
    pub on_limit: Option<OnLimit>,
    /// The most blocks of one run that may be running at once. Omit it for
    /// no limit.
    #[schemars(range(min = 1))]
    pub block_concurrency: Option<Sp<u32>>,
    /// How long a run may take before it ends with `timeout_status`.
    pub timeout: Option<Sp<DurationText>>,
    /// How a run that exceeds `timeout` ends: `failed` (the default),
    /// `cancelled`, or `warning` (the run goes on and is only flagged).
    pub timeout_status: Option<TimeoutStatus>,
    /// How long a run may take before it is flagged as having missed its
    /// SLA. It keeps running.
    pub sla: Option<Sp<DurationText>>,
    /// Automatic retries for every block that does not set its own.
    pub retries: Option<Sp<RawRetries>>,
    /// Runs with a higher priority are admitted and their blocks claimed
    /// first. The default is 0; negative values are allowed.
    pub priority: Option<i32>,
    /// The blocks, by id (`[A-Za-z_][A-Za-z0-9_-]*`). Blocks run in
    /// dependency order (`needs`); independent blocks may run in parallel.
    #[schemars(extend(
        "propertyNames" = {"pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"},
        "minProperties" = 1
    ))]
    pub blocks: Option<Sp<RawMap<RawBlock>>>,
    /// What starts runs of this pipeline besides a manual run.
    pub triggers: Option<Vec<Sp<RawTrigger>>>,
    /// The duration baseline and when a run is flagged `slow`, such as
    /// `{runs: 20, factor: 1.5, min_runs: 5}` (the defaults).
    pub drift: Option<Sp<RawDrift>>,
    /// How long finished runs are kept, such as `{days: 30, keep_last: 10}`.
    /// Without it, the server's default applies (`--retention-days`), else
    /// every run is kept.
    pub retention: Option<Sp<RawRetention>>,
    /// Where notifications of this pipeline's runs go: named `channels`
    /// (a signed `webhook`, a `slack` incoming webhook, or email over
    /// `smtp`) and, under `on`, which events go to which channels.
    pub notify: Option<Sp<RawNotify>>,
}

/// One block: exactly one of `run`, `script` or `pipeline`, plus optional
/// settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a block: a mapping with one of `run`, `script` or `pipeline`"
)]
#[schemars(
    rename = "Block",
    extend("oneOf" = [
        {"required": ["run"]},
        {"required": ["script"]},
        {"required": ["pipeline"]}
    ])
)]
pub(crate) struct RawBlock {
    /// A shell command, run by `bash -eo pipefail -c` in the project
    /// directory. Values
    /// substituted by `${{ vars.NAME }}`, `${{ blocks.ID.outputs.KEY }}` or
    /// `${{ run.id }}` are shell-quoted for the place they land in, so they
    /// are always data, never code.
    pub run: Option<Sp<String>>,
    /// A script to execute, relative to the project directory (for example
    /// `scripts/load.py`). `.py` runs with python3, `.sh` with bash, `.js`
    /// with node; other files are executed directly.
    pub script: Option<Sp<String>>,
    /// The name of another pipeline of the project, run as a child of this
    /// block; the block completes when the child run does.
    pub pipeline: Option<Sp<String>>,
    /// The blocks that must finish before this one starts: a list of block
    /// ids, or one id.
    pub needs: Option<Sp<RawNeeds>>,
    /// A condition; the block is skipped (`condition_failed`) when it is
    /// false. Without `success()`, `failure()` or `always()` the block also
    /// needs every upstream block to have completed. Example:
    /// `vars.env == 'prod' && blocks.check.outputs.rows > 0`.
    #[serde(rename = "if")]
    pub condition: Option<Sp<String>>,
    /// Automatic retries of this block; the default is the pipeline's
    /// `retries`, else none.
    pub retries: Option<Sp<RawRetries>>,
    /// How long one try of this block may run before it is killed and fails.
    pub timeout: Option<Sp<DurationText>>,
    /// Extra environment variables for the block's process. Names starting
    /// with `SLUICE_` are reserved.
    pub env: Option<RawMap<String>>,
    /// Labels an agent must offer to run this block, such as `gpu: "true"`.
    pub labels: Option<RawMap<String>>,
    /// Globs, relative to the project directory, of files to keep as
    /// artifacts once the block has run (besides those left in
    /// `$SLUICE_ARTIFACTS`).
    pub artifacts: Option<Vec<Sp<String>>>,
    /// This block's claim priority; the default is the run's priority.
    pub priority: Option<i32>,
    /// Only for `pipeline:` blocks: values of the child pipeline's
    /// variables. They may contain `${{ }}`.
    pub variables: Option<Sp<RawMap<String>>>,
}

/// A variable: either its default value (`region: eu-west-1`) or a mapping
/// of settings.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Variable")]
pub(crate) enum RawVariable {
    Settings(RawVariableSettings),
    /// The default value (any value but a mapping; use `default:` for one).
    Default(Value),
}

/// A variable's settings.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a variable's settings: `default`, `secret`, `required`, `description`"
)]
#[schemars(rename = "VariableSettings")]
pub(crate) struct RawVariableSettings {
    /// The value used when no layer sets one.
    pub default: Option<Value>,
    /// A secret is masked as `***` in the API, the UI, logs, outputs and
    /// exports.
    #[serde(default)]
    pub secret: bool,
    /// A run is refused when this variable has no value (a default counts).
    #[serde(default)]
    pub required: bool,
    /// What the variable means, shown where values are entered.
    pub description: Option<String>,
}

/// `needs`: one block id or a list of them.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Needs")]
pub(crate) enum RawNeeds {
    One(String),
    Many(Vec<Sp<String>>),
}

/// `retries`: a number of retries (with a 10s constant delay), or a policy.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Retries")]
pub(crate) enum RawRetries {
    Count(u32),
    Policy(RawRetryPolicy),
}

/// A retry policy.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a retry policy: `count`, `delay`, `backoff`, `max_delay`"
)]
#[schemars(rename = "RetryPolicy")]
pub(crate) struct RawRetryPolicy {
    /// How many times a failed try is retried (at most 100).
    pub count: Sp<u32>,
    /// The wait before the first retry; the default is 10s.
    pub delay: Option<Sp<DurationText>>,
    /// `constant` (the default) waits `delay` every time; `exponential`
    /// doubles the wait after each retry.
    pub backoff: Option<Backoff>,
    /// The longest wait between two tries.
    pub max_delay: Option<Sp<DurationText>>,
}

/// One trigger: a `name` and exactly one kind (`schedule`, `every`, `once`,
/// `always_on`, `api` or `webhook`), plus optional settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a trigger: a mapping with `name` and one of `schedule`, `every`, `once`, \
                 `always_on`, `api`, `webhook`"
)]
#[schemars(
    rename = "Trigger",
    extend("oneOf" = [
        {"required": ["schedule"]},
        {"required": ["every"]},
        {"required": ["once"]},
        {"required": ["always_on"]},
        {"required": ["api"]},
        {"required": ["webhook"]}
    ])
)]
pub(crate) struct RawTrigger {
    /// The trigger's name, unique within the pipeline.
    pub name: Sp<String>,
    /// A cron pattern: 5 fields, or 6 with seconds first. `L`, `W`, `#`
    /// and `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly` are
    /// supported. Example: `0 2 * * *`.
    pub schedule: Option<Sp<String>>,
    /// The IANA time zone a `schedule` is read in, such as `Europe/London`;
    /// the default is `UTC`.
    pub timezone: Option<Sp<String>>,
    /// Start a run at a fixed interval of real time (at least `1s`), such
    /// as `15m`.
    pub every: Option<Sp<DurationText>>,
    /// For `every`: a time the intervals are counted from (RFC 3339); runs
    /// fall on it and on every whole number of intervals before and after
    /// it. The default is 1970-01-01T00:00:00Z, so `15m` runs on the
    /// quarter hours of UTC.
    pub anchor: Option<Sp<String>>,
    /// Start one run at this time (RFC 3339), such as `2026-12-01T09:00:00Z`.
    pub once: Option<Sp<String>>,
    /// `true`: keep one run going at all times; a new run starts when the
    /// previous one ends.
    pub always_on: Option<Sp<bool>>,
    /// For `always_on`: the least time between the end of a run and the
    /// start of the next.
    pub min_gap: Option<Sp<DurationText>>,
    /// Runs started through this trigger's own API endpoint, protected by
    /// the trigger's token: `true` (the server issues the token), or
    /// settings.
    pub api: Option<Sp<RawApi>>,
    /// Runs started by signed HTTP deliveries: settings with a `scheme` and
    /// a secret (`secret_env` or `secret_file`).
    pub webhook: Option<Sp<RawWebhook>>,
    /// Variable values for runs of this trigger.
    pub variables: Option<RawMap<Value>>,
    /// For `api` and `webhook`: variables taken from the request's JSON
    /// body, as `variable: /json/pointer`.
    pub variables_from: Option<RawMap<String>>,
    /// `false` keeps the trigger defined but starts no runs. The default is
    /// `true`.
    pub enabled: Option<bool>,
    /// For `schedule` and `every`: no run is scheduled before this time
    /// (RFC 3339).
    pub start: Option<Sp<String>>,
    /// For `schedule` and `every`: no run is scheduled after this time
    /// (RFC 3339).
    pub end: Option<Sp<String>>,
    /// For `schedule`, `every` and `once`: what to do about times missed
    /// while sluice was down: `none` (skip them), `latest` (the default: one
    /// run for the most recent missed time) or `all` (one run for each, up
    /// to `max_catchup`).
    pub catchup: Option<Catchup>,
    /// For `schedule` and `every` with `catchup: all`: the most runs created
    /// at once for missed times, the most recent ones. The default is 100;
    /// at most 10000.
    #[schemars(range(min = 1, max = 10000))]
    pub max_catchup: Option<Sp<u32>>,
    /// Overrides the pipeline's `concurrency` for runs of this trigger.
    #[schemars(range(min = 1))]
    pub concurrency: Option<Sp<u32>>,
    /// Overrides the pipeline's `on_limit` for runs of this trigger.
    pub on_limit: Option<OnLimit>,
    /// Overrides the pipeline's `timeout` for runs of this trigger.
    pub timeout: Option<Sp<DurationText>>,
    /// Overrides the pipeline's `timeout_status` for runs of this trigger.
    pub timeout_status: Option<TimeoutStatus>,
    /// Overrides the pipeline's `sla` for runs of this trigger.
    pub sla: Option<Sp<DurationText>>,
    /// Merged over the pipeline's `notify` for runs of this trigger: its
    /// channels are added, and its `on` and `attempts` replace the
    /// pipeline's.
    pub notify: Option<Sp<RawNotify>>,
}

/// `api`: `true`, or settings.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Api")]
pub(crate) enum RawApi {
    Enabled(bool),
    Settings(RawApiSettings),
}

/// Settings of an `api` trigger.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, expecting = "api settings: `token_env`")]
#[schemars(rename = "ApiSettings")]
pub(crate) struct RawApiSettings {
    /// The environment variable (of the server) holding the trigger's
    /// token, which callers of this trigger's endpoint must present. Without
    /// it the server issues a token.
    pub token_env: Option<Sp<String>>,
}

/// `webhook`: settings with a scheme and a secret. Every webhook needs a
/// secret, so a bare `true` is refused.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "Webhook")]
pub(crate) enum RawWebhook {
    #[schemars(skip)]
    Enabled(bool),
    Settings(RawWebhookSettings),
}

/// Settings of a `webhook` trigger: a scheme and exactly one secret source.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "webhook settings: `scheme`, `secret_env` or `secret_file`"
)]
#[schemars(
    rename = "WebhookSettings",
    extend("oneOf" = [
        {"required": ["secret_env"]},
        {"required": ["secret_file"]}
    ])
)]
pub(crate) struct RawWebhookSettings {
    /// How requests are signed: `standard` (HMAC-SHA256 of the body in
    /// `X-Sluice-Signature`, the default) or `github` (`X-Hub-Signature-256`).
    pub scheme: Option<WebhookScheme>,
    /// The environment variable (of the server) holding the signing secret.
    pub secret_env: Option<Sp<String>>,
    /// A file (of the server) holding the signing secret.
    pub secret_file: Option<Sp<String>>,
}

/// A duration as written: `90s`, `10m`, `2h`, `1d`, `500ms`, `1h30m`, or an
/// integer number of seconds. Checked during validation.
#[derive(Debug, Clone)]
pub(crate) enum DurationText {
    Text(String),
    Seconds(u64),
    /// Anything else that is a scalar (a negative or fractional number), kept
    /// for the error message.
    Invalid(String),
}

impl JsonSchema for DurationText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        crate::duration::Duration::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        crate::duration::Duration::json_schema(generator)
    }
}

/// A mapping that keeps its keys' order and positions.
#[derive(Debug)]
pub(crate) struct RawMap<T>(pub Vec<(Sp<String>, Sp<T>)>);

impl<T: JsonSchema> JsonSchema for RawMap<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let values = generator.subschema_for::<T>();
        schemars::json_schema!({
            "type": "object",
            "additionalProperties": values,
        })
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for RawMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for MapVisitor<T> {
            type Value = RawMap<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMap<T>, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Sp<String>>()? {
                    let value = map.next_value::<Sp<T>>()?;
                    entries.push((key, value));
                }
                Ok(RawMap(entries))
            }

            fn visit_unit<E: de::Error>(self) -> Result<RawMap<T>, E> {
                Ok(RawMap(Vec::new()))
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

/// Implements `Deserialize` for a two-form value (a scalar shorthand or a
/// mapping of settings) without serde's buffering for untagged enums, which
/// would lose positions and error details.
macro_rules! visit_map_as {
    ($settings:ty) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            <$settings>::deserialize(de::value::MapAccessDeserializer::new(map)).map(Into::into)
        }
    };
}

impl From<RawVariableSettings> for RawVariable {
    fn from(settings: RawVariableSettings) -> Self {
        RawVariable::Settings(settings)
    }
}

impl<'de> Deserialize<'de> for RawVariable {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VariableVisitor;

        impl<'de> Visitor<'de> for VariableVisitor {
            type Value = RawVariable;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a default value, or a mapping of `default`, `secret`, `required`, `description`")
            }

            visit_map_as!(RawVariableSettings);

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RawVariable, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(RawVariable::Default)
            }

            fn visit_unit<E: de::Error>(self) -> Result<RawVariable, E> {
                Ok(RawVariable::Settings(RawVariableSettings::default()))
            }

            fn visit_none<E: de::Error>(self) -> Result<RawVariable, E> {
                self.visit_unit()
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawVariable, E> {
                Ok(RawVariable::Default(Value::Bool(v)))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawVariable, E> {
                Ok(RawVariable::Default(Value::from(v)))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawVariable, E> {
                Ok(RawVariable::Default(Value::from(v)))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawVariable, E> {
                Ok(RawVariable::Default(
                    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
                ))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawVariable, E> {
                Ok(RawVariable::Default(Value::String(v.to_owned())))
            }
        }

        deserializer.deserialize_any(VariableVisitor)
    }
}

impl<'de> Deserialize<'de> for RawNeeds {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NeedsVisitor;

        impl<'de> Visitor<'de> for NeedsVisitor {
            type Value = RawNeeds;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a block id or a list of block ids")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawNeeds, E> {
                Ok(RawNeeds::One(v.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNeeds, A::Error> {
                let mut ids = Vec::new();
                while let Some(id) = seq.next_element::<Sp<String>>()? {
                    ids.push(id);
                }
                Ok(RawNeeds::Many(ids))
            }
        }

        deserializer.deserialize_any(NeedsVisitor)
    }
}

impl From<RawRetryPolicy> for RawRetries {
    fn from(policy: RawRetryPolicy) -> Self {
        RawRetries::Policy(policy)
    }
}

impl<'de> Deserialize<'de> for RawRetries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RetriesVisitor;

        impl<'de> Visitor<'de> for RetriesVisitor {
            type Value = RawRetries;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a number of retries, or a mapping of `count`, `delay`, `backoff`, `max_delay`",
                )
            }

            visit_map_as!(RawRetryPolicy);

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawRetries, E> {
                u32::try_from(v)
                    .map(RawRetries::Count)
                    .map_err(|_| E::custom("too many retries"))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawRetries, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("the number of retries cannot be negative"))
                    .and_then(|v| self.visit_u64(v))
            }
        }

        deserializer.deserialize_any(RetriesVisitor)
    }
}

/// `api:` and `webhook:` take `true` or a mapping of settings.
macro_rules! bool_or_settings {
    ($raw:ident, $settings:ident, $expecting:literal) => {
        impl From<$settings> for $raw {
            fn from(settings: $settings) -> Self {
                $raw::Settings(settings)
            }
        }

        impl<'de> Deserialize<'de> for $raw {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct BoolOrSettings;

                impl<'de> Visitor<'de> for BoolOrSettings {
                    type Value = $raw;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }

                    visit_map_as!($settings);

                    fn visit_bool<E: de::Error>(self, v: bool) -> Result<$raw, E> {
                        Ok($raw::Enabled(v))
                    }

                    fn visit_unit<E: de::Error>(self) -> Result<$raw, E> {
                        Ok($raw::Settings($settings::default()))
                    }
                }

                deserializer.deserialize_any(BoolOrSettings)
            }
        }
    };
}

bool_or_settings!(
    RawApi,
    RawApiSettings,
    "`true` or a mapping with `token_env`"
);
bool_or_settings!(
    RawWebhook,
    RawWebhookSettings,
    "a mapping of `scheme` and `secret_env` or `secret_file`"
);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = DurationText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like 90s, 10m or 1h30m")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationText, E> {
                Ok(DurationText::Seconds(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationText, E> {
                Ok(match u64::try_from(v) {
                    Ok(seconds) => DurationText::Seconds(seconds),
                    Err(_) => DurationText::Invalid(v.to_string()),
                })
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationText, E> {
                Ok(DurationText::Invalid(v.to_string()))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationText, E> {
                Ok(DurationText::Text(v.to_owned()))
            }
        }

        deserializer.deserialize_any(DurationVisitor)
    }
}
