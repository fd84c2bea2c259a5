//! The set of private conversations an export has, gathered compactly.
//!
//! An export can hold hundreds of thousands of private conversations (800 users
//! give 320 000 pairs), each seen again in both participants' histories. A
//! `BTreeSet` of them cost 17 MB of tree nodes per history thread at that size,
//! and the catalog's copy as much again; a sorted vector holds the same in 7.7 MB.
//! std has no sorted-vector set and none of the crates in the build provides one,
//! so this is the few lines it takes: a sorted, deduplicated vector plus a short
//! list of newcomers merged in from time to time.

use crate::model::Conversation;

/// Newcomers are merged in once they reach this many, or a quarter of the
/// conversations known, whichever is more: merges stay rare (about a dozen at
/// 320 000) and the list small beside the vector.
const MIN_PENDING: usize = 1024;

/// Private conversations, each once, ascending once [`ConversationSet::into_sorted`].
#[derive(Debug, Default, Clone)]
pub struct ConversationSet {
    /// Ascending, each once.
    sorted: Vec<Conversation>,
    /// Not in `sorted` when added; may repeat each other until merged.
    pending: Vec<Conversation>,
}

impl ConversationSet {
    /// Adds `conversation` if it is not there yet.
    pub fn insert(&mut self, conversation: Conversation) {
        if self.pending.last() == Some(&conversation) || self.sorted.binary_search(&conversation).is_ok() {
            return;
        }
        self.pending.push(conversation);
        if self.pending.len() >= MIN_PENDING.max(self.sorted.len() / 4) {
            self.merge_pending();
        }
    }

    /// Adds every conversation of `other` (another history thread's). The smaller
    /// of the two is added to the larger: threads see mostly the same
    /// conversations (each is in both participants' histories), so the larger
    /// grows little while the smaller is still held.
    pub fn absorb(&mut self, mut other: ConversationSet) {
        if other.sorted.len() > self.sorted.len() {
            std::mem::swap(self, &mut other);
        }
        for conversation in other.sorted.into_iter().chain(other.pending) {
            self.insert(conversation);
        }
    }

    /// The conversations, ascending, each once.
    pub fn into_sorted(mut self) -> Vec<Conversation> {
        self.merge_pending();
        self.sorted
    }

    /// The conversations so far, ascending (tests compare sets built differently).
    #[cfg(test)]
    pub fn to_sorted(&self) -> Vec<Conversation> {
        self.clone().into_sorted()
    }

    /// Merges the newcomers into the sorted vector in place, from the back, so
    /// nothing but the vector's own growth is allocated.
    fn merge_pending(&mut self) {
        self.pending.sort_unstable();
        self.pending.dedup();
        let old_len = self.sorted.len();
        let Some(&filler) = self.pending.first() else { return };
        // Exactly what is needed: growing by doubling would leave up to half the
        // vector unused for the rest of the run.
        self.sorted.reserve_exact(self.pending.len());
        self.sorted.resize(old_len + self.pending.len(), filler);
        let (mut from, mut to) = (old_len, self.sorted.len());
        while let Some(&newcomer) = self.pending.last() {
            to -= 1;
            if from > 0 && self.sorted[from - 1] > newcomer {
                from -= 1;
                self.sorted[to] = self.sorted[from];
            } else {
                self.sorted[to] = newcomer;
                self.pending.pop();
            }
        }
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn conversation((kind, a, b): (bool, u64, u64)) -> Conversation {
        if kind { Conversation::direct(a, b) } else { Conversation::Room(a) }
    }

    proptest! {
        /// Whatever the order and repeats, and however split between two threads,
        /// the result is what a `BTreeSet` gives.
        #[test]
        fn same_as_a_tree_set(items in proptest::collection::vec((any::<bool>(), 0u64..60, 0u64..60), 0..5000), split in 0usize..5000) {
            let items: Vec<Conversation> = items.into_iter().map(conversation).collect();
            let split = split.min(items.len());
            let (mut mine, mut theirs) = (ConversationSet::default(), ConversationSet::default());
            items[..split].iter().for_each(|c| mine.insert(*c));
            items[split..].iter().for_each(|c| theirs.insert(*c));
            mine.absorb(theirs);
            let expected: Vec<Conversation> = items.iter().copied().collect::<BTreeSet<_>>().into_iter().collect();
            prop_assert_eq!(mine.into_sorted(), expected);
        }
    }

    #[test]
    fn merges_newcomers_between_known_ones() {
        let mut set = ConversationSet::default();
        for pair in (0..3000u64).step_by(2).chain((1..3000).step_by(2)).chain(0..10) {
            set.insert(Conversation::direct(pair, pair + 1));
        }
        let got = set.into_sorted();
        assert_eq!(got.len(), 3000);
        assert!(got.windows(2).all(|w| w[0] < w[1]));
    }
}
