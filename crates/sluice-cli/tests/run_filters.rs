//! `sluice runs list --search` and `--trigger`.

mod common;

use common::Project;

#[test]
fn runs_are_listed_by_text_and_by_trigger_kind() {
    let project = Project::new();
    project.pipeline(
        "etl",
        "variables:\n  region: emea\n  key: {default: k-Lapland-9, secret: true}\nblocks:\n  only:\n    run: 'true'\n",
    );
    let (code, lapland) = project.run("etl", &["-v", "region=Lapland"]);
    assert_eq!(code, 0);
    let (code, _) = project.run("etl", &[]);
    assert_eq!(code, 0);

    let found = project.list(&["--search", "lapland"]);
    assert_eq!(
        found.len(),
        1,
        "only the run whose region matches: {found:#?}"
    );
    assert_eq!(found[0]["id"], lapland["id"]);
    // The secret default contains the text too, but secrets are never searched.
    assert_eq!(project.list(&["--search", "k-lapland-9"]).len(), 0);
    assert_eq!(project.list(&["--trigger", "manual"]).len(), 2);
    assert_eq!(project.list(&["--trigger", "api"]).len(), 0);
}
