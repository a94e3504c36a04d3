//! A reader of Server-Sent Events (the `text/event-stream` format): bytes in,
//! whole events out. It knows the fields sluice's server sends (`event:`,
//! `data:`, `id:`), skips comments (the server's keep-alives) and fields it
//! does not know, and accepts `\n`, `\r\n` and `\r` line endings, split
//! anywhere across the chunks the network delivers.

/// One event of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `message` when the event had none.
    pub event: String,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
    /// The `id:` field, when the event had one.
    pub id: Option<String>,
}

/// Turns chunks of a stream into events.
#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of a line not yet complete.
    pending: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting this one belongs to
    /// that line ending.
    after_cr: bool,
    /// The event being assembled.
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
}

impl Parser {
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Feeds a chunk and returns the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut bytes = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(end) = bytes
            .iter()
            .position(|byte| *byte == b'\n' || *byte == b'\r')
        {
            self.pending.extend_from_slice(&bytes[..end]);
            let line = std::mem::take(&mut self.pending);
            if let Some(event) = self.line(&line) {
                events.push(event);
            }
            let was_cr = bytes[end] == b'\r';
            bytes = &bytes[end + 1..];
            if was_cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.pending.extend_from_slice(bytes);
        events
    }

    /// Handles one complete line; an empty line ends the event.
    fn line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(b":") {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (text.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "id" => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }

    /// The event assembled so far; one without data is dropped, as the
    /// format says.
    fn dispatch(&mut self) -> Option<Event> {
        let event = self.event.take();
        let id = self.id.take();
        let data = self.data.take()?;
        Some(Event {
            event: event
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| "message".to_owned()),
            data,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> Event {
        Event {
            event: name.to_owned(),
            data: data.to_owned(),
            id: None,
        }
    }

    #[test]
    fn events_are_split_on_blank_lines() {
        let mut parser = Parser::new();
        let events = parser.feed(b"event: try\ndata: {\"n\":1}\n\nevent: end\ndata: {}\n\n");
        assert_eq!(events, vec![event("try", "{\"n\":1}"), event("end", "{}")]);
    }

    #[test]
    fn chunks_may_split_lines_and_line_endings_anywhere() {
        let text =
            b"event: line\r\ndata: a\r\nid: 7\r\n\r\n: keep-alive\r\n\r\ndata: b\r\rdata:c\n\n";
        for split in 0..text.len() {
            let mut parser = Parser::new();
            let mut events = parser.feed(&text[..split]);
            events.extend(parser.feed(&text[split..]));
            assert_eq!(
                events,
                vec![
                    Event {
                        event: "line".to_owned(),
                        data: "a".to_owned(),
                        id: Some("7".to_owned()),
                    },
                    event("message", "b"),
                    event("message", "c"),
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn data_lines_join_and_unknown_fields_are_skipped() {
        let mut parser = Parser::new();
        let events = parser.feed(b"retry: 10\ndata: one\ndata:two\nfoo: bar\n\nevent: empty\n\n");
        assert_eq!(events, vec![event("message", "one\ntwo")]);
    }

    #[test]
    fn a_line_split_inside_a_utf8_character_survives() {
        let text = "data: caf\u{e9}\n\n".as_bytes();
        let mut parser = Parser::new();
        let mut events = parser.feed(&text[..10]);
        events.extend(parser.feed(&text[10..]));
        assert_eq!(events, vec![event("message", "caf\u{e9}")]);
    }
}
