//! A set of integers held as merged closed intervals: memory grows with the number
//! of runs of used addresses, never with pool size.

use std::collections::BTreeMap;

/// Closed intervals `[start, end]`, merged so that no two touch or overlap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntervalSet {
    runs: BTreeMap<u128, u128>,
}

impl IntervalSet {
    /// The run holding `x`, if any.
    fn run_of(&self, x: u128) -> Option<(u128, u128)> {
        self.runs
            .range(..=x)
            .next_back()
            .filter(|&(_, &end)| end >= x)
            .map(|(&s, &e)| (s, e))
    }

    /// Whether `x` is in the set.
    pub fn contains(&self, x: u128) -> bool {
        self.run_of(x).is_some()
    }

    /// Adds `x`; returns false when it was there already.
    pub fn insert(&mut self, x: u128) -> bool {
        if self.contains(x) {
            return false;
        }
        let mut start = x;
        let mut end = x;
        if let Some(prev_start) = x
            .checked_sub(1)
            .and_then(|p| self.run_of(p))
            .map(|(s, _)| s)
        {
            start = prev_start;
        }
        if let Some(next) = x.checked_add(1)
            && let Some(next_end) = self.runs.remove(&next)
        {
            end = next_end;
        }
        self.runs.insert(start, end);
        true
    }

    /// Removes `x`; returns false when it was not there.
    pub fn remove(&mut self, x: u128) -> bool {
        let Some((s, e)) = self.run_of(x) else {
            return false;
        };
        self.runs.remove(&s);
        if s < x {
            self.runs.insert(s, x - 1);
        }
        if x < e {
            self.runs.insert(x + 1, e);
        }
        true
    }

    /// The smallest value in `[lo, hi]` not in the set and accepted by `ok`.
    /// Values `ok` refuses are skipped one by one, so `ok` must refuse few values
    /// in a row (it skips `.0`/`.255`, two in 256).
    pub fn lowest_free(&self, lo: u128, hi: u128, ok: impl Fn(u128) -> bool) -> Option<u128> {
        let mut c = lo;
        loop {
            if let Some((_, e)) = self.run_of(c) {
                c = e.checked_add(1)?;
            }
            if c > hi {
                return None;
            }
            if ok(c) {
                return Some(c);
            }
            c = c.checked_add(1)?;
        }
    }

    /// Number of runs (for memory accounting).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn merges_and_splits_runs() {
        let mut s = IntervalSet::default();
        for x in [5, 7, 6, 1] {
            assert!(s.insert(x));
        }
        assert!(!s.insert(6));
        assert_eq!(s.runs(), 2);
        assert_eq!(s.lowest_free(1, 10, |_| true), Some(2));
        assert_eq!(s.lowest_free(5, 10, |_| true), Some(8));
        assert!(s.remove(6));
        assert_eq!(s.runs(), 3);
        assert_eq!(s.lowest_free(5, 10, |_| true), Some(6));
        assert_eq!(s.lowest_free(5, 5, |_| true), None);
        assert_eq!(s.lowest_free(2, 10, |x| x % 2 == 0 && x > 4), Some(6));
    }

    #[test]
    fn works_at_the_ends_of_the_number_range() {
        let mut s = IntervalSet::default();
        assert!(s.insert(u128::MAX));
        assert!(s.insert(0));
        assert_eq!(
            s.lowest_free(u128::MAX - 1, u128::MAX, |_| true),
            Some(u128::MAX - 1)
        );
        assert!(s.insert(u128::MAX - 1));
        assert_eq!(s.lowest_free(u128::MAX - 1, u128::MAX, |_| true), None);
        assert!(s.remove(0));
        assert!(!s.contains(0));
    }

    proptest! {
        #[test]
        fn behaves_like_a_set(ops in prop::collection::vec((any::<bool>(), 0u128..64), 0..200), lo in 0u128..64, span in 0u128..64) {
            let mut s = IntervalSet::default();
            let mut model = BTreeSet::new();
            for (add, x) in ops {
                if add {
                    prop_assert_eq!(s.insert(x), model.insert(x));
                } else {
                    prop_assert_eq!(s.remove(x), model.remove(&x));
                }
            }
            for x in 0..70 {
                prop_assert_eq!(s.contains(x), model.contains(&x));
            }
            let hi = lo + span;
            let expect = (lo..=hi).find(|x| !model.contains(x) && x % 5 != 0);
            prop_assert_eq!(s.lowest_free(lo, hi, |x| x % 5 != 0), expect);
        }
    }
}
