//! The pictures of the UI, drawn as inline SVG on the server: a pipeline's
//! graph, a run's Gantt timeline, runs per day and duration sparklines.
//! Colours come from CSS classes, so the markup carries no style.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::Timestamp;

use crate::format::{duration, escape};

const NODE_WIDTH: i64 = 168;
const NODE_HEIGHT: i64 = 44;
const COLUMN_GAP: i64 = 56;
const ROW_GAP: i64 = 18;
const MARGIN: i64 = 8;

/// One node of a graph: the block, its upstream blocks, its status.
#[derive(Clone, Debug)]
pub struct Node {
    pub block: String,
    pub needs: Vec<String>,
    /// A block run status, or `none` when the graph shows no run.
    pub status: String,
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
        short.push('…');
        short
    }
}

/// The graph, laid out in columns by depth (a block sits one column right
/// of its deepest upstream). `nodes` are in topological order.
pub fn dag(nodes: &[Node], selected: Option<&str>) -> String {
    let mut depth: BTreeMap<&str, i64> = BTreeMap::new();
    let mut rows_in_column: BTreeMap<i64, i64> = BTreeMap::new();
    let mut place: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for node in nodes {
        let column = node
            .needs
            .iter()
            .filter_map(|need| depth.get(need.as_str()))
            .map(|d| d + 1)
            .max()
            .unwrap_or(0);
        depth.insert(&node.block, column);
        let row = rows_in_column.entry(column).or_insert(0);
        let x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP);
        let y = MARGIN + *row * (NODE_HEIGHT + ROW_GAP);
        *row += 1;
        place.insert(&node.block, (x, y));
    }
    let columns = rows_in_column.len() as i64;
    let rows = rows_in_column.values().copied().max().unwrap_or(0);
    let width = (2 * MARGIN + columns * NODE_WIDTH + (columns - 1).max(0) * COLUMN_GAP).max(200);
    let height = (2 * MARGIN + rows * NODE_HEIGHT + (rows - 1).max(0) * ROW_GAP).max(60);

    let mut svg = format!(
        "<svg id=\"dag\" class=\"dag\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"group\" aria-label=\"The pipeline's graph\">"
    );
    svg.push_str("<g class=\"edges\" aria-hidden=\"true\">");
    for node in nodes {
        let Some(&(x2, y2)) = place.get(node.block.as_str()) else {
            continue;
        };
        for need in &node.needs {
            let Some(&(x1, y1)) = place.get(need.as_str()) else {
                continue;
            };
            let (sx, sy) = (x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2);
            let (ex, ey) = (x2, y2 + NODE_HEIGHT / 2);
            let mid = (sx + ex) / 2;
            let _ = write!(
                svg,
                "<path class=\"edge\" data-from=\"{}\" data-to=\"{}\" d=\"M{sx} {sy} C{mid} {sy} {mid} {ey} {ex} {ey}\"/>",
                escape(need),
                escape(&node.block)
            );
        }
    }
    svg.push_str("</g>");
    for node in nodes {
        let Some(&(x, y)) = place.get(node.block.as_str()) else {
            continue;
        };
        let block = escape(&node.block);
        let status = escape(&node.status);
        let class = if selected == Some(node.block.as_str()) {
            "node selected"
        } else {
            "node"
        };
        let _ = write!(
            svg,
            "<g class=\"{class}\" data-block=\"{block}\" data-status=\"{status}\" transform=\"translate({x} {y})\" tabindex=\"0\" role=\"button\" aria-label=\"Block {block}, {status}\">\
             <title>{block}</title>\
             <rect width=\"{NODE_WIDTH}\" height=\"{NODE_HEIGHT}\" rx=\"6\"/>\
             <text class=\"name\" x=\"10\" y=\"18\">{}</text>\
             <text class=\"status\" x=\"10\" y=\"35\">{status}</text></g>",
            escape(&shorten(&node.block, 20))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One bar of a Gantt chart.
#[derive(Clone, Debug)]
pub struct Bar {
    pub block: String,
    pub status: String,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// A Gantt timeline: one row per block run, the bar from its start to its
/// end (or now); a block run that never started gets a marker at the left.
pub fn gantt(bars: &[Bar], now: Timestamp) -> String {
    const LABEL: i64 = 150;
    const CHART: i64 = 600;
    const ROW: i64 = 24;
    let start = bars.iter().filter_map(|bar| bar.started_at).min();
    let end = bars
        .iter()
        .filter_map(|bar| bar.started_at.map(|_| bar.finished_at.unwrap_or(now)))
        .max();
    let span_ms = match (start, end) {
        (Some(start), Some(end)) => end.duration_since(start).as_millis().max(1),
        _ => 1,
    };
    let height = (bars.len() as i64) * ROW + 24;
    let width = LABEL + CHART + 16;
    let mut svg = format!(
        "<svg id=\"gantt\" class=\"gantt\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"Timeline of the attempt's block runs\">"
    );
    for (index, bar) in bars.iter().enumerate() {
        let y = index as i64 * ROW + 4;
        let block = escape(&bar.block);
        let status = escape(&bar.status);
        let (x, w, label) = match (start, bar.started_at) {
            (Some(origin), Some(started)) => {
                let finished = bar.finished_at.unwrap_or(now);
                let offset = started.duration_since(origin).as_millis().max(0);
                let length = finished.duration_since(started).as_millis().max(0);
                let x = LABEL + (offset * i128::from(CHART) / span_ms) as i64;
                let w = ((length * i128::from(CHART) / span_ms) as i64).max(2);
                (x, w, duration(finished.duration_since(started)))
            }
            _ => (LABEL, 2, "not started".to_owned()),
        };
        let _ = write!(
            svg,
            "<text class=\"label\" x=\"0\" y=\"{}\">{}</text>\
             <rect class=\"bar status-{status}\" data-block=\"{block}\" data-status=\"{status}\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{}\" rx=\"3\"><title>{block}: {status}, {}</title></rect>",
            y + 14,
            escape(&shorten(&bar.block, 20)),
            ROW - 8,
            escape(&label)
        );
    }
    let axis_y = bars.len() as i64 * ROW + 18;
    let _ = write!(
        svg,
        "<text class=\"axis\" x=\"{LABEL}\" y=\"{axis_y}\">0s</text><text class=\"axis end\" x=\"{}\" y=\"{axis_y}\">{}</text></svg>",
        LABEL + CHART,
        escape(&duration(jiff::SignedDuration::from_millis(
            span_ms.min(i128::from(i64::MAX)) as i64
        )))
    );
    svg
}

/// Runs per day as bars, oldest day first: `(day, count)`.
pub fn runs_per_day(days: &[(String, u64)]) -> String {
    const BAR: i64 = 28;
    const GAP: i64 = 6;
    const CHART: i64 = 90;
    let max = days
        .iter()
        .map(|(_, count)| *count)
        .max()
        .unwrap_or(0)
        .max(1);
    let width = days.len() as i64 * (BAR + GAP) + GAP;
    let height = CHART + 36;
    let mut svg = format!(
        "<svg id=\"runs-per-day\" class=\"chart\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"Runs per day over the last {} days\">",
        days.len()
    );
    for (index, (day, count)) in days.iter().enumerate() {
        let x = GAP + index as i64 * (BAR + GAP);
        let h = (*count as i64 * CHART / max as i64).max(if *count > 0 { 2 } else { 0 });
        let y = CHART - h + 14;
        let day = escape(day);
        let _ = write!(
            svg,
            "<g class=\"day\" data-day=\"{day}\" data-count=\"{count}\"><title>{day}: {count} runs</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{BAR}\" height=\"{h}\"/>\
             <text class=\"count\" x=\"{}\" y=\"{}\">{count}</text>\
             <text class=\"label\" x=\"{}\" y=\"{}\">{}</text></g>",
            x + BAR / 2,
            y - 2,
            x + BAR / 2,
            CHART + 30,
            day.get(8..10).unwrap_or(&day)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A sparkline of durations in milliseconds, oldest first.
pub fn sparkline(durations: &[i64], label: &str) -> String {
    const WIDTH: i64 = 120;
    const HEIGHT: i64 = 28;
    let mut svg = format!(
        "<svg class=\"sparkline\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{}\">",
        escape(label)
    );
    let max = durations.iter().copied().max().unwrap_or(0).max(1);
    let step = if durations.len() > 1 {
        WIDTH as f64 / (durations.len() - 1) as f64
    } else {
        0.0
    };
    let points: Vec<String> = durations
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let x = index as f64 * step;
            let y = (HEIGHT - 2) as f64 - (*value as f64 / max as f64) * (HEIGHT - 4) as f64;
            format!("{x:.1},{y:.1}")
        })
        .collect();
    if !points.is_empty() {
        let _ = write!(svg, "<polyline points=\"{}\"/>", points.join(" "));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_nodes_carry_block_and_status() {
        let nodes = vec![
            Node {
                block: "extract".into(),
                needs: vec![],
                status: "completed".into(),
            },
            Node {
                block: "load<x>".into(),
                needs: vec!["extract".into()],
                status: "running".into(),
            },
        ];
        let svg = dag(&nodes, Some("extract"));
        assert!(
            svg.contains(
                "class=\"node selected\" data-block=\"extract\" data-status=\"completed\""
            )
        );
        assert!(svg.contains("data-block=\"load&lt;x&gt;\" data-status=\"running\""));
        assert!(svg.contains("data-from=\"extract\""));
        assert!(!svg.contains("<x>"));
    }
}
