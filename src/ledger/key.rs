//! Lock keys: `<kind>:<id>` such as `gpu_lock:0`. A well-formed key that keel does not know
//! reads as a free lock (as the reference did); a malformed one is a client error. The
//! syntax check is config's (`[ledger] locks` is checked with it before anything starts).

pub use crate::config::{check_lock_key, LockKeyError};

/// The key every reference endpoint uses when `lock_key` is not given.
pub const DEFAULT_LOCK_KEY: &str = "gpu_lock:0";

/// The lock key of GPU `index`.
pub fn gpu_lock_key(index: u32) -> String {
    format!("gpu_lock:{index}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_keys_are_lock_keys() {
        assert_eq!(gpu_lock_key(3), "gpu_lock:3");
        assert!(check_lock_key(&gpu_lock_key(3)).is_ok());
        assert!(check_lock_key(DEFAULT_LOCK_KEY).is_ok());
    }
}
