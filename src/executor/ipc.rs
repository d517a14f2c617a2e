//! The wire between keel's main process and its executor process: one Unix stream socket
//! (a `socketpair`, fd 3 in the executor process), messages as JSON, each framed by its
//! length (u32, little endian). JSON keeps both ends one serde derive away from the
//! types they already have; a call's `input` and result travel as raw JSON text, never
//! re-encoded.

use std::io::{self, Read, Write};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::error::ExecError;
use super::pool::PoolFigures;
use super::sandbox::SandboxReport;
use super::snapshot::WarmupReport;
use super::worker::{ExecOutput, IsolateRecycled};
use crate::config::{ExecutorConfig, LogConfig};

/// The file descriptor the executor process finds its socket on.
pub(crate) const CHILD_FD: i32 = 3;

/// Largest frame either side accepts: a call's code, input and result are bounded by
/// config far below this; a larger length prefix means a broken peer.
pub(crate) const MAX_FRAME: usize = 256 * 1024 * 1024;

/// Main process → executor process.
#[derive(Debug, Serialize, Deserialize)]
// Externally tagged: serde cannot buffer a `RawValue` through an internal tag.
#[serde(rename_all = "snake_case")]
pub(crate) enum ToChild {
    /// The first message: what the executor process needs to start. No secrets: access
    /// tokens are checked in the main process and are not sent.
    Init {
        executor: Box<ExecutorConfig>,
        log: LogConfig,
        /// Extra V8 flags (`EXECUTOR_V8_FLAGS` of the main process; the executor process
        /// starts with an empty environment).
        v8_flags: Option<String>,
    },
    /// Run one block; answered by [`FromChild::Done`] with the same id.
    Exec {
        id: u64,
        code: String,
        input: Box<RawValue>,
        timeout: Duration,
        /// The access token's opaque key (not the token itself): which calls may share a
        /// warm context.
        tenant: String,
        /// [`monotonic_ns`] when the main process sent it: the queue wait counts from here.
        sent_ns: u64,
    },
}

/// Executor process → main process.
#[derive(Debug, Serialize, Deserialize)]
// Externally tagged: serde cannot buffer a `RawValue` through an internal tag.
#[serde(rename_all = "snake_case")]
pub(crate) enum FromChild {
    /// The pool is warm and serving.
    Ready {
        warmup: WarmupReport,
        sandbox: SandboxReport,
        pid: u32,
    },
    /// Startup failed (e.g. a library module threw); the process exits after this.
    Fatal {
        error: String,
        module: Option<String>,
    },
    /// The outcome of one [`ToChild::Exec`].
    Done {
        id: u64,
        outcome: Result<ExecOutput, ExecError>,
    },
    /// An isolate was replaced.
    Recycled(IsolateRecycled),
    /// The pool's figures, sent a few times a second while they change.
    Figures(PoolFigures),
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for both processes (unlike `Instant`, whose
/// value cannot cross a process boundary).
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into `ts`, a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Encodes one frame: length prefix and JSON.
pub(crate) fn encode<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4];
    serde_json::to_writer(&mut buf, msg).map_err(io::Error::other)?;
    let len = u32::try_from(buf.len() - 4)
        .ok()
        .filter(|n| (*n as usize) <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    buf[..4].copy_from_slice(&len.to_le_bytes());
    Ok(buf)
}

/// Decodes a frame's JSON body.
pub(crate) fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> io::Result<T> {
    serde_json::from_slice(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn frame_len(prefix: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is larger than {MAX_FRAME}"),
        ));
    }
    Ok(len)
}

/// Reads one frame body from a blocking stream; `Ok(None)` at a clean end of stream.
pub(crate) fn read_frame(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_len(prefix)?];
    r.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Writes one message to a blocking stream.
pub(crate) fn write_msg<T: Serialize>(w: &mut impl Write, msg: &T) -> io::Result<()> {
    w.write_all(&encode(msg)?)
}

/// Reads one frame body from an async stream; `Ok(None)` at a clean end of stream.
pub(crate) async fn read_frame_async(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
) -> io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let mut prefix = [0u8; 4];
    match r.read_exact(&mut prefix).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; frame_len(prefix)?];
    r.read_exact(&mut body).await?;
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_oversized_prefixes_are_refused() {
        let msg = ToChild::Exec {
            id: 7,
            code: "return input.a".into(),
            input: RawValue::from_string(r#"{"a":[1,2]}"#.into()).expect("raw"),
            timeout: Duration::from_millis(1500),
            tenant: "0123456789abcdef".into(),
            sent_ns: monotonic_ns(),
        };
        let bytes = encode(&msg).expect("encode");
        let body = read_frame(&mut &bytes[..]).expect("read").expect("frame");
        match decode::<ToChild>(&body).expect("decode") {
            ToChild::Exec {
                id, input, timeout, ..
            } => {
                assert_eq!(id, 7);
                assert_eq!(input.get(), r#"{"a":[1,2]}"#);
                assert_eq!(timeout, Duration::from_millis(1500));
            }
            other => panic!("{other:?}"),
        }
        assert!(read_frame(&mut &[][..]).expect("eof").is_none());
        let huge = (u32::MAX).to_le_bytes();
        assert!(read_frame(&mut &huge[..]).is_err());
        let truncated = [10u8, 0, 0, 0, b'{'];
        assert!(read_frame(&mut &truncated[..]).is_err());
    }
}
