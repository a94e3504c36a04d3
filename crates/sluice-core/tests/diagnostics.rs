//! Snapshots of the diagnostics for broken pipelines: one file per case in
//! `tests/cases/`, each snapshot showing the file with line numbers and then
//! every diagnostic, so a review reads them side by side.

use std::fmt::Write as _;
use std::path::Path;

use sluice_core::spec::parse_pipeline;

fn numbered(source: &str) -> String {
    let mut out = String::new();
    for (number, line) in source.lines().enumerate() {
        let _ = writeln!(out, "{:>3} | {}", number + 1, line.replace('\t', "→"));
    }
    out
}

#[test]
fn broken_pipelines_report_every_problem_with_its_position() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "the cases are in {}", dir.display());
    for path in cases {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        let file = format!("pipelines/{name}.yaml");
        let diagnostics = match parse_pipeline(&name, &file, &source) {
            Ok(_) => panic!("case {name} should not be valid"),
            Err(diagnostics) => diagnostics,
        };
        let lines = source.lines().count().max(1);
        for diagnostic in &diagnostics {
            assert_eq!(diagnostic.file, file);
            assert!(
                diagnostic.line >= 1 && diagnostic.line <= lines + 1,
                "{name}: {diagnostic}"
            );
            assert!(diagnostic.column >= 1, "{name}: {diagnostic}");
        }
        let rendered: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        let snapshot = format!("{}\n{}", numbered(&source), rendered.join("\n"));
        insta::assert_snapshot!(name, snapshot);
    }
}
