//! A block run's data output as a table: sampled for display and exported
//! as CSV or JSON, from either stored format (CSV, JSON lines).

use serde::Serialize;
use sluice_core::ids::BlockRunId;

use crate::{Engine, Error, Result};

/// A table read from a data output.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Whether rows were left out because of the sample size.
    pub truncated: bool,
}

/// What a block run produced: its outputs and, if it wrote one, a sample of
/// its data output.
#[derive(Clone, Debug, Serialize)]
pub struct BlockOutput {
    pub block_run_id: BlockRunId,
    pub block: String,
    pub outputs: std::collections::BTreeMap<String, String>,
    pub data_format: Option<String>,
    pub data: Option<Table>,
}

impl Table {
    /// The table as CSV text with a header line.
    pub fn to_csv(&self) -> Result<String> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let to_io = |error: csv::Error| Error::Io {
            context: "cannot write CSV".to_owned(),
            source: std::io::Error::other(error),
        };
        writer.write_record(&self.columns).map_err(to_io)?;
        for row in &self.rows {
            writer.write_record(row).map_err(to_io)?;
        }
        let bytes = writer.into_inner().map_err(|error| Error::Io {
            context: "cannot write CSV".to_owned(),
            source: std::io::Error::other(error.to_string()),
        })?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Parses a data output. `limit` caps the rows read.
pub fn parse_table(bytes: &[u8], format: &str, limit: Option<usize>) -> Result<Table> {
    let limit = limit.unwrap_or(usize::MAX);
    let mut table = Table::default();
    if format == "jsonl" {
        for line in bytes.split(|byte| *byte == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if table.rows.len() >= limit {
                table.truncated = true;
                break;
            }
            let value: serde_json::Value = serde_json::from_slice(line).map_err(|error| {
                Error::invalid(
                    format!("the data output is not valid JSON lines: {error}"),
                    Some("write one JSON object per line to $SLUICE_DATA".to_owned()),
                )
            })?;
            let object = value.as_object().cloned().unwrap_or_default();
            for key in object.keys() {
                if !table.columns.contains(key) {
                    table.columns.push(key.clone());
                }
            }
            let row = table
                .columns
                .iter()
                .map(|column| match object.get(column) {
                    None | Some(serde_json::Value::Null) => String::new(),
                    Some(serde_json::Value::String(text)) => text.clone(),
                    Some(other) => other.to_string(),
                })
                .collect();
            table.rows.push(row);
        }
        let width = table.columns.len();
        for row in &mut table.rows {
            row.resize(width, String::new());
        }
        return Ok(table);
    }
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let bad_csv = |error: csv::Error| {
        Error::invalid(
            format!("the data output is not valid CSV: {error}"),
            Some("write a header line, then one line per row, to $SLUICE_DATA".to_owned()),
        )
    };
    table.columns = reader
        .headers()
        .map_err(bad_csv)?
        .iter()
        .map(str::to_owned)
        .collect();
    for record in reader.records() {
        if table.rows.len() >= limit {
            table.truncated = true;
            break;
        }
        let record = record.map_err(bad_csv)?;
        table.rows.push(record.iter().map(str::to_owned).collect());
    }
    Ok(table)
}

impl Engine {
    /// A block run's outputs and the first `sample` rows of its data output
    /// (every row when `None`).
    pub async fn block_output(
        &self,
        id: &BlockRunId,
        sample: Option<usize>,
    ) -> Result<BlockOutput> {
        let block_run = self.get_block_run(id).await?;
        let (data_format, data) = match &block_run.data {
            Some(data) => {
                let bytes = self.blobs().read_verified(&data.sha256).await?;
                (
                    Some(data.format.clone()),
                    Some(parse_table(&bytes, &data.format, sample)?),
                )
            }
            None => (None, None),
        };
        Ok(BlockOutput {
            block_run_id: block_run.id,
            block: block_run.block,
            outputs: block_run.outputs,
            data_format,
            data,
        })
    }
}
