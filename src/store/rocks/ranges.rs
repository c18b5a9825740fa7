//! One ordered scan over many key ranges of a column family: the multi-range read behind
//! `subjects_of_many` and `resources_with_subjects`.
//!
//! The ranges are prefixes, sorted ascending, none a prefix of another. One raw iterator walks
//! them in key order; it seeks to a range only when the end of the previous one did not already
//! leave it there, so ranges that sit next to each other in the index cost no seek at all, and
//! a read of many ranges pays for one iterator instead of one per range.

use rocksdb::{DBRawIteratorWithThreadMode, DB};

use crate::store::StoreError;

/// A raw entry with the index of the range it belongs to.
pub(super) type RangeItem = Result<(usize, Box<[u8]>, Box<[u8]>), StoreError>;

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
    /// only when it is not already there.
    fn position(&mut self, prefix_index: usize) {
        let Some(prefix) = self.prefixes.get(prefix_index) else {
            return;
        };
        let previous = prefix_index
            .checked_sub(1)
            .and_then(|index| self.prefixes.get(index));
        // After the previous range the iterator stands at the first key past it; when that key
        // is already at or after this prefix (and this prefix does not lie inside the previous
        // range), nothing lies between them, so it is this range's first key.
        let already_there = previous.is_some_and(|previous| {
            !prefix.starts_with(previous)
                && (!self.iter.valid()
                    || self.iter.key().is_some_and(|key| key >= prefix.as_slice()))
        });
        if !already_there {
            self.iter.seek(prefix);
        }
        self.positioned = true;
    }
}

impl Iterator for RangeScan<'_> {
    type Item = RangeItem;

    fn next(&mut self) -> Option<RangeItem> {
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
                    let item = (self.current, Box::from(key), Box::from(value));
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
