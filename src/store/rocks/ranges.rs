//! One ordered scan over many key ranges of a column family: the multi-range read behind
//! `subjects_of_many`, `resources_with_subjects` and `resource_ids_with_subjects`.
//!
//! The ranges are prefixes, sorted ascending, none a prefix of another. One raw iterator walks
//! them in key order. Between two ranges it moves by a few steps forward when the next range
//! starts close to where the previous one ended, and seeks only when it does not: ranges that
//! sit next to each other in the index (or with a few keys between them) cost no seek at all,
//! and a read of many ranges pays for one iterator instead of one per range. The prefixes
//! themselves lie end to end in one buffer ([`Prefixes`]), so a read of a thousand ranges
//! allocates two vectors, not a thousand.

use rocksdb::{DBRawIteratorWithThreadMode, DB};

use crate::store::StoreError;

/// A raw entry with the index of the range it belongs to.
pub(super) type RangeItem = Result<(usize, Box<[u8]>, Box<[u8]>), StoreError>;

/// How many keys the scan steps over, at most, to reach the next range before it seeks
/// instead: a step costs a small fraction of a seek (about a tenth, measured on the
/// `lr_probe` workloads).
const STEPS_BEFORE_SEEK: usize = 8;

/// Key prefixes laid end to end in one buffer, in the order they were added.
#[derive(Debug, Default)]
pub(super) struct Prefixes {
    bytes: Vec<u8>,
    /// Where each prefix ends in `bytes` (each starts where the one before it ends).
    ends: Vec<usize>,
    /// Whether every prefix sorts strictly after the one before it.
    ascending: bool,
}

impl Prefixes {
    /// Room for `count` prefixes of about `each` bytes.
    pub(super) fn with_capacity(count: usize, each: usize) -> Self {
        Prefixes {
            bytes: Vec::with_capacity(count.saturating_mul(each)),
            ends: Vec::with_capacity(count),
            ascending: true,
        }
    }

    /// Appends the prefix made of `parts`, one after the other.
    pub(super) fn push(&mut self, parts: &[&[u8]]) {
        let start = self.bytes.len();
        for part in parts {
            self.bytes.extend_from_slice(part);
        }
        if self.ascending {
            if let Some(previous) = self.len().checked_sub(1).and_then(|last| self.get(last)) {
                self.ascending = previous < &self.bytes[start..];
            }
        }
        self.ends.push(self.bytes.len());
    }

    /// How many prefixes there are.
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The prefix at `index`.
    pub(super) fn get(&self, index: usize) -> Option<&[u8]> {
        let end = *self.ends.get(index)?;
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        self.bytes.get(start..end)
    }

    /// The last prefix.
    pub(super) fn last(&self) -> Option<&[u8]> {
        self.len().checked_sub(1).and_then(|last| self.get(last))
    }

    /// The same prefixes sorted ascending without repeats (as they are, when they were added
    /// in that order).
    pub(super) fn into_sorted(self) -> Self {
        if self.ascending {
            return self;
        }
        let mut all: Vec<&[u8]> = (0..self.len()).filter_map(|i| self.get(i)).collect();
        all.sort_unstable();
        all.dedup();
        let mut sorted = Prefixes::with_capacity(all.len(), 0);
        sorted.bytes.reserve(self.bytes.len());
        for prefix in all {
            sorted.push(&[prefix]);
        }
        sorted
    }
}

impl From<Vec<Vec<u8>>> for Prefixes {
    /// Prefixes from a list (sorted and deduplicated by [`Prefixes::into_sorted`] if needed).
    fn from(list: Vec<Vec<u8>>) -> Self {
        let mut prefixes = Prefixes::with_capacity(list.len(), 0);
        prefixes.bytes.reserve(list.iter().map(Vec::len).sum());
        for prefix in &list {
            prefixes.push(&[prefix]);
        }
        prefixes.into_sorted()
    }
}

/// Streams every entry under each prefix of a sorted list, in key order.
pub(super) struct RangeScan<'a> {
    iter: DBRawIteratorWithThreadMode<'a, DB>,
    prefixes: Prefixes,
    /// The range being read.
    current: usize,
    /// Whether the iterator stands at the first key at or after `prefixes[current]`.
    positioned: bool,
    finished: bool,
    /// How many steps the next move between ranges may take before it seeks: halved each
    /// time stepping fails to reach the range (sparse ranges then pay one wasted step per
    /// seek, not eight), doubled each time it succeeds, between 1 and [`STEPS_BEFORE_SEEK`].
    step_budget: usize,
}

impl<'a> RangeScan<'a> {
    /// A scan of `prefixes` (sorted ascending by [`Prefixes::into_sorted`], none a prefix of
    /// another) with `iter`, a fresh raw iterator over the column family.
    pub(super) fn new(iter: DBRawIteratorWithThreadMode<'a, DB>, prefixes: Prefixes) -> Self {
        debug_assert!(prefixes.ascending);
        RangeScan {
            iter,
            prefixes,
            current: 0,
            positioned: false,
            finished: false,
            step_budget: STEPS_BEFORE_SEEK,
        }
    }

    /// Moves the iterator to the first key at or after the current range's prefix, seeking
    /// only when it is not already there and a few steps forward do not reach it.
    fn position(&mut self, prefix_index: usize) {
        let Some(prefix) = self.prefixes.get(prefix_index) else {
            return;
        };
        let previous = prefix_index
            .checked_sub(1)
            .and_then(|index| self.prefixes.get(index));
        self.positioned = true;
        let Some(previous) = previous else {
            self.iter.seek(prefix);
            return;
        };
        // After the previous range the iterator stands at the first key past it (or at no
        // key: nothing is left below the upper bound). Every key from there on is in key
        // order, so stepping forward until a key at or after this prefix reaches the same key
        // a seek would. A prefix inside the previous range may lie behind the iterator: seek.
        if prefix.starts_with(previous) {
            self.iter.seek(prefix);
            return;
        }
        for _ in 0..self.step_budget {
            match self.iter.key() {
                None => return,
                Some(key) if key >= prefix => {
                    self.step_budget = (self.step_budget * 2).min(STEPS_BEFORE_SEEK);
                    return;
                }
                Some(_) => self.iter.next(),
            }
        }
        if self.iter.key().is_some_and(|key| key < prefix) {
            self.step_budget = (self.step_budget / 2).max(1);
            self.iter.seek(prefix);
        }
    }

    /// The next entry of the scan, handed to `read` as borrowed bytes (range index, the
    /// range's prefix, key, value) before the iterator moves on: for readers that keep only
    /// part of an entry.
    pub(super) fn next_with<T>(
        &mut self,
        read: impl FnOnce(usize, &[u8], &[u8], &[u8]) -> T,
    ) -> Option<Result<T, StoreError>> {
        while !self.finished {
            if self.current >= self.prefixes.len() {
                self.finished = true;
                break;
            }
            if !self.positioned {
                self.position(self.current);
            }
            if !self.iter.valid() {
                self.finished = true;
                return match self.iter.status() {
                    Ok(()) => None,
                    Err(err) => Some(Err(StoreError::Backend(err.into_string()))),
                };
            }
            let prefix = self.prefixes.get(self.current).unwrap_or_default();
            match (self.iter.key(), self.iter.value()) {
                (Some(key), Some(value)) if key.starts_with(prefix) => {
                    let item = read(self.current, prefix, key, value);
                    self.iter.next();
                    return Some(Ok(item));
                }
                _ => {
                    self.current += 1;
                    self.positioned = false;
                }
            }
        }
        None
    }
}

impl Iterator for RangeScan<'_> {
    type Item = RangeItem;

    fn next(&mut self) -> Option<RangeItem> {
        self.next_with(|range, _, key, value| (range, Box::from(key), Box::from(value)))
    }
}
