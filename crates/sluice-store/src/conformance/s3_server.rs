//! A real S3-compatible server for tests: `moto` in server mode (from PyPI,
//! `python3 -m pip install 'moto[server]'`) on a loopback port the system
//! picks, stopped when dropped.
//!
//! Tests that use it are required, never skipped: when moto is not
//! installed, [`S3TestServer::start`] panics with the command to install it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::blobs::{BlobStore, ObjectStoreOptions, StaticCredentials};

/// How long moto may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The credentials the test server is used with (moto accepts any).
pub const ACCESS_KEY_ID: &str = "sluice-test";
pub const SECRET_ACCESS_KEY: &str = "sluice-test-secret";
pub const REGION: &str = "us-east-1";

/// A running moto server.
pub struct S3TestServer {
    child: Child,
    port: u16,
}

impl std::fmt::Debug for S3TestServer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "S3TestServer({})", self.endpoint())
    }
}

impl S3TestServer {
    /// Starts moto on `127.0.0.1` and waits until it listens.
    pub fn start() -> S3TestServer {
        let mut child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot start python3 for the S3 test server (moto): {error}")
            });
        let stderr = child.stderr.take().expect("moto's stderr is piped");
        let (sender, receiver) = mpsc::channel();
        // Werkzeug prints the port it bound and then a line per request:
        // the pipe is drained for the server's whole life so it never
        // blocks on a full pipe.
        std::thread::Builder::new()
            .name("moto-stderr".to_owned())
            .spawn(move || {
                let mut seen = String::new();
                let mut announced = false;
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if !announced {
                        if let Some(port) = announced_port(&line) {
                            announced = true;
                            let _ = sender.send(Ok(port));
                        } else {
                            seen.push_str(&line);
                            seen.push('\n');
                        }
                    }
                }
                if !announced {
                    let _ = sender.send(Err(seen));
                }
            })
            .expect("spawn a thread to read moto's output");
        let port = match receiver.recv_timeout(START_TIMEOUT) {
            Ok(Ok(port)) => port,
            Ok(Err(output)) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the S3 test server (python3 -m moto.server) did not start:\n{output}\n\
                     hint: install it with `python3 -m pip install 'moto[server]'`"
                );
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the S3 test server (python3 -m moto.server) did not listen within {START_TIMEOUT:?}"
                );
            }
        };
        let server = S3TestServer { child, port };
        server.wait_until_answering();
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment that points a `sluice` process at this server.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
        ]
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        let (status, body) = self.request("PUT", &format!("/{bucket}"));
        assert!(
            (200..300).contains(&status),
            "cannot create bucket {bucket}: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }

    /// A blob store in `bucket` under `prefix` of this server.
    pub fn blob_store(&self, bucket: &str, prefix: &str) -> BlobStore {
        let options = ObjectStoreOptions {
            endpoint: Some(self.endpoint()),
            credentials: Some(StaticCredentials {
                access_key_id: ACCESS_KEY_ID.to_owned(),
                secret_access_key: SECRET_ACCESS_KEY.to_owned(),
            }),
            region: Some(REGION.to_owned()),
        };
        BlobStore::open(&format!("s3://{bucket}/{prefix}"), &options)
            .expect("open a blob store on the S3 test server")
    }

    /// An object's content straight from the server (`None` when it does
    /// not exist), without going through sluice's code.
    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let (status, body) = self.request("GET", &format!("/{bucket}/{key}"));
        match status {
            200 => Some(body),
            404 => None,
            other => panic!(
                "cannot read s3://{bucket}/{key}: HTTP {other}: {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }

    fn wait_until_answering(&self) {
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the S3 test server on port {} did not answer within {START_TIMEOUT:?}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One HTTP/1.1 request with a placeholder signature; returns the
    /// status and the body. moto does not verify signatures, but since 5.x
    /// it refuses to serve objects to a request with no `Authorization`
    /// at all (403), as S3 does for private objects.
    fn request(&self, method: &str, path: &str) -> (u16, Vec<u8>) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|error| panic!("cannot reach the S3 test server: {error}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("set a read timeout");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: AWS4-HMAC-SHA256 \
             Credential={ACCESS_KEY_ID}/20260101/{REGION}/s3/aws4_request, SignedHeaders=host, \
             Signature=0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("send a request to the S3 test server");
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .expect("read the S3 test server's response");
        parse_response(&response)
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port in Werkzeug's ` * Running on http://127.0.0.1:PORT`.
fn announced_port(line: &str) -> Option<u16> {
    let (_, address) = line.split_once("Running on http://127.0.0.1:")?;
    address
        .trim()
        .trim_end_matches(|character: char| !character.is_ascii_digit())
        .parse()
        .ok()
}

fn parse_response(response: &[u8]) -> (u16, Vec<u8>) {
    let split = response
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("an HTTP response with headers");
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let body = &response[split + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("an HTTP status line");
    if head.contains("transfer-encoding: chunked") {
        (status, dechunk(body))
    } else {
        (status, body.to_vec())
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut content = Vec::new();
    loop {
        let Some(end) = body.windows(2).position(|window| window == b"\r\n") else {
            return content;
        };
        let size_text = String::from_utf8_lossy(&body[..end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            return content;
        };
        if size == 0 {
            return content;
        }
        let start = end + 2;
        content.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}
