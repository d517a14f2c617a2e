//! `data_dir/keel.run.json`: the running keel's pid and the addresses it actually bound.
//! With `listen = "127.0.0.1:0"` (the e2e tests, several keels on one box) the ports are
//! only known after binding; tools and tests read them here instead of guessing free ports.
//! Written atomically once both listeners are bound, removed at a clean stop; a file left by
//! a killed keel names a pid that is no longer keel's, which readers check.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The file's name inside the data dir.
pub const FILE: &str = "keel.run.json";

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    pub pid: u32,
    pub control: SocketAddr,
    pub proxy: SocketAddr,
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE)
}

/// Writes the file (temporary name, then rename: a reader never sees half of it).
pub fn write(data_dir: &Path, info: &RunInfo) -> std::io::Result<()> {
    let tmp = data_dir.join(format!("{FILE}.tmp"));
    let json = serde_json::to_vec(info).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path(data_dir))
}

/// Reads the file, if there is one.
pub fn read(data_dir: &Path) -> Option<RunInfo> {
    let bytes = std::fs::read(path(data_dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Removes the file at a clean stop.
pub fn remove(data_dir: &Path) {
    let _ = std::fs::remove_file(path(data_dir));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_gone_after_remove() {
        let dir = tempfile::tempdir().expect("tmp");
        let info = RunInfo {
            pid: 42,
            control: "127.0.0.1:8081".parse().expect("addr"),
            proxy: "[::1]:8080".parse().expect("addr"),
        };
        assert_eq!(read(dir.path()), None);
        write(dir.path(), &info).expect("write");
        assert_eq!(read(dir.path()), Some(info));
        remove(dir.path());
        assert_eq!(read(dir.path()), None);
    }
}
