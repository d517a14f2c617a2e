//! The one redb file (`data_dir/keel.redb`) that every domain persists through.
//!
//! Opened once per process; redb takes an exclusive file lock, so a second keel on the same
//! data dir fails at once with [`StoreError::AlreadyOpen`] instead of hanging or corrupting.
//! A `meta` table records the schema version so later releases can migrate or refuse.
//!
//! The store never silently starts over: only a *missing* file makes a new store. A new store
//! is built under a temporary name and renamed into place once its first commit is durable,
//! so a crash during the very first start cannot leave a half-made `keel.redb` behind. An
//! existing file that is empty, truncated or damaged (including a damage that makes redb
//! panic) refuses to open with [`StoreError::Empty`] / [`StoreError::Damaged`], which name the
//! file and say what to do. The fencing high-water mark beside the store (see
//! `ledger::fencing`) keeps tokens moving forward whichever way the operator recovers.

use redb::{
    Builder, Database, DatabaseError, Durability, ReadTransaction, ReadableDatabase, ReadableTable,
    TableDefinition, WriteTransaction,
};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Bumped when a table's key or value layout changes incompatibly.
pub(crate) const SCHEMA_VERSION: u64 = 1;

/// The store's file name inside `data_dir`.
pub(crate) const FILE_NAME: &str = "keel.redb";
/// Where a new store is built before it is renamed to [`FILE_NAME`].
const NEW_FILE_NAME: &str = "keel.redb.new";

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SCHEMA_KEY: &str = "schema_version";

/// What an operator can do about a store file keel will not open; shared by every
/// integrity error so the advice is the same wherever it is printed.
pub(crate) fn recovery_advice(path: &Path) -> String {
    format!(
        "keel does not start a new store under an existing name. Restore {name} from a \
         backup, or move it away (mv {p} {p}.broken) to start with an empty store; fencing \
         tokens continue above the high-water mark in keel.fence either way",
        name = FILE_NAME,
        p = path.display()
    )
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: the store is already open by another keel process (one keel per data_dir)")]
    AlreadyOpen { path: PathBuf },
    #[error("{path}: cannot open the store: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: DatabaseError,
    },
    /// The file exists but holds nothing: truncated or replaced outside keel.
    #[error("{path}: the store file is empty (0 bytes), it was truncated or replaced outside keel; {}", recovery_advice(.path))]
    Empty { path: PathBuf },
    /// The file exists but is not a consistent redb database (or made redb panic).
    #[error("{path}: the store file is damaged ({detail}); {}", recovery_advice(.path))]
    Damaged { path: PathBuf, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot create the data directory: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: schema version {found} is newer than this keel supports ({supported})")]
    SchemaTooNew {
        path: PathBuf,
        found: u64,
        supported: u64,
    },
    #[error("store transaction failed: {0}")]
    Transaction(String),
}

impl StoreError {
    /// The file is there but unusable: the operator must act (restore or move it away), so
    /// restarting keel would not help.
    pub fn is_integrity(&self) -> bool {
        matches!(self, StoreError::Empty { .. } | StoreError::Damaged { .. })
    }
}

macro_rules! txn_error {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Transaction(e.to_string())
            }
        }
    )*};
}
txn_error!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
    serde_json::Error,
    tokio::task::JoinError
);

/// Shared handle to the open database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: PathBuf,
}

impl Store {
    /// Opens `data_dir/keel.redb`, or creates it when (and only when) it does not exist, and
    /// checks its schema version.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let path = data_dir.join(FILE_NAME);
        // Two keels starting at once on a fresh data dir must not both build a new store.
        let dir = DirLock::exclusive(data_dir)?;
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() == 0 => Err(StoreError::Empty { path }),
            Ok(_) => Store::open_existing(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Store::create_new(&dir, path),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// An existing file: every page's checksum is verified on open, so a file damaged
    /// outside redb is an error now rather than a panic or wrong data later. redb may still
    /// panic on some damage (debug builds assert); that panic is caught here and reported
    /// like any other damage.
    fn open_existing(path: PathBuf) -> Result<Store, StoreError> {
        guarded(&path, || {
            let db = Builder::new()
                .set_check_integrity_on_open(true)
                .open(&path)
                .map_err(|e| open_error(&path, e))?;
            let store = Store {
                db: Arc::new(db),
                path: path.clone(),
            };
            store.check_schema().map_err(|e| match e {
                StoreError::Transaction(detail) => StoreError::Damaged {
                    path: path.clone(),
                    detail,
                },
                other => other,
            })?;
            Ok(store)
        })
    }

    /// A new store: made as `keel.redb.new`, schema committed durably, then renamed into
    /// place (and the directory synced), so `keel.redb` only ever names a complete store.
    fn create_new(dir: &DirLock, path: PathBuf) -> Result<Store, StoreError> {
        let fresh = dir.path.join(NEW_FILE_NAME);
        // Left over by a crash during an earlier first start; it never held data.
        match std::fs::remove_file(&fresh) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(StoreError::Io {
                    path: fresh,
                    source,
                })
            }
        }
        let db = Database::create(&fresh).map_err(|e| open_error(&fresh, e))?;
        let store = Store {
            db: Arc::new(db),
            path: path.clone(),
        };
        store.check_schema()?;
        std::fs::rename(&fresh, &path).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        dir.sync()
            .map_err(|source| StoreError::Io { path, source })?;
        Ok(store)
    }

    fn check_schema(&self) -> Result<(), StoreError> {
        let txn = self.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get(SCHEMA_KEY)?.map(|v| v.value());
            match found {
                Some(v) if v > SCHEMA_VERSION => {
                    return Err(StoreError::SchemaTooNew {
                        path: self.path.clone(),
                        found: v,
                        supported: SCHEMA_VERSION,
                    })
                }
                Some(_) => {}
                None => {
                    meta.insert(SCHEMA_KEY, SCHEMA_VERSION)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A durable write transaction: its commit is on disk before `commit` returns.
    pub fn begin_write(&self) -> Result<WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        Ok(txn)
    }

    pub fn begin_read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.begin_read()?)
    }

    /// Runs a durable write off the async runtime (redb commits fsync) and commits it.
    pub async fn write<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<R, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let txn = store.begin_write()?;
            let out = f(&txn)?;
            txn.commit()?;
            Ok(out)
        })
        .await?
    }

    /// Runs a read transaction off the async runtime.
    pub async fn read<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<R, StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store.begin_read()?)).await?
    }

    /// The schema version recorded in the file.
    pub fn schema_version(&self) -> Result<u64, StoreError> {
        let txn = self.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(SCHEMA_KEY)?.map(|v| v.value()).unwrap_or(0))
    }
}

fn open_error(path: &Path, e: DatabaseError) -> StoreError {
    let path = path.to_path_buf();
    match e {
        DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen { path },
        // Not a redb file at all (wrong magic number, cut short) or a failed checksum.
        DatabaseError::Storage(redb::StorageError::Corrupted(detail)) => {
            StoreError::Damaged { path, detail }
        }
        DatabaseError::Storage(redb::StorageError::Io(io))
            if matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            StoreError::Damaged {
                path,
                detail: io.to_string(),
            }
        }
        source => StoreError::Open { path, source },
    }
}

/// Runs `f`, turning a panic inside it (redb's reaction to some damage) into
/// [`StoreError::Damaged`] for `path`.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(StoreError::Damaged {
            path: path.to_path_buf(),
            detail: format!("redb panicked while reading it: {}", panic_text(&*panic)),
        })
    })
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// An exclusive `flock` on the data directory, held while the store is opened or created;
/// also the handle used to fsync the directory after a rename.
struct DirLock {
    path: PathBuf,
    file: File,
}

impl DirLock {
    fn exclusive(dir: &Path) -> Result<DirLock, StoreError> {
        let io = |source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        };
        let file = File::open(dir).map_err(io)?;
        // SAFETY: flock(2) on a descriptor we own; released when `file` closes.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        Ok(DirLock {
            path: dir.to_path_buf(),
            file,
        })
    }

    /// Makes a rename inside the directory durable.
    fn sync(&self) -> std::io::Result<()> {
        self.file.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_fails_at_once_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = Store::open(dir.path()).unwrap();
        assert_eq!(first.schema_version().unwrap(), SCHEMA_VERSION);
        let err = Store::open(dir.path())
            .err()
            .expect("second open must fail");
        assert!(matches!(err, StoreError::AlreadyOpen { .. }));
        assert!(err.to_string().contains("keel.redb"));
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keel.redb"), vec![0x42u8; 8192]).unwrap();
        let err = Store::open(dir.path())
            .err()
            .expect("garbage must not open");
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
        assert!(err.to_string().contains("keel.redb"), "{err}");
        assert!(err.is_integrity());
    }

    #[test]
    fn an_empty_file_is_refused_and_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keel.redb");
        std::fs::write(&path, b"").unwrap();
        let err = Store::open(dir.path()).err().expect("must refuse");
        assert!(matches!(err, StoreError::Empty { .. }), "{err}");
        assert!(err.to_string().contains("move it away"), "{err}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn truncated_and_damaged_stores_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keel.redb");
        {
            let s = Store::open(dir.path()).unwrap();
            let txn = s.begin_write().unwrap();
            {
                let mut t = txn
                    .open_table(TableDefinition::<u64, &[u8]>::new("filler"))
                    .unwrap();
                for i in 0..2000u64 {
                    t.insert(i, [i as u8; 100].as_slice()).unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let good = std::fs::read(&path).unwrap();
        // Cut in half.
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        let err = Store::open(dir.path())
            .err()
            .expect("truncated must not open");
        assert!(err.is_integrity(), "{err}");
        // Same length, a run of bytes overwritten in the middle.
        let mut damaged = good.clone();
        let mid = damaged.len() / 2;
        damaged[mid..mid + 4096].fill(0xA5);
        std::fs::write(&path, &damaged).unwrap();
        let err = Store::open(dir.path())
            .err()
            .expect("damaged must not open");
        assert!(err.is_integrity(), "{err}");
        // The intact file opens again.
        std::fs::write(&path, &good).unwrap();
        Store::open(dir.path()).unwrap();
    }

    /// Damage anywhere in a real store: open either refuses with an integrity error or
    /// opens a store that answers; it never panics out and never starts over.
    #[test]
    fn damage_anywhere_is_refused_or_harmless_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let table = TableDefinition::<u64, u64>::new("numbers");
        {
            let s = Store::open(dir.path()).unwrap();
            for round in 0..4u64 {
                let txn = s.begin_write().unwrap();
                {
                    let mut t = txn.open_table(table).unwrap();
                    for i in 0..500u64 {
                        t.insert(round * 1000 + i, i).unwrap();
                    }
                }
                txn.commit().unwrap();
            }
        }
        let good = std::fs::read(&path).unwrap();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut refused = 0;
        for _ in 0..64 {
            let mut damaged = good.clone();
            for _ in 0..8 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let at = (seed >> 33) as usize % damaged.len();
                damaged[at] ^= 0xFF;
            }
            std::fs::write(&path, &damaged).unwrap();
            match Store::open(dir.path()) {
                Ok(s) => {
                    let txn = s.begin_read().unwrap();
                    let rows = txn.open_table(table).unwrap().iter().unwrap().count();
                    assert_eq!(rows, 2000, "an open store holds all its rows");
                }
                Err(e) => {
                    assert!(e.is_integrity(), "{e}");
                    refused += 1;
                }
            }
        }
        assert!(refused > 0, "some of the damage must be noticed");
    }

    #[test]
    fn a_panic_while_opening_is_reported_as_damage() {
        let path = Path::new("/var/lib/keel/keel.redb");
        let err = guarded::<()>(path, || panic!("page checksum mismatch"))
            .expect_err("a panic is an error");
        assert!(err.is_integrity());
        let text = err.to_string();
        assert!(
            text.contains("/var/lib/keel/keel.redb") && text.contains("page checksum mismatch"),
            "{text}"
        );
    }

    #[test]
    fn a_new_store_is_only_made_where_none_exists() {
        let dir = tempfile::tempdir().unwrap();
        // A leftover of a crashed first start is replaced, not opened.
        std::fs::write(dir.path().join(NEW_FILE_NAME), b"junk").unwrap();
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        assert!(!dir.path().join(NEW_FILE_NAME).exists());
        drop(s);
        assert!(Store::open(dir.path()).is_ok());
    }
}
