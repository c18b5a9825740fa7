//! The relationship changes a RocksDB write transaction stages, kept for its one `WriteBatch`:
//! forward keys with their values in one buffer and reverse keys in another (no allocation
//! per row), each reverse entry sharing its forward entry's value, handed to the batch in key
//! order per column family (a memtable takes sorted keys fastest; equal keys keep their
//! staging order, so a later change of a key wins).

use std::cmp::Ordering;
use std::ops::Range;

use crate::store::keys::append_keys;
use crate::store::StoreError;
use crate::tuple::Relationship;

/// One staged key: its first 16 bytes (zero-padded, so comparing them agrees with comparing
/// whole keys wherever they differ), where it lies in its buffer and where its value lies in
/// the forward buffer (`None`: a delete).
#[derive(Clone, Copy)]
struct Entry {
    head: u128,
    start: usize,
    len: usize,
    value: Option<(usize, usize)>,
}

impl Entry {
    fn new(bytes: &[u8], key: Range<usize>, value: Option<(usize, usize)>) -> Self {
        let mut head = [0u8; 16];
        let take = key.len().min(16);
        head[..take].copy_from_slice(&bytes[key.start..key.start + take]);
        Self {
            head: u128::from_be_bytes(head),
            start: key.start,
            len: key.len(),
            value,
        }
    }
}

/// The staged puts and deletes of relationships, in staging order until sorted.
#[derive(Default)]
pub(super) struct Staged {
    forward_bytes: Vec<u8>,
    reverse_bytes: Vec<u8>,
    forward: Vec<Entry>,
    reverse: Vec<Entry>,
}

impl Staged {
    /// Whether nothing is staged.
    pub(super) fn is_empty(&self) -> bool {
        self.forward.is_empty()
    }

    /// Stages `relationship` under both its keys with `value` (`None`: removed) and returns
    /// its forward key and the value as staged.
    pub(super) fn stage(
        &mut self,
        relationship: &Relationship,
        value: Option<&[u8]>,
    ) -> Result<(&[u8], Option<&[u8]>), StoreError> {
        let (forward_start, reverse_start) = (self.forward_bytes.len(), self.reverse_bytes.len());
        if let Err(error) = append_keys(
            relationship,
            &mut self.forward_bytes,
            &mut self.reverse_bytes,
        ) {
            self.forward_bytes.truncate(forward_start);
            self.reverse_bytes.truncate(reverse_start);
            return Err(error);
        }
        let key = forward_start..self.forward_bytes.len();
        let value = value.map(|value| {
            self.forward_bytes.extend_from_slice(value);
            (key.end, value.len())
        });
        let reverse = reverse_start..self.reverse_bytes.len();
        self.forward
            .push(Entry::new(&self.forward_bytes, key.clone(), value));
        self.reverse
            .push(Entry::new(&self.reverse_bytes, reverse, value));
        let value = value.map(|(start, len)| &self.forward_bytes[start..start + len]);
        Ok((&self.forward_bytes[key], value))
    }

    /// Bytes the staged entries take in a `WriteBatch` (an estimate a little above it).
    pub(super) fn batch_bytes(&self) -> usize {
        let values: usize = self
            .forward
            .iter()
            .filter_map(|entry| entry.value.map(|(_, len)| len))
            .sum();
        self.forward_bytes.len() + self.reverse_bytes.len() + values + 24 * self.forward.len()
    }

    /// Sorts both sides by key (stable: equal keys keep their staging order).
    pub(super) fn sort(&mut self) {
        let Self {
            forward_bytes,
            reverse_bytes,
            forward,
            reverse,
        } = self;
        sort_entries(forward, forward_bytes);
        sort_entries(reverse, reverse_bytes);
    }

    /// The forward then the reverse entries, each side `(key, value)` in its current order
    /// (`None`: delete).
    pub(super) fn sides(&self) -> [impl Iterator<Item = (&[u8], Option<&[u8]>)>; 2] {
        [
            self.entries(&self.forward, &self.forward_bytes),
            self.entries(&self.reverse, &self.reverse_bytes),
        ]
    }

    fn entries<'s>(
        &'s self,
        entries: &'s [Entry],
        bytes: &'s [u8],
    ) -> impl Iterator<Item = (&'s [u8], Option<&'s [u8]>)> {
        entries.iter().map(move |entry| {
            let key = &bytes[entry.start..entry.start + entry.len];
            let value = entry
                .value
                .map(|(start, len)| &self.forward_bytes[start..start + len]);
            (key, value)
        })
    }
}

fn sort_entries(entries: &mut [Entry], bytes: &[u8]) {
    let key = |entry: &Entry| &bytes[entry.start..entry.start + entry.len];
    // Stable, and linear on runs already in order (a batch of ids counting up).
    entries.sort_by(|a, b| match a.head.cmp(&b.head) {
        Ordering::Equal => key(a).cmp(key(b)),
        other => other,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::{ForwardKey, ReverseKey};

    fn rel(text: &str) -> Relationship {
        Relationship::parse(text).unwrap()
    }

    #[test]
    fn sorted_entries_are_the_keys_in_byte_order_with_later_changes_after_earlier_ones() {
        let texts = [
            "doc:b#viewer@user:zed",
            "doc:averyveryverylongidentifier2#viewer@user:a",
            "doc:a#viewer@user:zed",
            "doc:averyveryverylongidentifier1#viewer@user:b",
            "doc:b#viewer@user:zed",
        ];
        let mut staged = Staged::default();
        for (i, text) in texts.iter().enumerate() {
            let value = [i as u8];
            let removed = i == 4;
            let (key, stored) = staged
                .stage(&rel(text), (!removed).then_some(&value[..]))
                .unwrap();
            assert_eq!(key, ForwardKey::of(&rel(text)).unwrap().as_bytes());
            assert_eq!(stored, (!removed).then_some(&value[..]));
        }
        staged.sort();
        let [forward, reverse] = staged.sides();
        type Entries = Vec<(Vec<u8>, Option<Vec<u8>>)>;
        // What each side must hold: every text's key in byte order, a stable sort keeping the
        // removal after the put of the same key.
        let expected = |key_of: &dyn Fn(&Relationship) -> Vec<u8>| -> Entries {
            let mut entries: Entries = texts
                .iter()
                .enumerate()
                .map(|(i, t)| (key_of(&rel(t)), (i != 4).then(|| vec![i as u8])))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            entries
        };
        let owned = |side: &mut dyn Iterator<Item = (&[u8], Option<&[u8]>)>| -> Entries {
            side.map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                .collect()
        };
        assert_eq!(
            owned(&mut forward.into_iter()),
            expected(&|r| ForwardKey::of(r).unwrap().into_bytes())
        );
        assert_eq!(
            owned(&mut reverse.into_iter()),
            expected(&|r| ReverseKey::of(r).unwrap().as_bytes().to_vec())
        );
    }

    #[test]
    fn a_key_that_cannot_be_encoded_stages_nothing() {
        let mut staged = Staged::default();
        let mut bad = rel("doc:a#viewer@user:b");
        bad.resource.object_id = "a\0b".to_string();
        assert!(staged.stage(&bad, Some(&[1])).is_err());
        assert!(staged.is_empty());
        staged
            .stage(&rel("doc:a#viewer@user:b"), Some(&[1]))
            .unwrap();
        let [forward, reverse] = staged.sides();
        assert_eq!((forward.count(), reverse.count()), (1, 1));
    }
}
