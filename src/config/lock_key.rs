//! The syntax of a GPU-ledger lock key, `<kind>:<id>` such as `gpu_lock:0`. It lives here
//! because `[ledger] locks` is checked with it at load time and config depends on no other
//! keel module; the ledger uses the same check for every key a client sends.

/// Longest accepted key; keys become metric labels and redb keys, so they stay short.
pub const MAX_KEY_LEN: usize = 128;

/// Why a string is not a lock key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockKeyError {
    #[error("lock key must not be empty")]
    Empty,
    #[error("lock key is longer than {MAX_KEY_LEN} characters")]
    TooLong,
    #[error("malformed lock key {0:?}: expected <kind>:<id>, e.g. gpu_lock:0")]
    Malformed(String),
}

/// `Ok` for `<kind>:<id>` where kind is `[a-z][a-z0-9_]*` and id is `[A-Za-z0-9_.-]+`.
pub fn check_lock_key(key: &str) -> Result<(), LockKeyError> {
    if key.is_empty() {
        return Err(LockKeyError::Empty);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(LockKeyError::TooLong);
    }
    let malformed = || LockKeyError::Malformed(key.to_string());
    let (kind, id) = key.split_once(':').ok_or_else(malformed)?;
    let kind_ok = kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    let id_ok = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if kind_ok && id_ok {
        Ok(())
    } else {
        Err(malformed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_reference_keys_and_rejects_malformed_ones() {
        for good in ["gpu_lock:0", "gpu_lock:12", "model:whisper-large.v3"] {
            assert!(check_lock_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "gpu_lock",
            "gpu_lock:",
            ":0",
            "GPU:0",
            "gpu lock:0",
            "a:b:c",
            "x:ä",
        ] {
            assert!(check_lock_key(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_lock_key(&format!("a:{}", "1".repeat(200))),
            Err(LockKeyError::TooLong)
        );
    }
}
