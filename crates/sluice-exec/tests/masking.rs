//! Secret masking: the masker on its own, and secrets a block prints or
//! writes as outputs in their raw, base64 and URL-encoded forms.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::{Project, run, script, shell};
use sluice_exec::{Masker, Stream, TryResult};

/// Its base64 forms contain `+`, `/` and padding, and its URL form needs
/// escapes, so every spelling differs from the others.
const SECRET: &str = "p@ss w/rd?&=~>>é";

fn masker(secrets: &[&str]) -> Masker {
    Masker::new(&secrets.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
}

#[test]
fn raw_base64_and_url_encoded_forms_are_masked() {
    let masker = masker(&[SECRET]);
    let bytes = SECRET.as_bytes();
    let forms = [
        SECRET.to_owned(),
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        "p%40ss%20w%2Frd%3F%26%3D~%3E%3E%C3%A9".to_owned(),
        "p%40ss+w%2Frd%3F%26%3D~%3E%3E%C3%A9".to_owned(),
    ];
    assert!(STANDARD.encode(bytes).contains('+') || STANDARD.encode(bytes).contains('/'));
    for form in forms {
        assert_eq!(
            masker.mask(&format!("token=[{form}]")),
            "token=[***]",
            "{form}"
        );
    }
}

#[test]
fn longer_secrets_win_over_their_prefixes() {
    let masker = masker(&["abc", "abcdef"]);
    assert_eq!(masker.mask("x abcdef y abc"), "x *** y ***");
}

#[test]
fn empty_secrets_are_ignored() {
    let with_empty = masker(&["", "s3cret"]);
    assert_eq!(with_empty.mask("nothing here"), "nothing here");
    assert_eq!(with_empty.mask("s3cret"), "***");
    assert!(masker(&[""]).is_empty());
}

#[test]
fn every_line_of_a_multi_line_secret_is_masked() {
    let key = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n-----END KEY-----\n";
    let masker = masker(&[key]);
    assert_eq!(masker.mask("MIIBOgIBAAJBAKj34GkxFhD9"), "***");
}

#[tokio::test]
async fn secrets_are_masked_in_logs_and_outputs() {
    let project = Project::new();
    project.write(
        "leak.py",
        r#"import base64, os, sys, urllib.parse
s = os.environ["TOKEN"]
b = s.encode()
print("raw", s)
print("b64", base64.b64encode(b).decode())
print("b64url", base64.urlsafe_b64encode(b).decode().rstrip("="), file=sys.stderr)
print("url", urllib.parse.quote(s, safe=""))
print("form", urllib.parse.quote_plus(s))
print("path", "https://host/" + urllib.parse.quote(s))
with open(os.environ["SLUICE_OUTPUT"], "a") as out:
    out.write(f"token={s}\n")
    out.write(f"header=Basic {base64.b64encode(b).decode()}\n")
    out.write(f"dsn=postgres://u:{urllib.parse.quote(s, safe='')}@db/x\n")
"#,
    );
    let mut request = project.request(script("leak.py"));
    request.env.insert("TOKEN".into(), SECRET.into());
    request.secrets = vec![SECRET.into(), String::new()];

    let finished = run(request).await;

    assert_eq!(
        finished.outcome.result,
        TryResult::Completed,
        "{finished:?}"
    );
    assert_eq!(
        finished.texts(Stream::Stdout),
        [
            "raw ***",
            "b64 ***",
            "url ***",
            "form ***",
            "path https://host/***"
        ]
    );
    assert_eq!(finished.texts(Stream::Stderr), ["b64url ***"]);
    let outputs = &finished.outcome.outputs;
    assert_eq!(outputs["token"], "***");
    assert_eq!(outputs["header"], "Basic ***");
    assert_eq!(outputs["dsn"], "postgres://u:***@db/x");
}

#[tokio::test]
async fn secrets_are_masked_in_error_messages() {
    let project = Project::new();
    let mut request = project.request(script("scripts/hunter2.py"));
    request.secrets = vec!["hunter2".into()];

    let finished = run(request).await;

    assert_eq!(
        finished.outcome.error.as_deref(),
        Some("script not found: scripts/***.py")
    );
}

#[tokio::test]
async fn a_secret_in_a_shell_block_is_masked_on_both_streams() {
    let project = Project::new();
    let mut request = project.request(shell("echo \"key=$KEY\"; echo \"$KEY\" >&2"));
    request.env.insert("KEY".into(), "topsecret".into());
    request.secrets = vec!["topsecret".into()];

    let finished = run(request).await;

    assert_eq!(finished.texts(Stream::Stdout), ["key=***"]);
    assert_eq!(finished.texts(Stream::Stderr), ["***"]);
}
