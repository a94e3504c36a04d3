//! The allowed dependency edges between sluice's crates (DESIGN §9), checked
//! against `cargo metadata` so the layering cannot drift silently.

use std::collections::{BTreeMap, BTreeSet};

fn allowed() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let edges: &[(&str, &[&str])] = &[
        ("sluice-core", &[]),
        ("sluice-store", &["sluice-core"]),
        ("sluice-exec", &["sluice-core"]),
        (
            "sluice-engine",
            &["sluice-core", "sluice-store", "sluice-exec"],
        ),
        ("sluice-proto", &[]),
        (
            "sluice-api",
            &["sluice-core", "sluice-engine", "sluice-proto"],
        ),
        ("sluice-web", &["sluice-core", "sluice-engine"]),
        ("sluice-client", &["sluice-proto"]),
        (
            "sluice-agent",
            &[
                "sluice-client",
                "sluice-exec",
                "sluice-proto",
                "sluice-core",
            ],
        ),
        (
            "sluice-cli",
            &[
                "sluice-core",
                "sluice-store",
                "sluice-exec",
                "sluice-engine",
                "sluice-proto",
                "sluice-api",
                "sluice-web",
                "sluice-client",
                "sluice-agent",
            ],
        ),
        (
            "sluice-bench",
            &[
                "sluice-core",
                "sluice-store",
                "sluice-engine",
                "sluice-client",
                "sluice-proto",
            ],
        ),
    ];
    edges
        .iter()
        .map(|(krate, deps)| (*krate, deps.iter().copied().collect()))
        .collect()
}

#[test]
fn crates_depend_only_along_the_allowed_edges() {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let allowed = allowed();
    let mut seen = 0;
    for package in metadata["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let Some(permitted) = allowed.get(name) else {
            panic!(
                "crate `{name}` is not in the layout of DESIGN §9; add it to this test deliberately"
            );
        };
        seen += 1;
        for dependency in package["dependencies"].as_array().unwrap() {
            let target = dependency["name"].as_str().unwrap();
            let is_normal = dependency["kind"].is_null();
            if target.starts_with("sluice-") && is_normal {
                assert!(
                    permitted.contains(target),
                    "`{name}` must not depend on `{target}` (DESIGN §9)"
                );
            }
        }
    }
    assert!(seen >= 5, "expected the workspace's crates, saw {seen}");
}
