//! Smooth weighted round robin (nginx's algorithm, the reference's choice): each pick adds
//! every candidate's effective weight to its running `current`, takes the largest, and
//! subtracts the total from the winner. Over one cycle each candidate is picked in
//! proportion to its weight, and picks of a heavy node are spread out instead of bunched.
//!
//! Candidates change from pick to pick (breakers, the skip set of a retry), so the running
//! values live in a map keyed by node name and candidates that are absent keep theirs.

use std::collections::HashMap;

#[derive(Debug, Default)]
pub(crate) struct SmoothWrr {
    current: HashMap<String, i64>,
}

impl SmoothWrr {
    /// Picks among `(name, effective weight)` and returns the winner's index; `None` when
    /// no candidate has a weight above 0.
    pub(crate) fn pick(&mut self, candidates: &[(&str, u64)]) -> Option<usize> {
        let total: i64 = candidates.iter().map(|(_, w)| *w as i64).sum();
        if total == 0 {
            return None;
        }
        let mut best: Option<(usize, i64)> = None;
        for (i, (name, weight)) in candidates.iter().enumerate().filter(|(_, (_, w))| *w > 0) {
            let current = match self.current.get_mut(*name) {
                Some(c) => c,
                None => self.current.entry((*name).to_string()).or_insert(0),
            };
            *current += *weight as i64;
            if best.is_none_or(|(_, b)| *current > b) {
                best = Some((i, *current));
            }
        }
        let (winner, _) = best?;
        if let Some(c) = self.current.get_mut(candidates[winner].0) {
            *c -= total;
        }
        Some(winner)
    }

    /// Forgets a removed node.
    pub(crate) fn remove(&mut self, name: &str) {
        self.current.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_follow_weights_and_are_interleaved() {
        let mut s = SmoothWrr::default();
        let c = [("a", 5), ("b", 1), ("c", 1)];
        let picks: Vec<&str> = (0..7).map(|_| c[s.pick(&c).unwrap()].0).collect();
        // nginx's documented sequence for weights 5,1,1
        assert_eq!(picks, vec!["a", "a", "b", "a", "c", "a", "a"]);
    }

    #[test]
    fn zero_weights_are_never_picked() {
        let mut s = SmoothWrr::default();
        assert_eq!(s.pick(&[("a", 0)]), None);
        for _ in 0..10 {
            assert_eq!(s.pick(&[("a", 0), ("b", 3)]), Some(1));
        }
    }

    #[test]
    fn shares_hold_over_many_picks() {
        let mut s = SmoothWrr::default();
        let c = [("old", 900), ("new", 100)];
        let new = (0..1000).filter(|_| s.pick(&c) == Some(1)).count();
        assert_eq!(new, 100);
    }
}
