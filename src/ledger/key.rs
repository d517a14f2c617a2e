//! Lock keys: `<kind>:<id>` such as `gpu_lock:0`. A well-formed key that keel does not know
//! reads as a free lock (as the reference did); a malformed one is a client error.

/// Longest accepted key; keys become metric labels and redb keys, so they stay short.
pub const MAX_KEY_LEN: usize = 128;

/// The key every reference endpoint uses when `lock_key` is not given.
pub const DEFAULT_LOCK_KEY: &str = "gpu_lock:0";

/// The lock key of GPU `index`.
pub fn gpu_lock_key(index: u32) -> String {
    format!("gpu_lock:{index}")
}

/// `Ok` for `<kind>:<id>` where kind is `[a-z][a-z0-9_]*` and id is `[A-Za-z0-9_.-]+`.
pub fn check_lock_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("lock key must not be empty".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("lock key is longer than {MAX_KEY_LEN} characters"));
    }
    let Some((kind, id)) = key.split_once(':') else {
        return Err(format!(
            "malformed lock key {key:?}: expected <kind>:<id>, e.g. gpu_lock:0"
        ));
    };
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
        Err(format!(
            "malformed lock key {key:?}: expected <kind>:<id>, e.g. gpu_lock:0"
        ))
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
        assert!(check_lock_key(&format!("a:{}", "1".repeat(200))).is_err());
        assert_eq!(gpu_lock_key(3), "gpu_lock:3");
    }
}
