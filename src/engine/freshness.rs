//! The last revision at which each stored relation was written, read from the store's write log.
//!
//! A cached answer computed at revision E answers a request at revision R only when no relation
//! it depends on was written between the two, in either direction. The [`Tracker`] knows every
//! write in `(floor, applied]`: `floor` is the revision it started from (nothing earlier is
//! known), `applied` the last log entry it has read. Anything outside that window is treated as
//! possibly written, so a question it cannot answer exactly is answered "changed".

use std::collections::HashMap;

use super::plan::MemberKey;
use crate::revision::Revision;
use crate::tuple::Relationship;

/// Last-written revisions per `(object type, relation)`, exact for `(floor, applied]`.
#[derive(Debug)]
pub(crate) struct Tracker {
    floor: Revision,
    applied: Revision,
    /// The newest revision that wrote any relation.
    last_any: Revision,
    /// Per type, per relation (nested so look-ups borrow instead of allocating).
    last: HashMap<String, HashMap<String, Revision>>,
}

impl Tracker {
    /// A tracker that knows nothing before `floor`.
    pub(crate) fn new(floor: Revision) -> Self {
        Self {
            floor,
            applied: floor,
            last_any: floor,
            last: HashMap::new(),
        }
    }

    /// The last log revision read.
    pub(crate) fn applied(&self) -> Revision {
        self.applied
    }

    /// Records the changes of revision `revision` (log entries must come in order; entries at
    /// or before the last one applied are skipped).
    pub(crate) fn record<'r>(
        &mut self,
        revision: Revision,
        written: impl IntoIterator<Item = &'r Relationship>,
    ) {
        if revision <= self.applied {
            return;
        }
        // A batch writes runs of one (type, relation): recording a pair again at the same
        // revision changes nothing, so only a pair unlike the one before is looked up.
        let mut previous: Option<(&str, &str)> = None;
        for relationship in written {
            let pair = (
                relationship.resource.object_type.as_str(),
                relationship.relation.as_str(),
            );
            if previous != Some(pair) {
                self.written(revision, pair.0, pair.1);
                previous = Some(pair);
            }
        }
        self.applied = revision;
    }

    /// Records that revision `revision` wrote the `(object type, relation)` pairs `written`
    /// (a bulk revision, known by its summary), under the same ordering rule as
    /// [`Tracker::record`].
    pub(crate) fn record_relations<'r>(
        &mut self,
        revision: Revision,
        written: impl IntoIterator<Item = (&'r str, &'r str)>,
    ) {
        if revision <= self.applied {
            return;
        }
        for (object_type, relation) in written {
            self.written(revision, object_type, relation);
        }
        self.applied = revision;
    }

    fn written(&mut self, revision: Revision, object_type: &str, relation: &str) {
        self.last_any = revision;
        if !self.last.contains_key(object_type) {
            self.last.insert(object_type.to_string(), HashMap::new());
        }
        let Some(relations) = self.last.get_mut(object_type) else {
            return;
        };
        if let Some(last) = relations.get_mut(relation) {
            *last = revision;
        } else {
            relations.insert(relation.to_string(), revision);
        }
    }

    /// Whether none of `dependencies` was written between `a` and `b` (in either order), as far
    /// as the log read so far proves.
    pub(crate) fn unchanged_between(
        &self,
        dependencies: &[MemberKey],
        a: Revision,
        b: Revision,
    ) -> bool {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        if low < self.floor || high > self.applied {
            return false;
        }
        if self.last_any <= low {
            return true;
        }
        dependencies.iter().all(|(object_type, relation)| {
            self.last
                .get(object_type)
                .and_then(|relations| relations.get(relation))
                .is_none_or(|written| *written <= low)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Tracker;
    use crate::revision::Revision;
    use crate::tuple::Relationship;

    fn change(text: &str) -> Relationship {
        Relationship::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn key(t: &str, r: &str) -> (String, String) {
        (t.to_string(), r.to_string())
    }

    #[test]
    fn a_write_between_two_revisions_is_seen_from_either_side() {
        let mut tracker = Tracker::new(Revision(3));
        tracker.record(Revision(4), &[change("doc:1#viewer@user:a")]);
        tracker.record(Revision(5), &[change("group:g#member@user:a")]);
        let viewer = [key("doc", "viewer")];
        let member = [key("group", "member")];
        assert!(tracker.unchanged_between(&viewer, Revision(4), Revision(5)));
        assert!(tracker.unchanged_between(&viewer, Revision(5), Revision(4)));
        assert!(!tracker.unchanged_between(&viewer, Revision(3), Revision(5)));
        assert!(!tracker.unchanged_between(&viewer, Revision(5), Revision(3)));
        assert!(!tracker.unchanged_between(&member, Revision(4), Revision(5)));
        assert!(tracker.unchanged_between(&member, Revision(5), Revision(5)));
    }

    #[test]
    fn revisions_outside_the_known_window_count_as_changed() {
        let mut tracker = Tracker::new(Revision(3));
        tracker.record(Revision(4), &[] as &[Relationship]);
        let viewer = [key("doc", "viewer")];
        assert!(tracker.unchanged_between(&viewer, Revision(3), Revision(4)));
        assert!(!tracker.unchanged_between(&viewer, Revision(2), Revision(4)));
        assert!(!tracker.unchanged_between(&viewer, Revision(4), Revision(5)));
    }
}
