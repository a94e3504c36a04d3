//! Log capture: reads a block's stdout and stderr concurrently, splits them
//! into masked, timestamped lines and sends them as numbered chunks.
//!
//! Memory stays bounded whatever the block prints: a line longer than
//! [`MAX_LINE_BYTES`] is split, a batch is flushed at [`FLUSH_BYTES`], and a
//! full channel stops the pump from reading, so the pipes fill up and the
//! block waits. If the receiver goes away the pump keeps draining the pipes
//! and discards what it reads, so the block never blocks on a full pipe.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::mask::Masker;

/// The longest line sent as one; longer output without a newline is split.
pub(crate) const MAX_LINE_BYTES: usize = 64 * 1024;
/// A batch is sent once its lines hold this many bytes…
const FLUSH_BYTES: usize = 64 * 1024;
/// …or once its first line has waited this long.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The wire name: `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// One line of output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// When the executor read it.
    pub at: Timestamp,
    pub stream: Stream,
    /// Masked, without the trailing newline; invalid UTF-8 replaced.
    pub text: String,
}

/// A batch of lines; `seq` counts 0, 1, 2, … within one try, so uploads can
/// be idempotent per `(try, seq)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
    pub seq: u64,
    pub lines: Vec<LogLine>,
}

/// Where the pump sends lines, and when it stops waiting for the pipes.
pub(crate) struct PumpParams<'a, Out, Err> {
    pub stdout: Option<Out>,
    pub stderr: Option<Err>,
    pub logs: mpsc::Sender<LogChunk>,
    pub masker: &'a Masker,
    /// Fired once the process group is gone. Pipes still open
    /// `drain_timeout` later are held by a process that escaped the group,
    /// and the pump stops reading them.
    pub group_gone: CancellationToken,
    pub drain_timeout: Duration,
}

/// Reads both pipes to their end (or until the drain deadline) and sends
/// every line. Returns once the last chunk is sent.
pub(crate) async fn pump<Out, Err>(params: PumpParams<'_, Out, Err>)
where
    Out: AsyncRead + Unpin,
    Err: AsyncRead + Unpin,
{
    let PumpParams {
        mut stdout,
        mut stderr,
        logs,
        masker,
        group_gone,
        drain_timeout,
    } = params;
    let mut batcher = Batcher::new(logs, masker);
    let mut out_lines = LineSplitter::default();
    let mut err_lines = LineSplitter::default();
    let mut out_buffer = vec![0; READ_BUFFER_BYTES];
    let mut err_buffer = vec![0; READ_BUFFER_BYTES];
    let drain_deadline = async {
        group_gone.cancelled().await;
        tokio::time::sleep(drain_timeout).await;
    };
    tokio::pin!(drain_deadline);

    while stdout.is_some() || stderr.is_some() {
        let event = tokio::select! {
            read = read_some(&mut stdout, &mut out_buffer) => Event::Read(Stream::Stdout, read),
            read = read_some(&mut stderr, &mut err_buffer) => Event::Read(Stream::Stderr, read),
            () = sleep_until(batcher.flush_at) => Event::FlushDue,
            () = &mut drain_deadline => Event::DrainExpired,
        };
        match event {
            Event::Read(stream, Ok(read)) if read > 0 => {
                let at = Timestamp::now();
                let (splitter, buffer) = match stream {
                    Stream::Stdout => (&mut out_lines, &out_buffer),
                    Stream::Stderr => (&mut err_lines, &err_buffer),
                };
                splitter.push(&buffer[..read], |line| batcher.add(at, stream, line));
                if batcher.bytes >= FLUSH_BYTES {
                    batcher.flush().await;
                }
            }
            Event::Read(stream, result) => {
                if let Err(error) = result {
                    tracing::warn!(stream = stream.as_str(), %error, "cannot read the block's output");
                }
                let at = Timestamp::now();
                match stream {
                    Stream::Stdout => {
                        out_lines.finish(|line| batcher.add(at, stream, line));
                        stdout = None;
                    }
                    Stream::Stderr => {
                        err_lines.finish(|line| batcher.add(at, stream, line));
                        stderr = None;
                    }
                }
            }
            Event::FlushDue => batcher.flush().await,
            Event::DrainExpired => {
                tracing::warn!(
                    "a process outside the block's process group still holds its output open; \
                     no longer reading it"
                );
                break;
            }
        }
    }
    let at = Timestamp::now();
    out_lines.finish(|line| batcher.add(at, Stream::Stdout, line));
    err_lines.finish(|line| batcher.add(at, Stream::Stderr, line));
    batcher.flush().await;
}

enum Event {
    Read(Stream, std::io::Result<usize>),
    FlushDue,
    DrainExpired,
}

/// Reads from the pipe if it is still open, otherwise never completes, so a
/// closed pipe simply drops out of the `select!`.
async fn read_some<R: AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buffer: &mut [u8],
) -> std::io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buffer).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Collects lines into chunks and sends them.
struct Batcher<'a> {
    logs: mpsc::Sender<LogChunk>,
    masker: &'a Masker,
    seq: u64,
    lines: Vec<LogLine>,
    bytes: usize,
    flush_at: Option<Instant>,
    receiver_gone: bool,
}

impl<'a> Batcher<'a> {
    fn new(logs: mpsc::Sender<LogChunk>, masker: &'a Masker) -> Self {
        let receiver_gone = logs.is_closed();
        Self {
            logs,
            masker,
            seq: 0,
            lines: Vec::new(),
            bytes: 0,
            flush_at: None,
            receiver_gone,
        }
    }

    fn add(&mut self, at: Timestamp, stream: Stream, line: &[u8]) {
        if self.receiver_gone {
            return;
        }
        let text = String::from_utf8_lossy(line);
        let text = self.masker.mask(&text).into_owned();
        self.bytes += text.len();
        self.lines.push(LogLine { at, stream, text });
        if self.flush_at.is_none() {
            self.flush_at = Some(Instant::now() + FLUSH_INTERVAL);
        }
    }

    async fn flush(&mut self) {
        self.flush_at = None;
        self.bytes = 0;
        if self.lines.is_empty() {
            return;
        }
        let chunk = LogChunk {
            seq: self.seq,
            lines: std::mem::take(&mut self.lines),
        };
        self.seq += 1;
        if self.logs.send(chunk).await.is_err() {
            tracing::debug!("the log receiver is gone; discarding the rest of the output");
            self.receiver_gone = true;
        }
    }
}

/// Splits a byte stream into lines of at most [`MAX_LINE_BYTES`].
#[derive(Default)]
struct LineSplitter {
    /// Bytes after the last newline.
    pending: Vec<u8>,
}

impl LineSplitter {
    fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&[u8])) {
        while let Some(newline) = bytes.iter().position(|&byte| byte == b'\n') {
            let (line, rest) = (&bytes[..newline], &bytes[newline + 1..]);
            if self.pending.is_empty() {
                emit_bounded(strip_carriage_return(line), &mut emit);
            } else {
                self.pending.extend_from_slice(line);
                emit_bounded(strip_carriage_return(&self.pending), &mut emit);
                self.pending.clear();
            }
            bytes = rest;
        }
        self.pending.extend_from_slice(bytes);
        if self.pending.len() > MAX_LINE_BYTES {
            let mut start = 0;
            while self.pending.len() - start > MAX_LINE_BYTES {
                let end = start + split_point(&self.pending[start..]);
                emit(&self.pending[start..end]);
                start = end;
            }
            self.pending.drain(..start);
        }
    }

    /// Emits what is left after the last newline, at end of stream.
    fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit_bounded(&self.pending, &mut emit);
            self.pending.clear();
        }
    }
}

fn strip_carriage_return(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn emit_bounded(mut line: &[u8], emit: &mut impl FnMut(&[u8])) {
    while line.len() > MAX_LINE_BYTES {
        let end = split_point(line);
        emit(&line[..end]);
        line = &line[end..];
    }
    emit(line);
}

/// Where to cut a line longer than [`MAX_LINE_BYTES`]: at the limit, moved
/// back to the start of a UTF-8 character so that no character is torn in two
/// and replaced.
fn split_point(bytes: &[u8]) -> usize {
    let is_continuation = |byte: u8| byte & 0b1100_0000 == 0b1000_0000;
    (MAX_LINE_BYTES - 3..=MAX_LINE_BYTES)
        .rev()
        .find(|&index| !is_continuation(bytes[index]))
        .unwrap_or(MAX_LINE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(parts: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        for part in parts {
            splitter.push(part, |line| lines.push(line.to_vec()));
        }
        splitter.finish(|line| lines.push(line.to_vec()));
        lines
    }

    #[test]
    fn lines_are_joined_across_reads_and_crlf_is_stripped() {
        let lines = split(&[b"ab", b"c\r\nd\n\ne", b"f"]);
        assert_eq!(lines, [&b"abc"[..], b"d", b"", b"ef"]);
    }

    #[test]
    fn long_lines_are_split_without_tearing_characters() {
        let mut text = "a".repeat(MAX_LINE_BYTES - 1).into_bytes();
        text.extend_from_slice("é".repeat(10).as_bytes());
        let lines = split(&[&text]);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES - 1);
        assert!(lines.iter().all(|line| std::str::from_utf8(line).is_ok()));
        assert_eq!(lines.concat(), text);
    }

    #[test]
    fn long_lines_arriving_in_small_reads_are_split() {
        let piece = [b'x'; 1000];
        let parts: Vec<&[u8]> = std::iter::repeat_n(&piece[..], 200).collect();
        let lines = split(&parts);
        assert!(lines.iter().all(|line| line.len() <= MAX_LINE_BYTES));
        assert_eq!(lines.concat().len(), 200_000);
    }
}
