//! A small SMTP client (RFC 5321) for notification emails: plain SMTP on
//! tokio to one relay, without TLS or authentication: `EHLO` (or `HELO`),
//! `MAIL FROM`, `RCPT TO` per recipient, `DATA` with dot-stuffing, `QUIT`.
//!
//! Why not a mail crate: what sluice sends is one text message to a relay,
//! and a full client (TLS, authentication, MIME builders) would cost more
//! build time than the whole feature; this one is a page of code.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long the whole conversation with the relay may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The longest reply accepted from a server, in lines.
const MAX_REPLY_LINES: usize = 100;

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    /// RFC 2822 date, such as `Mon, 23 Nov 2026 15:00:00 +0000`.
    pub date: String,
    /// A unique id, without angle brackets.
    pub message_id: String,
    /// Plain text; line ends are made CRLF.
    pub body: String,
}

/// Why a message was not sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The relay refused for good (a 5xx reply): sending again will not help.
    #[error("the SMTP server refused {step}: {reply}")]
    Refused { step: &'static str, reply: String },
    /// The relay answered 4xx, or the connection failed: worth another try.
    #[error("the SMTP server deferred {step}: {reply}")]
    Deferred { step: &'static str, reply: String },
    #[error("cannot talk to the SMTP server")]
    Io(#[from] std::io::Error),
    #[error("the SMTP server did not answer within {}s", TIMEOUT.as_secs())]
    Timeout,
}

impl Error {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, Error::Refused { .. })
    }
}

/// Sends `message` through the relay at `host:port`.
pub async fn send(host: &str, port: u16, message: &Message) -> Result<(), Error> {
    tokio::time::timeout(TIMEOUT, conversation(host, port, message))
        .await
        .map_err(|_| Error::Timeout)?
}

async fn conversation(host: &str, port: u16, message: &Message) -> Result<(), Error> {
    let stream = TcpStream::connect((host, port)).await?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    expect(&mut read, "the greeting", 220).await?;
    write.write_all(b"EHLO sluice\r\n").await?;
    if let Err(Error::Refused { .. }) = expect(&mut read, "EHLO", 250).await {
        write.write_all(b"HELO sluice\r\n").await?;
        expect(&mut read, "HELO", 250).await?;
    }
    write
        .write_all(format!("MAIL FROM:<{}>\r\n", message.from).as_bytes())
        .await?;
    expect(&mut read, "the sender", 250).await?;
    for to in &message.to {
        write
            .write_all(format!("RCPT TO:<{to}>\r\n").as_bytes())
            .await?;
        expect(&mut read, "a recipient", 250).await?;
    }
    write.write_all(b"DATA\r\n").await?;
    expect(&mut read, "DATA", 354).await?;
    write.write_all(render(message).as_bytes()).await?;
    write.write_all(b".\r\n").await?;
    expect(&mut read, "the message", 250).await?;
    // The message is accepted; a failing QUIT changes nothing.
    let _ = write.write_all(b"QUIT\r\n").await;
    Ok(())
}

/// Reads one (possibly multi-line) reply and checks its code: `wanted`,
/// or any 2xx when `wanted` is 250.
async fn expect<R: AsyncBufReadExt + Unpin>(
    read: &mut R,
    step: &'static str,
    wanted: u16,
) -> Result<(), Error> {
    let mut reply = String::new();
    for _ in 0..MAX_REPLY_LINES {
        let mut line = String::new();
        if read.read_line(&mut line).await? == 0 {
            return Err(Error::Deferred {
                step,
                reply: "the connection was closed".to_owned(),
            });
        }
        let line = line.trim_end();
        if !reply.is_empty() {
            reply.push(' ');
        }
        reply.push_str(line);
        // `250-...` continues the reply; `250 ...` (or `250`) ends it.
        if line.as_bytes().get(3) != Some(&b'-') {
            let code: u16 = line
                .get(..3)
                .and_then(|code| code.parse().ok())
                .unwrap_or(0);
            return if code == wanted || (wanted == 250 && (200..300).contains(&code)) {
                Ok(())
            } else if (500..600).contains(&code) {
                Err(Error::Refused { step, reply })
            } else {
                Err(Error::Deferred { step, reply })
            };
        }
    }
    Err(Error::Deferred {
        step,
        reply: format!("the reply is longer than {MAX_REPLY_LINES} lines"),
    })
}

/// The message as sent after `DATA`: headers, a blank line, the body with
/// CRLF line ends and leading dots doubled. Header values are kept to one
/// line, so nothing in them can add a header.
pub fn render(message: &Message) -> String {
    let one_line = |text: &str| text.replace(['\r', '\n'], " ");
    let mut out = String::new();
    for (name, value) in [
        ("From", message.from.as_str()),
        ("To", &message.to.join(", ")),
        ("Subject", &message.subject),
        ("Date", &message.date),
        ("Message-ID", &format!("<{}>", message.message_id)),
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", "8bit"),
    ] {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(&one_line(value));
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    for line in message.body.lines() {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_dot_stuffed_and_headers_stay_on_one_line() {
        let message = Message {
            from: "sluice@example.com".to_owned(),
            to: vec!["a@example.com".to_owned(), "b@example.com".to_owned()],
            subject: "run failed\r\nBcc: evil@example.com".to_owned(),
            date: "Mon, 23 Nov 2026 15:00:00 +0000".to_owned(),
            message_id: "1@sluice".to_owned(),
            body: "first\n.hidden\nlast".to_owned(),
        };
        let text = render(&message);
        assert!(text.contains("Subject: run failed  Bcc: evil@example.com\r\n"));
        assert!(!text.contains("\r\nBcc:"));
        assert!(text.contains("To: a@example.com, b@example.com\r\n"));
        assert!(text.ends_with("\r\n\r\nfirst\r\n..hidden\r\nlast\r\n"));
    }
}
