//! Fencing tokens: one counter per lock key, strictly increasing, never reused.
//!
//! The counter is persisted in the same redb transaction as the acquisition that used it,
//! and a token is only handed out after that transaction committed; so neither a restart
//! (also after `kill -9`) nor a force-release can make a token come back. A force-release
//! does not touch the counter: it clears the holder, so the old token matches nothing and
//! the next acquisition gets a larger one.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FencingCounter {
    /// The last token issued for this key (0: none yet).
    last: u64,
}

impl FencingCounter {
    pub fn starting_after(last: u64) -> Self {
        FencingCounter { last }
    }

    /// The next token; the counter moves past it at once.
    pub fn issue(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    pub fn last(&self) -> u64 {
        self.last
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
}
