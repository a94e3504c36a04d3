//! Log capture: both streams, numbered chunks, long lines, invalid UTF-8, a
//! slow receiver and a receiver that went away.

mod common;

use std::time::Duration;

use common::{PATIENCE, Project, run, shell};
use sluice_exec::{LogChunk, Stream, TryResult};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn stdout_and_stderr_are_captured_in_numbered_chunks() {
    let project = Project::new();
    let script = "for i in 1 2 3; do echo \"out $i\"; echo \"err $i\" >&2; done";

    let finished = run(project.request(shell(script))).await;

    assert_eq!(finished.outcome.result, TryResult::Completed);
    let seqs: Vec<u64> = finished.chunks.iter().map(|chunk| chunk.seq).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    assert!(finished.chunks.iter().all(|chunk| !chunk.lines.is_empty()));
    assert_eq!(finished.texts(Stream::Stdout), ["out 1", "out 2", "out 3"]);
    assert_eq!(finished.texts(Stream::Stderr), ["err 1", "err 2", "err 3"]);
    let times: Vec<_> = finished.lines().map(|line| line.at).collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]));
}

#[tokio::test]
async fn long_lines_are_split_and_invalid_utf8_is_replaced() {
    let project = Project::new();
    let script = "head -c 200000 /dev/zero | tr '\\0' a\necho\nprintf 'bad \\377 byte\\nno newline at the end'";

    let finished = run(project.request(shell(script))).await;

    let stdout = finished.texts(Stream::Stdout);
    let (long, rest) = stdout.split_at(stdout.len() - 2);
    assert!(
        long.iter().all(|piece| piece.len() <= 64 * 1024),
        "pieces are bounded"
    );
    assert!(long.len() >= 4);
    assert_eq!(long.concat(), "a".repeat(200_000));
    assert_eq!(rest, ["bad \u{FFFD} byte", "no newline at the end"]);
}

#[tokio::test]
async fn a_slow_receiver_gets_every_line_in_order() {
    let project = Project::new();
    let request = project.request(shell("seq 1 20000"));
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<LogChunk>(1);
    let collector = tokio::spawn(async move {
        let mut chunks = Vec::new();
        while let Some(chunk) = receiver.recv().await {
            // Simulates an upload slower than the block's output.
            tokio::time::sleep(Duration::from_millis(2)).await;
            chunks.push(chunk);
        }
        chunks
    });

    let outcome = tokio::time::timeout(
        PATIENCE,
        sluice_exec::run_try(request, sender, CancellationToken::new()),
    )
    .await
    .expect("in time")
    .expect("executor");
    let chunks = collector.await.expect("collector");

    assert_eq!(outcome.result, TryResult::Completed);
    assert!(
        chunks
            .iter()
            .enumerate()
            .all(|(i, chunk)| chunk.seq == i as u64)
    );
    let numbers: Vec<u32> = chunks
        .iter()
        .flat_map(|chunk| &chunk.lines)
        .map(|line| line.text.parse().expect("a number"))
        .collect();
    assert_eq!(numbers, (1..=20000).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_block_runs_on_when_the_receiver_is_gone() {
    let project = Project::new();
    // Far more than a pipe holds: the block would block if nobody read.
    let script = "seq 1 200000\necho 'last=200000' >> \"$SLUICE_OUTPUT\"";
    let (sender, receiver) = tokio::sync::mpsc::channel::<LogChunk>(1);
    drop(receiver);

    let outcome = tokio::time::timeout(
        PATIENCE,
        sluice_exec::run_try(
            project.request(shell(script)),
            sender,
            CancellationToken::new(),
        ),
    )
    .await
    .expect("in time")
    .expect("executor");

    assert_eq!(outcome.result, TryResult::Completed);
    assert_eq!(outcome.outputs["last"], "200000");
}

#[tokio::test]
async fn a_receiver_dropped_midway_does_not_stall_the_block() {
    let project = Project::new();
    let script = "echo first\nseq 1 200000 >&2\necho 'done=yes' >> \"$SLUICE_OUTPUT\"";
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<LogChunk>(1);
    let reader = tokio::spawn(async move {
        let first = receiver.recv().await;
        drop(receiver);
        first
    });

    let outcome = tokio::time::timeout(
        PATIENCE,
        sluice_exec::run_try(
            project.request(shell(script)),
            sender,
            CancellationToken::new(),
        ),
    )
    .await
    .expect("in time")
    .expect("executor");

    assert_eq!(outcome.result, TryResult::Completed);
    assert_eq!(outcome.outputs["done"], "yes");
    let first = reader.await.expect("reader").expect("a first chunk");
    assert_eq!(first.seq, 0);
}
