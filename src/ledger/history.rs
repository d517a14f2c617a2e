//! The bounded lists behind the lock history (acquire, release, expiry, force-release —
//! also failed attempts) and the timeout manager's action history: newest first, persisted
//! by sequence number so a restart shows the same history (the entries are in `records`).

use std::collections::VecDeque;

/// A bounded, newest-first list whose entries carry a sequence number (the store key).
#[derive(Debug)]
pub struct Bounded<T> {
    limit: usize,
    next_seq: u64,
    entries: VecDeque<(u64, T)>,
}

impl<T: Clone> Bounded<T> {
    /// Rebuilt from stored `(seq, entry)` pairs in any order.
    pub fn restore(limit: usize, mut stored: Vec<(u64, T)>) -> Self {
        stored.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        stored.truncate(limit);
        let next_seq = stored.first().map(|(s, _)| s + 1).unwrap_or(1);
        Bounded {
            limit,
            next_seq,
            entries: stored.into(),
        }
    }

    /// Adds an entry at the front; returns its sequence number.
    pub fn push(&mut self, entry: T) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.entries.push_front((seq, entry));
        self.entries.truncate(self.limit);
        seq
    }

    /// Newest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|(_, e)| e)
    }

    pub fn newest(&self, n: usize) -> Vec<T> {
        self.iter().take(n).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_newest_first_and_restores_sequence() {
        let mut h = Bounded::restore(3, vec![]);
        for n in 0..5u32 {
            h.push(n);
        }
        assert_eq!(h.newest(10), vec![4, 3, 2]);
        let stored: Vec<(u64, u32)> = vec![(3, 2), (5, 4), (4, 3)];
        let mut back = Bounded::restore(3, stored);
        assert_eq!(back.newest(10), vec![4, 3, 2]);
        assert_eq!(back.push(5), 6);
    }
}
