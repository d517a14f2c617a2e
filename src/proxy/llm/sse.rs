//! Server-sent events, incrementally: bytes from the upstream go in as they arrive (split
//! anywhere, `\n`, `\r\n` or `\r` line ends), complete events come out. keel must *see*
//! events — to hold the response until the first content event, to track the text already
//! delivered, and to rewrite continuation events — so the LLM path re-frames streams here
//! instead of relaying raw bytes.
//!
//! Follows the WHATWG parsing rules that matter for LLM streams: `:` comment lines are
//! skipped, several `data:` lines join with `\n`, one space after the colon is dropped, a
//! blank line dispatches. An event larger than [`MAX_EVENT_BYTES`] is dropped (reported as
//! [`SseItem::Oversized`]) so a broken upstream cannot grow keel's memory.

use bytes::{Bytes, BytesMut};

/// Largest event keel buffers; LLM deltas are tiny, a usage chunk is well under 1 KiB.
pub(crate) const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field (`message_start`, `error`...); `None` for plain `data:` events.
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

/// What the parser yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SseItem {
    Event(SseEvent),
    /// An event exceeded [`MAX_EVENT_BYTES`] and was discarded.
    Oversized,
}

impl SseEvent {
    pub(crate) fn data(data: impl Into<String>) -> Self {
        SseEvent {
            event: None,
            data: data.into(),
            id: None,
        }
    }

    pub(crate) fn named(event: &str, data: impl Into<String>) -> Self {
        SseEvent {
            event: Some(event.to_string()),
            data: data.into(),
            id: None,
        }
    }

    /// The wire form, ending with the blank line that dispatches it.
    pub(crate) fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.data.len() + 32);
        if let Some(e) = &self.event {
            out.extend_from_slice(b"event: ");
            out.extend_from_slice(e.as_bytes());
            out.extend_from_slice(b"\n");
        }
        if let Some(id) = &self.id {
            out.extend_from_slice(b"id: ");
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(b"\n");
        }
        for line in self.data.split('\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\n");
        }
        out.extend_from_slice(b"\n");
        out.freeze()
    }
}

/// Incremental parser; feed it chunks, take events.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next chunk belongs to it.
    after_cr: bool,
    current: SseEvent,
    has_data: bool,
    /// Bytes held for the current event; beyond the limit it is skipped to its end.
    size: usize,
    oversized: bool,
}

impl SseParser {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Feeds one chunk and returns the events it completed, in order.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Vec<SseItem> {
        let mut out = Vec::new();
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(r) = rest.strip_prefix(b"\n") {
                rest = r;
            }
        }
        while let Some(pos) = rest.iter().position(|b| *b == b'\n' || *b == b'\r') {
            self.push_line_bytes(&rest[..pos]);
            let is_cr = rest[pos] == b'\r';
            rest = &rest[pos + 1..];
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            if let Some(item) = self.line_done(&line) {
                out.push(item);
            }
        }
        self.push_line_bytes(rest);
        out
    }

    /// The stream ended: an event whose blank line never came is still dispatched, because
    /// upstreams that close right after their last `data:` line do exist.
    pub(crate) fn finish(&mut self) -> Option<SseItem> {
        let line = std::mem::take(&mut self.line);
        let mut item = None;
        if !line.is_empty() {
            item = self.line_done(&line);
        }
        item.or_else(|| self.dispatch())
    }

    fn push_line_bytes(&mut self, bytes: &[u8]) {
        self.size += bytes.len();
        if self.size > MAX_EVENT_BYTES {
            self.oversized = true;
            self.line.clear();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn line_done(&mut self, line: &[u8]) -> Option<SseItem> {
        if line.is_empty() {
            return self.dispatch();
        }
        if self.oversized || line.starts_with(b":") {
            return None;
        }
        let (field, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.current.event = Some(value.into_owned()),
            b"id" => self.current.id = Some(value.into_owned()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseItem> {
        let event = std::mem::take(&mut self.current);
        let had_data = std::mem::replace(&mut self.has_data, false);
        self.size = 0;
        if std::mem::replace(&mut self.oversized, false) {
            return Some(SseItem::Oversized);
        }
        // Per the spec an event without data is not dispatched (e.g. a lone `event:` line).
        had_data.then_some(SseItem::Event(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(items: Vec<SseItem>) -> Vec<SseEvent> {
        items
            .into_iter()
            .filter_map(|i| match i {
                SseItem::Event(e) => Some(e),
                SseItem::Oversized => None,
            })
            .collect()
    }

    #[test]
    fn split_anywhere_gives_the_same_events() {
        let wire = b"event: message_start\r\ndata: {\"a\":1}\r\n\r\n: keep-alive\n\ndata: line1\ndata:line2\n\ndata: [DONE]\r\r";
        let whole = events(SseParser::new().feed(wire));
        assert_eq!(
            whole,
            vec![
                SseEvent::named("message_start", "{\"a\":1}"),
                SseEvent::data("line1\nline2"),
                SseEvent::data("[DONE]"),
            ]
        );
        for size in 1..wire.len() {
            let mut p = SseParser::new();
            let mut got = Vec::new();
            for chunk in wire.chunks(size) {
                got.extend(events(p.feed(chunk)));
            }
            assert_eq!(got, whole, "chunk size {size}");
        }
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_end() {
        let mut p = SseParser::new();
        assert!(p.feed(b"data: a\r").is_empty());
        assert!(p.feed(b"\n").is_empty());
        assert_eq!(events(p.feed(b"\r\n")), vec![SseEvent::data("a")]);
    }

    #[test]
    fn unterminated_last_event_is_dispatched_at_the_end() {
        let mut p = SseParser::new();
        assert!(p.feed(b"data: tail").is_empty());
        assert_eq!(p.finish(), Some(SseItem::Event(SseEvent::data("tail"))));
        assert_eq!(p.finish(), None);
    }

    #[test]
    fn oversized_event_is_dropped_and_parsing_goes_on() {
        let mut p = SseParser::new();
        let big = vec![b'x'; MAX_EVENT_BYTES + 10];
        let mut items = p.feed(b"data: ");
        items.extend(p.feed(&big));
        items.extend(p.feed(b"\n\ndata: ok\n\n"));
        assert_eq!(
            items,
            vec![SseItem::Oversized, SseItem::Event(SseEvent::data("ok"))]
        );
    }

    #[test]
    fn encode_round_trips() {
        let e = SseEvent {
            event: Some("content_block_delta".into()),
            data: "a\nb".into(),
            id: Some("7".into()),
        };
        let wire = e.encode();
        assert_eq!(events(SseParser::new().feed(&wire)), vec![e]);
    }
}
