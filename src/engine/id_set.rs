//! Sets of object ids for the lookup walks, laid end to end in one buffer.
//!
//! A walk through many groups meets tens of thousands of ids; one `String` (or tree node) per
//! id made the allocator the walk's main cost. Here an [`IdList`] gathers ids as a scan hands
//! them over (borrowed), and [`IdList::into_set`] turns it into an [`IdSet`]: sorted, without
//! repeats, two allocations however many ids it holds. Unions merge sorted sets in one pass.

use std::cmp::Ordering;

/// Ids in the order they were found, repeats possible.
#[derive(Debug, Default)]
pub(super) struct IdList {
    text: String,
    /// Start and end of each id in `text`.
    spans: Vec<(usize, usize)>,
}

impl IdList {
    /// Appends `id`.
    pub(super) fn push(&mut self, id: &str) {
        let start = self.text.len();
        self.text.push_str(id);
        self.spans.push((start, self.text.len()));
    }

    /// Appends every id of `set`, in its order.
    pub(super) fn push_set(&mut self, set: &IdSet) {
        let base = self.text.len();
        self.text.push_str(&set.text);
        let mut start = base;
        for &end in &set.ends {
            self.spans.push((start, base + end));
            start = base + end;
        }
    }

    /// The ids, sorted, without repeats. Ids that arrived sorted are not moved at all; others
    /// are sorted by their first eight bytes read as one number, the bytes after them
    /// compared only between ids that share those (short ids never are).
    pub(super) fn into_set(self) -> IdSet {
        let IdList { text, spans } = self;
        let id = |&(start, end): &(usize, usize)| &text[start..end];
        let mut keyed: Vec<(u64, (usize, usize))> = spans
            .into_iter()
            .map(|span| (head(id(&span)), span))
            .collect();
        let order = |a: &(u64, (usize, usize)), b: &(u64, (usize, usize))| {
            compare(a.0, b.0, || (id(&a.1), id(&b.1)))
        };
        let sorted = keyed
            .windows(2)
            .all(|pair| order(&pair[0], &pair[1]) == Ordering::Less);
        if sorted {
            // Already in order: the buffer is kept as it is.
            let (heads, ends) = keyed.iter().map(|&(head, (_, end))| (head, end)).unzip();
            return IdSet { text, ends, heads };
        }
        keyed.sort_unstable_by(order);
        keyed.dedup_by(|a, b| order(a, b) == Ordering::Equal);
        let mut set = IdSet::with_capacity(text.len(), keyed.len());
        for &(head, span) in &keyed {
            set.push_known(id(&span), head);
        }
        set
    }
}

/// The first eight bytes of `id` as a big-endian number, zeros past its end: ids whose heads
/// differ compare as their heads do (an id's bytes are never zero).
#[inline]
fn head(id: &str) -> u64 {
    let mut bytes = [0u8; 8];
    let length = id.len().min(8);
    bytes[..length].copy_from_slice(&id.as_bytes()[..length]);
    u64::from_be_bytes(bytes)
}

/// How id `a` (whose [`head`] is `a_head`) compares with id `b`: by their heads, and only when
/// those are equal and one of the ids is longer than eight bytes, by their bytes (equal heads of
/// two ids no longer than that mean equal ids). `ids` gives `(a, b)`, asked for only on a tie.
#[inline]
fn compare<'s>(a_head: u64, b_head: u64, ids: impl FnOnce() -> (&'s str, &'s str)) -> Ordering {
    a_head.cmp(&b_head).then_with(|| {
        let (a, b) = ids();
        if a.len() <= 8 && b.len() <= 8 {
            Ordering::Equal
        } else {
            a.cmp(b)
        }
    })
}

/// Ids sorted ascending without repeats.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct IdSet {
    text: String,
    /// Where each id ends in `text` (each starts where the one before it ends).
    ends: Vec<usize>,
    /// Each id's [`head`], so comparing two ids rarely reads their bytes.
    heads: Vec<u64>,
}

impl IdSet {
    fn with_capacity(bytes: usize, ids: usize) -> Self {
        IdSet {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(ids),
            heads: Vec::with_capacity(ids),
        }
    }

    /// How the id at `index` compares with the id at `other_index` of `other`.
    #[inline]
    fn order(&self, index: usize, other: &IdSet, other_index: usize) -> Ordering {
        compare(self.heads[index], other.heads[other_index], || {
            (self.get(index), other.get(other_index))
        })
    }

    /// Appends `id`, whose [`head`] is `head` and which must sort after every id of the set.
    #[inline]
    fn push_known(&mut self, id: &str, head: u64) {
        debug_assert!(self.iter().next_back().is_none_or(|last| last < id));
        self.text.push_str(id);
        self.ends.push(self.text.len());
        self.heads.push(head);
    }

    /// Appends the id at `index` of `other`, which must sort after every id of the set.
    #[inline]
    fn push_from(&mut self, other: &IdSet, index: usize) {
        self.push_known(other.get(index), other.heads[index]);
    }

    /// The set of one id.
    pub(super) fn of(id: &str) -> Self {
        let mut set = IdSet::default();
        set.push_last(id);
        set
    }

    /// Appends `id`, which must sort after every id of the set.
    pub(super) fn push_last(&mut self, id: &str) {
        self.push_known(id, head(id));
    }

    /// How many ids the set holds.
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the set holds no id.
    pub(super) fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The id at `index` (below [`IdSet::len`]).
    #[inline]
    pub(super) fn get(&self, index: usize) -> &str {
        let start = index.checked_sub(1).map_or(0, |before| self.ends[before]);
        &self.text[start..self.ends[index]]
    }

    /// The ids, in order.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &str> + '_ {
        (0..self.len()).map(|index| self.get(index))
    }

    /// Where `id` is (`Ok`) or would be inserted (`Err`).
    pub(super) fn search(&self, id: &str) -> Result<usize, usize> {
        let wanted = head(id);
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let middle = low + (high - low) / 2;
            match compare(self.heads[middle], wanted, || (self.get(middle), id)) {
                Ordering::Less => low = middle + 1,
                Ordering::Greater => high = middle,
                Ordering::Equal => return Ok(middle),
            }
        }
        Err(low)
    }

    /// Adds `id` in its place; `false` when the set already holds it.
    pub(super) fn insert(&mut self, id: &str) -> bool {
        let Err(at) = self.search(id) else {
            return false;
        };
        let start = at.checked_sub(1).map_or(0, |before| self.ends[before]);
        self.text.insert_str(start, id);
        for end in &mut self.ends[at..] {
            *end += id.len();
        }
        self.ends.insert(at, start + id.len());
        self.heads.insert(at, head(id));
        true
    }

    /// Takes `id` out; `false` when the set does not hold it.
    pub(super) fn remove(&mut self, id: &str) -> bool {
        let Ok(at) = self.search(id) else {
            return false;
        };
        let start = at.checked_sub(1).map_or(0, |before| self.ends[before]);
        self.text.replace_range(start..start + id.len(), "");
        self.ends.remove(at);
        self.heads.remove(at);
        for end in &mut self.ends[at..] {
            *end -= id.len();
        }
        true
    }

    /// This set with `id` added, or `None` when it already holds it.
    pub(super) fn with(&self, id: &str) -> Option<IdSet> {
        let at = self.search(id).err()?;
        let mut set = IdSet::with_capacity(self.text.len() + id.len(), self.len() + 1);
        for before in 0..at {
            set.push_from(self, before);
        }
        set.push_last(id);
        for after in at..self.len() {
            set.push_from(self, after);
        }
        Some(set)
    }

    /// The ids of this set that `other` does not hold, or `None` when `other` holds an id
    /// this set does not (is not a subset of it).
    pub(super) fn minus_subset(&self, other: &IdSet) -> Option<IdSet> {
        let mut rest = IdSet::default();
        let mut theirs = 0;
        for mine in 0..self.len() {
            let order = (theirs < other.len()).then(|| other.order(theirs, self, mine));
            match order {
                Some(Ordering::Less) => return None,
                Some(Ordering::Equal) => theirs += 1,
                _ => rest.push_from(self, mine),
            }
        }
        (theirs == other.len()).then_some(rest)
    }

    /// The union of `sets`, merged in one pass over all of them.
    pub(super) fn union<'a>(sets: impl IntoIterator<Item = &'a IdSet>) -> IdSet {
        let sets: Vec<&IdSet> = sets.into_iter().filter(|set| !set.is_empty()).collect();
        match sets.as_slice() {
            [] => return IdSet::default(),
            [only] => return (*only).clone(),
            _ => {}
        }
        let bytes = sets.iter().map(|set| set.text.len()).sum();
        let ids = sets.iter().map(|set| set.len()).sum();
        let mut union = IdSet::with_capacity(bytes, ids);
        let mut next = vec![0; sets.len()];
        loop {
            // The set holding the smallest id not yet taken.
            let mut smallest: Option<usize> = None;
            for (which, (set, &at)) in sets.iter().zip(&next).enumerate() {
                if at >= set.len() {
                    continue;
                }
                let lower = smallest
                    .is_none_or(|low| set.order(at, sets[low], next[low]) == Ordering::Less);
                if lower {
                    smallest = Some(which);
                }
            }
            let Some(low) = smallest else {
                break;
            };
            let (low_set, low_at) = (sets[low], next[low]);
            union.push_from(low_set, low_at);
            for (set, at) in sets.iter().zip(next.iter_mut()) {
                if *at < set.len() && set.order(*at, low_set, low_at) == Ordering::Equal {
                    *at += 1;
                }
            }
        }
        union
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::engine) fn list(ids: &[&str]) -> IdList {
        let mut list = IdList::default();
        for id in ids {
            list.push(id);
        }
        list
    }

    fn set(ids: &[&str]) -> IdSet {
        list(ids).into_set()
    }

    fn ids(set: &IdSet) -> Vec<&str> {
        set.iter().collect()
    }

    #[test]
    fn a_list_becomes_a_sorted_set_without_repeats() {
        let runs = list(&["b", "d", "f", "a", "d", "e", "c", "f", "ab"]).into_set();
        assert_eq!(ids(&runs), ["a", "ab", "b", "c", "d", "e", "f"]);
        let sorted = list(&["a", "b", "c"]).into_set();
        assert_eq!(ids(&sorted), ["a", "b", "c"]);
        assert_eq!(sorted, set(&["c", "b", "a", "b"]));
        assert!(list(&[]).into_set().is_empty());
    }

    #[test]
    fn ids_are_added_in_place() {
        let base = set(&["b", "d"]);
        assert_eq!(ids(&base.with("a").unwrap_or_default()), ["a", "b", "d"]);
        assert_eq!(ids(&base.with("c").unwrap_or_default()), ["b", "c", "d"]);
        assert_eq!(ids(&base.with("e").unwrap_or_default()), ["b", "d", "e"]);
        assert_eq!(base.with("d"), None);
        assert_eq!(ids(&IdSet::default().with("x").unwrap_or_default()), ["x"]);
        assert_eq!(ids(&IdSet::of("x")), ["x"]);
    }

    #[test]
    fn long_ids_sharing_their_first_eight_bytes_sort_by_the_rest() {
        let sorted = list(&[
            "project_b",
            "project_a",
            "proj",
            "project_",
            "project_a",
            "p",
        ]);
        assert_eq!(
            ids(&sorted.into_set()),
            ["p", "proj", "project_", "project_a", "project_b"]
        );
        let bytes = list(&["\u{e9}t\u{e9}", "\u{7f}", "a\u{e9}", "a"]);
        assert_eq!(
            ids(&bytes.into_set()),
            ["a", "a\u{e9}", "\u{7f}", "\u{e9}t\u{e9}"]
        );
    }

    #[test]
    fn a_subset_is_taken_away_and_a_non_subset_refused() {
        let all = set(&["a", "b", "c", "d"]);
        assert_eq!(
            all.minus_subset(&set(&["b", "d"]))
                .map(|s| ids(&s).join(",")),
            Some("a,c".into())
        );
        assert_eq!(all.minus_subset(&all).map(|s| s.len()), Some(0));
        assert_eq!(all.minus_subset(&IdSet::default()), Some(all.clone()));
        assert_eq!(all.minus_subset(&set(&["b", "e"])), None);
        assert_eq!(all.minus_subset(&set(&["0"])), None);
        assert_eq!(set(&["b"]).minus_subset(&set(&["a", "b"])), None);
    }

    #[test]
    fn long_ids_sharing_their_first_eight_bytes_merge_search_and_subtract_by_the_rest() {
        let left = set(&["abcdefgh", "abcdefgh1", "abcdefgh3", "z"]);
        let right = set(&["abcdefg", "abcdefgh1", "abcdefgh2", "abcdefgh3"]);
        let two = IdSet::union([&left, &right]);
        assert_eq!(
            ids(&two),
            [
                "abcdefg",
                "abcdefgh",
                "abcdefgh1",
                "abcdefgh2",
                "abcdefgh3",
                "z"
            ]
        );
        let three = IdSet::union([&left, &right, &set(&["abcdefgh0"])]);
        assert_eq!(
            ids(&three),
            [
                "abcdefg",
                "abcdefgh",
                "abcdefgh0",
                "abcdefgh1",
                "abcdefgh2",
                "abcdefgh3",
                "z"
            ]
        );
        assert_eq!(two.search("abcdefgh2"), Ok(3));
        assert_eq!(two.search("abcdefgh10"), Err(3));
        assert_eq!(two.search("abcdefg"), Ok(0));
        assert_eq!(
            two.minus_subset(&right).map(|rest| ids(&rest).join(",")),
            Some("abcdefgh,z".into())
        );
        assert_eq!(right.minus_subset(&set(&["abcdefgh0"])), None);
        assert_eq!(
            ids(&right.with("abcdefgh15").unwrap_or_default())[2],
            "abcdefgh15"
        );
    }

    #[test]
    fn ids_are_inserted_and_removed_in_place() {
        let mut set = set(&["b", "longer-than-eight-bytes-2"]);
        assert!(set.insert("a"));
        assert!(set.insert("longer-than-eight-bytes-1"));
        assert!(set.insert("z"));
        assert!(!set.insert("b"));
        assert_eq!(
            ids(&set),
            [
                "a",
                "b",
                "longer-than-eight-bytes-1",
                "longer-than-eight-bytes-2",
                "z"
            ]
        );
        assert!(set.remove("longer-than-eight-bytes-1"));
        assert!(!set.remove("c"));
        assert!(set.remove("a"));
        assert_eq!(ids(&set), ["b", "longer-than-eight-bytes-2", "z"]);
        assert_eq!(set.search("z"), Ok(2));
        let mut list = list(&["y"]);
        list.push_set(&set);
        assert_eq!(
            ids(&list.into_set()),
            ["b", "longer-than-eight-bytes-2", "y", "z"]
        );
    }

    #[test]
    fn unions_are_sorted_without_repeats() {
        let union = IdSet::union([
            &set(&["b", "c"]),
            &set(&["a", "c", "e", "g"]),
            &IdSet::default(),
            &set(&["a", "h", "i", "j", "k"]),
        ]);
        assert_eq!(ids(&union), ["a", "b", "c", "e", "g", "h", "i", "j", "k"]);
        assert_eq!(IdSet::union([]), IdSet::default());
        assert_eq!(ids(&IdSet::union([&set(&["x"])])), ["x"]);
    }
}
