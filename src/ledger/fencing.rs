//! Fencing tokens: one counter per lock key, strictly increasing, never reused.
//!
//! The counter is persisted in the same redb transaction as the acquisition that used it,
//! and a token is only handed out after that transaction committed; so neither a restart
//! (also after `kill -9`) nor a force-release can make a token come back. A force-release
//! does not touch the counter: it clears the holder, so the old token matches nothing and
//! the next acquisition gets a larger one.
//!
//! The store alone cannot promise that "whatever happens to the file": a `keel.redb`
//! restored from an older backup, or moved away to start empty, would hand out old tokens
//! again, and a fenced GPU writer would accept a stale holder. So a [`HighWater`] mark per
//! key lives beside the store in `data_dir/keel.fence`, and at open every counter starts
//! at `max(store, mark)`. The mark is raised durably *before* a token above it is answered
//! (the journal raises it ahead of the commit that carries the token), in blocks of
//! [`RESERVE_AHEAD`], so the acquire path writes the mark once per thousand tokens, not
//! once per token. A clean shutdown lowers the marks to the exact counters again, so tokens
//! continue without a gap; after a crash they continue above the reservation (a gap of at
//! most [`RESERVE_AHEAD`], never a step back).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The mark file's name inside `data_dir`.
pub(super) const FENCE_FILE: &str = "keel.fence";
/// How far above a token its key's mark is raised: the number of acquisitions that share
/// one write of the mark file.
pub(super) const RESERVE_AHEAD: u64 = 1000;
const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct FencingCounter {
    /// The last token issued for this key (0: none yet).
    last: u64,
}

impl FencingCounter {
    pub(super) fn starting_after(last: u64) -> Self {
        FencingCounter { last }
    }

    /// The next token; the counter moves past it at once.
    pub(super) fn issue(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    pub(super) fn last(&self) -> u64 {
        self.last
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    #[error(
        "{path}: the fencing high-water mark is unreadable ({detail}); without it fencing \
         tokens could go backwards. Restore it from a backup; only if keel.redb is intact, \
         move it away (tokens then continue from the store)"
    )]
    Unreadable { path: PathBuf, detail: String },
    #[error("{path}: cannot write the fencing high-water mark: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct MarkFile {
    version: u32,
    /// Lock key → no token above this was (or will be, until the mark moves) handed out.
    marks: BTreeMap<String, u64>,
}

/// The per-key high-water marks, as on disk.
pub(super) struct HighWater {
    path: PathBuf,
    marks: Mutex<BTreeMap<String, u64>>,
}

impl HighWater {
    /// Reads `data_dir/keel.fence`; a missing file is an empty set of marks (first start, or
    /// a store from a keel before the mark existed). A file that is there but unreadable
    /// is an error: silently ignoring it would defeat its purpose.
    pub(super) fn load(data_dir: &Path) -> Result<HighWater, FenceError> {
        let path = data_dir.join(FENCE_FILE);
        let unreadable = |detail: String| FenceError::Unreadable {
            path: path.clone(),
            detail,
        };
        let marks = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: MarkFile =
                    serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
                if file.version != FORMAT_VERSION {
                    return Err(unreadable(format!(
                        "format version {} is not {FORMAT_VERSION}",
                        file.version
                    )));
                }
                file.marks
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(unreadable(e.to_string())),
        };
        Ok(HighWater {
            path,
            marks: Mutex::new(marks),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The mark of `key` (0: none).
    pub(super) fn mark(&self, key: &str) -> u64 {
        self.lock().get(key).copied().unwrap_or(0)
    }

    /// Call before the tokens `(key, token)` are answered: every mark below its token is
    /// raised to `token + RESERVE_AHEAD` and written durably. Writes nothing (the common
    /// case) when every token is covered already.
    pub(super) fn cover<'a>(
        &self,
        tokens: impl IntoIterator<Item = (&'a str, u64)>,
    ) -> Result<(), FenceError> {
        let mut marks = self.lock();
        let mut next = None::<BTreeMap<String, u64>>;
        for (key, token) in tokens {
            let current = next.as_ref().unwrap_or(&*marks).get(key).copied();
            if current.is_none_or(|m| m < token) {
                next.get_or_insert_with(|| marks.clone())
                    .insert(key.to_string(), token.saturating_add(RESERVE_AHEAD));
            }
        }
        if let Some(next) = next {
            self.write(&next)?;
            *marks = next;
        }
        Ok(())
    }

    /// At a clean shutdown, once nothing can hand out a token any more: the marks of the
    /// given keys become their exact last tokens, so the next start continues without a
    /// gap. Keys not given keep their marks.
    pub(super) fn settle(
        &self,
        last: impl IntoIterator<Item = (String, u64)>,
    ) -> Result<(), FenceError> {
        let mut marks = self.lock();
        let mut next = marks.clone();
        for (key, token) in last {
            if token > 0 {
                next.insert(key, token);
            }
        }
        if next != *marks {
            self.write(&next)?;
            *marks = next;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u64>> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the file atomically and durably: a temporary file is written and synced,
    /// renamed over the old one, and the directory synced, so a crash leaves either the old
    /// or the new marks, never a torn file.
    fn write(&self, marks: &BTreeMap<String, u64>) -> Result<(), FenceError> {
        let fail = |source| FenceError::Write {
            path: self.path.clone(),
            source,
        };
        let body = serde_json::to_vec_pretty(&MarkFile {
            version: FORMAT_VERSION,
            marks: marks.clone(),
        })
        .map_err(|e| fail(std::io::Error::other(e)))?;
        let tmp = self.path.with_extension("fence.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(fail)?;
        file.write_all(&body).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        drop(file);
        std::fs::rename(&tmp, &self.path).map_err(fail)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(fail)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_strictly_increase_from_the_persisted_value() {
        let mut c = FencingCounter::starting_after(41);
        assert_eq!(c.issue(), 42);
        assert_eq!(c.issue(), 43);
        assert_eq!(c.last(), 43);
    }

    #[test]
    fn marks_are_raised_in_blocks_and_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let hw = HighWater::load(dir.path()).unwrap();
        assert_eq!(hw.mark("gpu_lock:0"), 0);
        hw.cover([("gpu_lock:0", 1)]).unwrap();
        assert_eq!(hw.mark("gpu_lock:0"), 1 + RESERVE_AHEAD);
        // Inside the block: no write.
        std::fs::remove_file(hw.path()).unwrap();
        hw.cover([("gpu_lock:0", 500)]).unwrap();
        assert!(
            !hw.path().exists(),
            "a covered token must not write the file"
        );
        hw.cover([("gpu_lock:0", RESERVE_AHEAD + 2), ("gpu_lock:1", 7)])
            .unwrap();
        let again = HighWater::load(dir.path()).unwrap();
        assert_eq!(again.mark("gpu_lock:0"), 2 * RESERVE_AHEAD + 2);
        assert_eq!(again.mark("gpu_lock:1"), 7 + RESERVE_AHEAD);
    }

    #[test]
    fn settle_writes_exact_values_and_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let hw = HighWater::load(dir.path()).unwrap();
        hw.cover([("a:1", 5), ("b:1", 9)]).unwrap();
        hw.settle([("a:1".to_string(), 6)]).unwrap();
        let again = HighWater::load(dir.path()).unwrap();
        assert_eq!(again.mark("a:1"), 6);
        assert_eq!(again.mark("b:1"), 9 + RESERVE_AHEAD);
    }

    #[test]
    fn an_unreadable_mark_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FENCE_FILE), b"").unwrap();
        let err = HighWater::load(dir.path()).err().expect("must refuse");
        assert!(err.to_string().contains("keel.fence"), "{err}");
    }
}
