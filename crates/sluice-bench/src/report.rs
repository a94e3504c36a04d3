//! The results table every benchmark adds rows to: printed as text, written
//! as markdown for `docs/benchmarks.md`.

use std::fmt::Write as _;

/// One measured value, with the target it is judged against when there is
/// one.
#[derive(Clone, Debug)]
pub struct Row {
    pub benchmark: String,
    pub metric: String,
    pub value: String,
    pub target: String,
    /// `None` when the metric has no target or was not measured.
    pub met: Option<bool>,
}

/// The rows of one invocation, in the order they were measured.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
}

impl Report {
    /// A value without a target.
    pub fn info(&mut self, benchmark: &str, metric: &str, value: String) {
        self.push(benchmark, metric, value, "", None);
    }

    /// A value judged against a target.
    pub fn judged(
        &mut self,
        benchmark: &str,
        metric: &str,
        value: String,
        target: &str,
        met: bool,
    ) {
        self.push(benchmark, metric, value, target, Some(met));
    }

    /// A metric that could not be measured in this invocation, and why.
    pub fn skipped(&mut self, benchmark: &str, metric: &str, why: &str) {
        self.push(benchmark, metric, format!("skipped: {why}"), "", None);
    }

    fn push(
        &mut self,
        benchmark: &str,
        metric: &str,
        value: String,
        target: &str,
        met: Option<bool>,
    ) {
        let row = Row {
            benchmark: benchmark.to_owned(),
            metric: metric.to_owned(),
            value,
            target: target.to_owned(),
            met,
        };
        eprintln!("  {} / {}: {}", row.benchmark, row.metric, row.value);
        self.rows.push(row);
    }

    fn met(row: &Row) -> &'static str {
        match row.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        }
    }

    /// The table as aligned text.
    pub fn text(&self) -> String {
        let header = ["benchmark", "metric", "value", "target", "met?"];
        let cells: Vec<[&str; 5]> = self
            .rows
            .iter()
            .map(|row| {
                [
                    row.benchmark.as_str(),
                    row.metric.as_str(),
                    row.value.as_str(),
                    row.target.as_str(),
                    Report::met(row),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for line in &cells {
            for (width, cell) in widths.iter_mut().zip(line) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in std::iter::once(&header).chain(&cells) {
            let padded: Vec<String> = line
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            let _ = writeln!(out, "{}", padded.join("  ").trim_end());
        }
        out
    }

    /// The table as markdown.
    pub fn markdown(&self) -> String {
        let mut out =
            String::from("| benchmark | metric | value | target | met? |\n|---|---|---|---|---|\n");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                row.benchmark,
                row.metric.replace('|', "\\|"),
                row.value.replace('|', "\\|"),
                row.target,
                Report::met(row)
            );
        }
        out
    }
}

/// The value at quantile `q` (0 to 1) of `values`, nearest rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `p50 X ms, p99 Y ms (n=N)` of durations in seconds.
pub fn millis_summary(values: &[f64]) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms (n={})",
        quantile(values, 0.5) * 1000.0,
        quantile(values, 0.99) * 1000.0,
        values.len()
    )
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
