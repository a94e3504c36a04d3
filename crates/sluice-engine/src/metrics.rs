//! The process's metrics, rendered in the Prometheus text format
//! (version 0.0.4) for `GET /metrics`.
//!
//! Counters and histograms are kept in memory by this process (each server
//! reports its own, as Prometheus expects); gauges (runs by pipeline and
//! status, queue depth, agents by status) are read from the store when the
//! metrics are rendered, so every server reports the same ledger.
//!
//! The registry is written by hand rather than with the `metrics` crates:
//! it is a few dozen lines, adds nothing to the build, and keeps every
//! label under our control. Label values are bounded: pipeline names of the
//! project, statuses, route templates (never a path with an id), methods
//! and status classes; never a run id.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use sluice_store::RunQuery;

use crate::{Engine, Result};

/// The buckets of every duration histogram, in seconds.
const SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0, 14400.0,
];

/// The most queued block runs and agents counted for the gauges.
const GAUGE_LIMIT: u32 = 10_000;

type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Debug)]
struct Histogram {
    /// Observations at or below each bucket's bound (not cumulative yet).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; SECONDS_BUCKETS.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        let value = if value.is_finite() {
            value.max(0.0)
        } else {
            0.0
        };
        if let Some(index) = SECONDS_BUCKETS.iter().position(|bound| value <= *bound) {
            self.counts[index] += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

#[derive(Default)]
struct Registry {
    counters: BTreeMap<(&'static str, Labels), u64>,
    histograms: BTreeMap<(&'static str, Labels), Histogram>,
}

/// The in-memory counters and histograms of this process.
#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

/// The families this process reports: name, type and help.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "sluice_runs",
        "gauge",
        "Runs of each pipeline of the project, by status.",
    ),
    (
        "sluice_queue_depth",
        "gauge",
        "Block runs waiting in the queue, by pipeline.",
    ),
    (
        "sluice_agents",
        "gauge",
        "Remote agents by status (live, draining, silent).",
    ),
    (
        "sluice_block_run_duration_seconds",
        "histogram",
        "How long block runs took from their first try's start to their end, by pipeline and status.",
    ),
    (
        "sluice_queue_wait_seconds",
        "histogram",
        "How long a block run waited in the queue before a try of it was claimed, by pipeline.",
    ),
    (
        "sluice_lease_expiries_total",
        "counter",
        "Tries lost because their lease expired.",
    ),
    (
        "sluice_retries_total",
        "counter",
        "Retries: `block` for automatic retries of a block run, `run` for new attempts of a run.",
    ),
    (
        "sluice_api_request_duration_seconds",
        "histogram",
        "API request latency, by route template, method and status class.",
    ),
];

impl Metrics {
    fn with<T>(&self, change: impl FnOnce(&mut Registry) -> T) -> T {
        let mut registry = self
            .registry
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        change(&mut registry)
    }

    fn observe(&self, name: &'static str, labels: Labels, value: f64) {
        self.with(|registry| {
            registry
                .histograms
                .entry((name, labels))
                .or_insert_with(Histogram::new)
                .observe(value);
        });
    }

    fn count(&self, name: &'static str, labels: Labels) {
        self.with(|registry| *registry.counters.entry((name, labels)).or_default() += 1);
    }

    /// A block run ended with `status` after `seconds`.
    pub fn observe_block_run(&self, pipeline: &str, status: &str, seconds: f64) {
        let labels = vec![
            ("pipeline", pipeline.to_owned()),
            ("status", status.to_owned()),
        ];
        self.observe("sluice_block_run_duration_seconds", labels, seconds);
    }

    /// A block run was claimed after waiting `seconds` in the queue.
    pub fn observe_queue_wait(&self, pipeline: &str, seconds: f64) {
        let labels = vec![("pipeline", pipeline.to_owned())];
        self.observe("sluice_queue_wait_seconds", labels, seconds);
    }

    /// A try's lease expired.
    pub fn count_lease_expiry(&self) {
        self.count("sluice_lease_expiries_total", Vec::new());
    }

    /// A retry: `block` (an automatic retry of a block run) or `run` (a
    /// new attempt).
    pub fn count_retry(&self, kind: &'static str) {
        self.count("sluice_retries_total", vec![("kind", kind.to_owned())]);
    }

    /// An API request, by its route template (`/api/pipeline_runs/{id}`,
    /// never the path itself), method and status code.
    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let labels = vec![
            ("route", route.to_owned()),
            ("method", method.to_owned()),
            ("status", class.to_owned()),
        ];
        self.observe("sluice_api_request_duration_seconds", labels, seconds);
    }

    /// The counters and histograms, with `gauges` (read from the store), in
    /// the text format.
    fn render(&self, gauges: &BTreeMap<(&'static str, Labels), u64>) -> String {
        let registry =
            self.with(|registry| (registry.counters.clone(), registry.histograms.clone()));
        let (counters, histograms) = registry;
        let mut text = String::new();
        for &(family, kind, help) in FAMILIES {
            let _ = writeln!(text, "# HELP {family} {help}");
            let _ = writeln!(text, "# TYPE {family} {kind}");
            match kind {
                "gauge" => {
                    for ((name, labels), value) in gauges {
                        if *name == family {
                            let _ =
                                writeln!(text, "{family}{} {value}", render_labels(labels, None));
                        }
                    }
                }
                "counter" => {
                    for ((name, labels), value) in &counters {
                        if *name == family {
                            let _ =
                                writeln!(text, "{family}{} {value}", render_labels(labels, None));
                        }
                    }
                }
                _ => {
                    for ((name, labels), histogram) in &histograms {
                        if *name != family {
                            continue;
                        }
                        let mut cumulative = 0;
                        for (bound, count) in SECONDS_BUCKETS.iter().zip(&histogram.counts) {
                            cumulative += count;
                            let le = format_float(*bound);
                            let _ = writeln!(
                                text,
                                "{family}_bucket{} {cumulative}",
                                render_labels(labels, Some(&le))
                            );
                        }
                        let _ = writeln!(
                            text,
                            "{family}_bucket{} {}",
                            render_labels(labels, Some("+Inf")),
                            histogram.count
                        );
                        let _ = writeln!(
                            text,
                            "{family}_sum{} {}",
                            render_labels(labels, None),
                            format_float(histogram.sum)
                        );
                        let _ = writeln!(
                            text,
                            "{family}_count{} {}",
                            render_labels(labels, None),
                            histogram.count
                        );
                    }
                }
            }
        }
        text
    }
}

fn format_float(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

/// `{a="x",b="y"}` with values escaped as the text format requires, or
/// nothing without labels.
fn render_labels(labels: &Labels, le: Option<&str>) -> String {
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", escape(value)))
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{le}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Engine {
    /// The metrics of this process and the store's gauges, in the
    /// Prometheus text format.
    pub async fn render_metrics(&self) -> Result<String> {
        let mut gauges: BTreeMap<(&'static str, Labels), u64> = BTreeMap::new();
        let project = self.project();
        for pipeline in project.pipelines.keys() {
            let counts = self
                .store()
                .count_runs_by_status(&RunQuery {
                    pipelines: vec![pipeline.clone()],
                    ..RunQuery::default()
                })
                .await?;
            for (status, count) in counts {
                let labels = vec![
                    ("pipeline", pipeline.clone()),
                    ("status", status.to_string()),
                ];
                gauges.insert(("sluice_runs", labels), count);
            }
        }
        for queued in self.store().list_queue(GAUGE_LIMIT).await? {
            *gauges
                .entry(("sluice_queue_depth", vec![("pipeline", queued.pipeline)]))
                .or_default() += 1;
        }
        let now = self.clock().now();
        for agent in self.store().list_agents(GAUGE_LIMIT).await? {
            let silent = now.duration_since(agent.heartbeat_at).as_secs_f64()
                > self.config().lease_ttl.as_secs_f64();
            let status = if silent {
                "silent"
            } else if agent.draining {
                "draining"
            } else {
                "live"
            };
            *gauges
                .entry(("sluice_agents", vec![("status", status.to_owned())]))
                .or_default() += 1;
        }
        Ok(self.metrics().render(&gauges))
    }
}
