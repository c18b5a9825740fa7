//! Sets of subject ids of one type that may include "everyone" (the wildcard) minus a finite
//! exclusion list, with union, intersection and difference.

use std::collections::BTreeSet;

/// Subject ids of one type: some concrete ids, and optionally the wildcard minus exclusions.
///
/// Membership: `x` is in the set if it is in `concrete`, or the wildcard is present and `x`
/// is not excluded. Kept normalised: no id is both concrete and excluded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SubjectIdSet {
    pub(crate) concrete: BTreeSet<String>,
    pub(crate) wildcard: Option<BTreeSet<String>>,
}

impl SubjectIdSet {
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.concrete.contains(id)
            || self
                .wildcard
                .as_ref()
                .is_some_and(|excluded| !excluded.contains(id))
    }

    pub(crate) fn add_concrete(&mut self, id: &str) {
        self.concrete.insert(id.to_string());
        if let Some(excluded) = &mut self.wildcard {
            excluded.remove(id);
        }
    }

    pub(crate) fn add_wildcard(&mut self) {
        self.wildcard = Some(BTreeSet::new());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.concrete.is_empty() && self.wildcard.is_none()
    }

    pub(crate) fn union(mut self, other: SubjectIdSet) -> SubjectIdSet {
        let wildcard = match (self.wildcard.take(), other.wildcard) {
            (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
            (Some(a), None) => Some(a),
            (None, Some(b)) => Some(b),
            (None, None) => None,
        };
        normalise(merge(self.concrete, other.concrete), wildcard)
    }

    pub(crate) fn intersect(self, other: SubjectIdSet) -> SubjectIdSet {
        let concrete = self
            .concrete
            .iter()
            .chain(other.concrete.iter())
            .filter(|id| self.contains(id) && other.contains(id))
            .cloned()
            .collect();
        let wildcard = match (&self.wildcard, &other.wildcard) {
            (Some(a), Some(b)) => Some(a.union(b).cloned().collect()),
            _ => None,
        };
        normalise(concrete, wildcard)
    }

    pub(crate) fn subtract(self, other: SubjectIdSet) -> SubjectIdSet {
        let mut candidates: BTreeSet<&String> = self.concrete.iter().collect();
        if self.wildcard.is_some() {
            if let Some(excluded) = &other.wildcard {
                candidates.extend(excluded.iter());
            }
        }
        let concrete = candidates
            .into_iter()
            .filter(|id| self.contains(id) && !other.contains(id))
            .cloned()
            .collect();
        let wildcard = match (&self.wildcard, &other.wildcard) {
            (Some(excluded), None) => Some(
                excluded
                    .iter()
                    .chain(other.concrete.iter())
                    .cloned()
                    .collect(),
            ),
            _ => None,
        };
        normalise(concrete, wildcard)
    }
}

/// The union of two id sets: a few ids are inserted into the larger set; sets of similar size
/// are merged in one linear pass.
fn merge(a: BTreeSet<String>, b: BTreeSet<String>) -> BTreeSet<String> {
    let (mut large, mut small) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    if small.len().saturating_mul(8) < large.len() {
        large.extend(small);
    } else {
        large.append(&mut small);
    }
    large
}

fn normalise(concrete: BTreeSet<String>, wildcard: Option<BTreeSet<String>>) -> SubjectIdSet {
    let wildcard = wildcard.map(|excluded| {
        excluded
            .into_iter()
            .filter(|id| !concrete.contains(id))
            .collect()
    });
    SubjectIdSet { concrete, wildcard }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(concrete: &[&str], wildcard: Option<&[&str]>) -> SubjectIdSet {
        let mut s = SubjectIdSet::default();
        if let Some(excluded) = wildcard {
            s.wildcard = Some(excluded.iter().map(|x| x.to_string()).collect());
        }
        for c in concrete {
            s.add_concrete(c);
        }
        s
    }

    #[test]
    fn membership_through_operations_matches_pointwise_logic() {
        let universe = ["a", "b", "c", "d"];
        let samples = [
            set(&[], None),
            set(&["a"], None),
            set(&["a", "b"], None),
            set(&[], Some(&[])),
            set(&[], Some(&["a"])),
            set(&["c"], Some(&["a", "b"])),
        ];
        for x in &samples {
            for y in &samples {
                let u = x.clone().union(y.clone());
                let i = x.clone().intersect(y.clone());
                let d = x.clone().subtract(y.clone());
                for id in universe.iter().chain(["zz"].iter()) {
                    assert_eq!(
                        u.contains(id),
                        x.contains(id) || y.contains(id),
                        "union {x:?} {y:?} {id}"
                    );
                    assert_eq!(
                        i.contains(id),
                        x.contains(id) && y.contains(id),
                        "intersect {x:?} {y:?} {id}"
                    );
                    assert_eq!(
                        d.contains(id),
                        x.contains(id) && !y.contains(id),
                        "subtract {x:?} {y:?} {id}"
                    );
                }
            }
        }
    }
}
