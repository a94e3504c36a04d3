//! The operational settings of a pipeline: `drift:` (how many completed runs
//! make the duration baseline and when a run is flagged `slow`) and
//! `retention:` (how long finished runs are kept). Their raw forms are read
//! with positions and checked here, so that a bad value is reported at its
//! place in the file.

use schemars::JsonSchema;
use serde::Deserialize;

use super::span::Sp;
use super::validate::Checker;

/// The duration baseline of a pipeline and the rule that flags a run `slow`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DriftPolicy {
    /// How many of the latest completed runs make the baseline.
    pub runs: u32,
    /// A completed run is slow when it took longer than the baseline's p95
    /// times this factor.
    pub factor: f64,
    /// The fewest completed runs a baseline needs before any run is judged.
    pub min_runs: u32,
}

impl DriftPolicy {
    /// The most runs a baseline may hold: enough for a stable p95, few
    /// enough that reading them stays cheap when every run finishes.
    pub const MAX_RUNS: u32 = 1_000;

    pub const DEFAULT: DriftPolicy = DriftPolicy {
        runs: 20,
        factor: 1.5,
        min_runs: 5,
    };
}

impl Default for DriftPolicy {
    fn default() -> Self {
        DriftPolicy::DEFAULT
    }
}

/// How long the finished runs of a pipeline are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Finished runs created more than this many days ago are deleted.
    pub days: u32,
    /// The latest runs kept whatever their age.
    pub keep_last: u32,
}

impl RetentionPolicy {
    /// The latest runs kept when `keep_last` is not given.
    pub const DEFAULT_KEEP_LAST: u32 = 10;
}

/// `drift:` in a pipeline file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with optional `runs`, `factor` and `min_runs`"
)]
#[schemars(rename = "Drift")]
pub(crate) struct RawDrift {
    /// How many of the latest completed runs make the duration baseline
    /// (median and p95, for the run and for each block). The default is 20;
    /// at most 1000.
    #[schemars(range(min = 1, max = 1000))]
    pub runs: Option<Sp<u32>>,
    /// A completed run is flagged `slow` when it took longer than the
    /// baseline's p95 times this factor. The default is 1.5; it must be at
    /// least 1.
    #[schemars(range(min = 1.0))]
    pub factor: Option<Sp<f64>>,
    /// The fewest completed runs the baseline needs before a run can be
    /// flagged `slow`. The default is 5 (or `runs`, when that is smaller).
    #[schemars(range(min = 1))]
    pub min_runs: Option<Sp<u32>>,
}

/// `retention:` in a pipeline file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `days` and an optional `keep_last`"
)]
#[schemars(rename = "Retention", extend("required" = ["days"]))]
pub(crate) struct RawRetention {
    /// Finished runs created more than this many days ago are deleted with
    /// their block runs, tries, logs, outputs and artifacts. Running runs
    /// are never deleted.
    #[schemars(range(min = 1))]
    pub days: Option<Sp<u32>>,
    /// The latest runs of the pipeline kept whatever their age. The default
    /// is 10.
    pub keep_last: Option<Sp<u32>>,
}

impl Checker<'_> {
    pub(super) fn drift(&mut self, raw: Option<&Sp<RawDrift>>) -> DriftPolicy {
        let Some(raw) = raw else {
            return DriftPolicy::DEFAULT;
        };
        let mut policy = DriftPolicy::DEFAULT;
        if let Some(runs) = &raw.value.runs {
            if runs.value == 0 || runs.value > DriftPolicy::MAX_RUNS {
                self.error(
                    runs.pos,
                    format!(
                        "`runs` of `drift` must be between 1 and {}, not {}",
                        DriftPolicy::MAX_RUNS,
                        runs.value
                    ),
                    Some("omit it for the default of 20 runs".to_owned()),
                );
            } else {
                policy.runs = runs.value;
            }
        }
        policy.min_runs = policy.min_runs.min(policy.runs);
        if let Some(factor) = &raw.value.factor {
            if !factor.value.is_finite() || factor.value < 1.0 {
                self.error(
                    factor.pos,
                    format!(
                        "`factor` of `drift` must be at least 1, not {}",
                        factor.value
                    ),
                    Some(
                        "a run is slow when it takes longer than p95 × factor; 1.5 is the default"
                            .to_owned(),
                    ),
                );
            } else {
                policy.factor = factor.value;
            }
        }
        if let Some(min_runs) = &raw.value.min_runs {
            if min_runs.value == 0 || min_runs.value > policy.runs {
                self.error(
                    min_runs.pos,
                    format!(
                        "`min_runs` of `drift` must be between 1 and `runs` ({}), not {}",
                        policy.runs, min_runs.value
                    ),
                    Some("raise `runs` or lower `min_runs`".to_owned()),
                );
            } else {
                policy.min_runs = min_runs.value;
            }
        }
        policy
    }

    pub(super) fn retention(&mut self, raw: Option<&Sp<RawRetention>>) -> Option<RetentionPolicy> {
        let raw = raw?;
        let days = match &raw.value.days {
            Some(days) if days.value == 0 => {
                self.error(
                    days.pos,
                    "`days` of `retention` must be at least 1",
                    Some("omit `retention` to keep every run".to_owned()),
                );
                None
            }
            Some(days) => Some(days.value),
            None => {
                self.error(
                    raw.pos,
                    "`retention` needs `days`",
                    Some("write for example `retention: {days: 30, keep_last: 10}`".to_owned()),
                );
                None
            }
        };
        let keep_last = raw
            .value
            .keep_last
            .as_ref()
            .map_or(RetentionPolicy::DEFAULT_KEEP_LAST, |keep| keep.value);
        days.map(|days| RetentionPolicy { days, keep_last })
    }
}
