//! Test receivers of notifications: an HTTP server that records the
//! requests it gets and answers them with scripted statuses, and an SMTP
//! server that speaks just enough of the protocol (greeting, EHLO/HELO,
//! MAIL FROM, RCPT TO, DATA, QUIT) to accept and record messages.
//!
//! Each listens on 127.0.0.1 with a port the system picks, serves one
//! connection at a time on its own thread, and stops when dropped.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request a [`WebhookReceiver`] got, with the status it answered.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub status: u16,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// One message a [`SmtpSink`] accepted.
#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent after `DATA`, dot-stuffing undone.
    pub data: String,
}

impl Mail {
    pub fn subject(&self) -> &str {
        self.data
            .lines()
            .find_map(|line| line.strip_prefix("Subject: "))
            .unwrap_or("")
    }
}

/// A listening thread that stops when dropped.
struct Server {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(serve: impl Fn(TcpStream) + Send + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a receiver");
        let address = listener.local_addr().expect("its address");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("receiver-{}", address.port()))
            .spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        serve(stream);
                    }
                }
            })
            .expect("spawn a receiver thread");
        Server {
            address,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// An HTTP server that records every request and answers with the
/// statuses it was given, in order, then 200.
pub struct WebhookReceiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    _server: Server,
}

impl WebhookReceiver {
    pub fn start(statuses: &[u16]) -> WebhookReceiver {
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(
            statuses.iter().copied().collect::<VecDeque<_>>(),
        ));
        let record = received.clone();
        let server = Server::start(move |stream| {
            let status = script.lock().unwrap().front().copied().unwrap_or(200);
            if let Some(request) = serve_http(stream, status) {
                script.lock().unwrap().pop_front();
                record.lock().unwrap().push(request);
            }
        });
        WebhookReceiver {
            url: format!("http://{}/hooks/sluice?token=s3cr3t", server.address),
            received,
            _server: server,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits until `count` requests arrived, or panics after `timeout`.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {count} requests; got {}",
                received.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Reads one request and answers `status`; `None` when the connection
/// carried no request (the wake-up connection of a stopping server).
fn serve_http(stream: TcpStream, status: u16) -> Option<Received> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let path = request_line.split_whitespace().nth(1)?.to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|length| length.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let mut stream = stream;
    let answer =
        format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(answer.as_bytes()).ok()?;
    Some(Received {
        path,
        headers,
        body,
        status,
    })
}

/// An SMTP server that accepts every message and records it.
pub struct SmtpSink {
    pub host: String,
    pub port: u16,
    mails: Arc<Mutex<Vec<Mail>>>,
    _server: Server,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let mails = Arc::new(Mutex::new(Vec::new()));
        let record = mails.clone();
        let server = Server::start(move |stream| {
            let _ = serve_smtp(stream, &record);
        });
        SmtpSink {
            host: server.address.ip().to_string(),
            port: server.address.port(),
            mails,
            _server: server,
        }
    }

    /// `smtp://host:port`, as a channel names it.
    pub fn url(&self) -> String {
        format!("smtp://{}:{}", self.host, self.port)
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }
}

fn serve_smtp(stream: TcpStream, mails: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    writer.write_all(b"220 sink.test ESMTP ready\r\n")?;
    let mut from = String::new();
    let mut to = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let address = || {
            command
                .split_once('<')
                .and_then(|(_, rest)| rest.split_once('>'))
                .map(|(address, _)| address.to_owned())
                .unwrap_or_default()
        };
        match verb.as_str() {
            "EHLO" => writer.write_all(b"250-sink.test\r\n250 8BITMIME\r\n")?,
            "HELO" | "NOOP" => writer.write_all(b"250 OK\r\n")?,
            "RSET" => {
                from.clear();
                to.clear();
                writer.write_all(b"250 OK\r\n")?;
            }
            "MAIL" => {
                from = address();
                writer.write_all(b"250 OK\r\n")?;
            }
            "RCPT" => {
                to.push(address());
                writer.write_all(b"250 OK\r\n")?;
            }
            "DATA" => {
                writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n")?;
                let mut data = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    let line = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(line);
                }
                mails.lock().unwrap().push(Mail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                });
                writer.write_all(b"250 queued\r\n")?;
            }
            "QUIT" => {
                writer.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => writer.write_all(b"502 not implemented\r\n")?,
        }
    }
}
