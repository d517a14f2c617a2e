//! Whole bodies collected from chunks, copied only when there is more than one.
//!
//! Small request and answer bodies usually arrive in the same read as their header, so they
//! come out of Pingora as one `Bytes` chunk: keeping that chunk (a reference count) instead
//! of copying it into a fresh buffer saves an allocation and a copy per body on the hot path.

use bytes::{Bytes, BytesMut};

#[derive(Debug, Default)]
pub(crate) struct Collected {
    /// The body while it is a single chunk.
    first: Bytes,
    /// The body once a second chunk arrived (the first one copied in).
    joined: Option<BytesMut>,
    /// Expected length, reserved when the chunks are joined.
    capacity: usize,
}

impl Collected {
    /// An empty body expected to be about `capacity` bytes long.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Collected {
            capacity,
            ..Collected::default()
        }
    }

    /// Bytes collected so far.
    pub(crate) fn size(&self) -> usize {
        self.joined.as_ref().map_or(self.first.len(), BytesMut::len)
    }

    pub(crate) fn push(&mut self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        if let Some(joined) = &mut self.joined {
            joined.extend_from_slice(&chunk);
        } else if self.first.is_empty() {
            self.first = chunk;
        } else {
            let first = std::mem::take(&mut self.first);
            let mut joined = BytesMut::with_capacity(self.capacity.max(first.len() + chunk.len()));
            joined.extend_from_slice(&first);
            joined.extend_from_slice(&chunk);
            self.joined = Some(joined);
        }
    }

    pub(crate) fn finish(self) -> Bytes {
        match self.joined {
            Some(joined) => joined.freeze(),
            None => self.first,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(capacity: usize, chunks: &[&'static [u8]]) -> (Bytes, usize) {
        let mut c = Collected::with_capacity(capacity);
        for chunk in chunks {
            c.push(Bytes::from_static(chunk));
        }
        let len = c.size();
        (c.finish(), len)
    }

    #[test]
    fn one_chunk_is_kept_as_it_is() {
        let chunk = Bytes::from_static(b"{\"a\":1}");
        for capacity in [0, 7, 100] {
            let mut c = Collected::with_capacity(capacity);
            c.push(chunk.clone());
            let body = c.finish();
            assert_eq!(body, chunk);
            assert_eq!(body.as_ptr(), chunk.as_ptr(), "not copied");
        }
    }

    #[test]
    fn several_chunks_are_joined_in_order() {
        for capacity in [0, 3, 64] {
            let (body, len) = collect(capacity, &[b"ab", b"", b"cde", b"f"]);
            assert_eq!(&body[..], b"abcdef");
            assert_eq!(len, 6);
        }
    }

    #[test]
    fn nothing_is_an_empty_body() {
        for capacity in [0, 10] {
            let (body, len) = collect(capacity, &[]);
            assert!(body.is_empty());
            assert_eq!(len, 0);
            let (body, _) = collect(capacity, &[b""]);
            assert!(body.is_empty());
        }
    }
}
