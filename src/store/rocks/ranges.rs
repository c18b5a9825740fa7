//! One ordered scan over many key ranges of a column family: the multi-range read behind
//! `subjects_of_many`, `resources_with_subjects` and `resource_ids_with_subjects`.
//!
//! The ranges are prefixes, sorted ascending, none a prefix of another. One raw iterator walks
//! them in key order. Between two ranges it moves by a few steps forward when the next range
//! starts close to where the previous one ended, and seeks only when it does not: ranges that
//! sit next to each other in the index (or with a few keys between them) cost no seek at all,
//! and a read of many ranges pays for one iterator instead of one per range.

use rocksdb::{DBRawIteratorWithThreadMode, DB};

use crate::store::StoreError;

/// A raw entry with the index of the range it belongs to.
pub(super) type RangeItem = Result<(usize, Box<[u8]>, Box<[u8]>), StoreError>;

/// How many keys the scan steps over, at most, to reach the next range before it seeks
/// instead: a step costs a small fraction of a seek.
const STEPS_BEFORE_SEEK: usize = 8;

/// Streams every entry under each prefix of a sorted list, in key order.
pub(super) struct RangeScan<'a> {
    iter: DBRawIteratorWithThreadMode<'a, DB>,
    prefixes: Vec<Vec<u8>>,
    /// The range being read.
    current: usize,
    /// Whether the iterator stands at the first key at or after `prefixes[current]`.
    positioned: bool,
    finished: bool,
}

impl<'a> RangeScan<'a> {
    /// A scan of `prefixes` (sorted ascending, deduplicated, none a prefix of another) with
    /// `iter`, a fresh raw iterator over the column family.
    pub(super) fn new(iter: DBRawIteratorWithThreadMode<'a, DB>, prefixes: Vec<Vec<u8>>) -> Self {
        debug_assert!(prefixes.windows(2).all(|pair| pair[0] < pair[1]));
        RangeScan {
            iter,
            prefixes,
            current: 0,
            positioned: false,
            finished: false,
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
        for _ in 0..STEPS_BEFORE_SEEK {
            match self.iter.key() {
                None => return,
                Some(key) if key >= prefix.as_slice() => return,
                Some(_) => self.iter.next(),
            }
        }
        if self.iter.key().is_some_and(|key| key < prefix.as_slice()) {
            self.iter.seek(prefix);
        }
    }

    /// The next entry of the scan, handed to `read` as borrowed bytes (range index, key,
    /// value) before the iterator moves on: for readers that keep only part of an entry.
    pub(super) fn next_with<T>(
        &mut self,
        read: impl FnOnce(usize, &[u8], &[u8]) -> T,
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
            let prefix = &self.prefixes[self.current];
            match (self.iter.key(), self.iter.value()) {
                (Some(key), Some(value)) if key.starts_with(prefix) => {
                    let item = read(self.current, key, value);
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
        self.next_with(|range, key, value| (range, Box::from(key), Box::from(value)))
    }
}
