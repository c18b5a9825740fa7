//! The answer of a lookup-resources: the resource ids, sorted, each with how it is held, laid
//! end to end in one buffer.
//!
//! A lookup through many groups answers with thousands of ids. Handing each over as its own
//! `String` made allocating and freeing them a quarter of the lookup's time; here the ids stay
//! in the walk's [`IdSet`], and a caller borrows them (or pages through them) as `&str`.

use super::id_set::IdSet;
use super::Permissionship;

/// Shared by every id held outright, so those need no entry of their own.
static HAS: Permissionship = Permissionship::Has;

/// The resources a lookup-resources found: ids sorted ascending without repeats, each with its
/// [`Permissionship`] (`Has`, or `Conditional` with the caveat parameters that were missing).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FoundResources {
    ids: IdSet,
    /// How each id of `ids` is held, in the same order; empty when every id is held outright.
    held: Vec<Permissionship>,
}

impl FoundResources {
    /// Every id of `ids`, held outright.
    pub(super) fn unconditional(ids: IdSet) -> Self {
        FoundResources {
            ids,
            held: Vec::new(),
        }
    }

    /// The ids of `ids` for which `held` gives an answer other than `No`, with that answer.
    /// `held` is asked once per id, in order.
    pub(super) fn confirmed<E>(
        ids: &IdSet,
        mut held: impl FnMut(&str) -> Result<Permissionship, E>,
    ) -> Result<Self, E> {
        let mut kept = IdSet::default();
        let mut answers = Vec::new();
        let mut all_outright = true;
        for id in ids.iter() {
            let answer = held(id)?;
            if answer.is_no() {
                continue;
            }
            all_outright &= answer == Permissionship::Has;
            kept.push_last(id);
            answers.push(answer);
        }
        if all_outright {
            answers.clear();
        }
        Ok(FoundResources {
            ids: kept,
            held: answers,
        })
    }

    /// How many resources were found.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no resource was found.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The resources with how each is held, sorted by id.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &Permissionship)> + '_ {
        (0..self.ids.len()).map(|index| {
            let held = self.held.get(index).unwrap_or(&HAS);
            (self.ids.get(index), held)
        })
    }

    /// The resource ids, sorted.
    pub fn ids(&self) -> impl DoubleEndedIterator<Item = &str> + '_ {
        self.ids.iter()
    }

    /// One page of the answer: the resources whose id sorts after `after` (all, when `None`),
    /// at most `limit` of them (all, when `None`).
    pub fn page<'a>(
        &'a self,
        after: Option<&str>,
        limit: Option<usize>,
    ) -> impl Iterator<Item = (&'a str, &'a Permissionship)> + 'a {
        let start = after.map_or(0, |after| match self.ids.search(after) {
            Ok(at) => at + 1,
            Err(at) => at,
        });
        self.iter().skip(start).take(limit.unwrap_or(usize::MAX))
    }

    /// The answer as owned pairs, for callers that keep the ids beyond the answer.
    pub fn into_vec(self) -> Vec<(String, Permissionship)> {
        self.iter()
            .map(|(id, held)| (id.to_string(), held.clone()))
            .collect()
    }
}

impl IntoIterator for FoundResources {
    type Item = (String, Permissionship);
    type IntoIter = std::vec::IntoIter<(String, Permissionship)>;

    /// The answer as owned pairs, sorted by id.
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl<'a> IntoIterator for &'a FoundResources {
    type Item = (&'a str, &'a Permissionship);
    type IntoIter = Box<dyn DoubleEndedIterator<Item = (&'a str, &'a Permissionship)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::id_set::tests::list;

    fn ids(of: &[&str]) -> IdSet {
        list(of).into_set()
    }

    fn conditional(name: &str) -> Permissionship {
        Permissionship::conditional([name.to_string()])
    }

    #[test]
    fn confirmed_answers_keep_only_what_is_held_and_how() {
        let candidates = ids(&["d1", "d2", "d3", "d4"]);
        let found = FoundResources::confirmed(&candidates, |id| {
            Ok::<_, ()>(match id {
                "d2" => Permissionship::No,
                "d3" => conditional("ip"),
                _ => Permissionship::Has,
            })
        })
        .unwrap();
        let seen: Vec<(&str, &Permissionship)> = found.iter().collect();
        assert_eq!(
            seen,
            [
                ("d1", &Permissionship::Has),
                ("d3", &conditional("ip")),
                ("d4", &Permissionship::Has),
            ]
        );
        let outright =
            FoundResources::confirmed(&candidates, |_| Ok::<_, ()>(Permissionship::Has)).unwrap();
        assert_eq!(outright, FoundResources::unconditional(candidates));
    }

    #[test]
    fn pages_resume_after_the_given_id_whether_or_not_it_was_found() {
        let found = FoundResources::unconditional(ids(&["a", "c", "e", "g"]));
        let page =
            |after, limit| -> Vec<&str> { found.page(after, limit).map(|(id, _)| id).collect() };
        assert_eq!(page(None, None), ["a", "c", "e", "g"]);
        assert_eq!(page(Some("c"), Some(1)), ["e"]);
        assert_eq!(page(Some("d"), Some(2)), ["e", "g"]);
        assert_eq!(page(Some("g"), None), Vec::<&str>::new());
        assert_eq!(page(None, Some(0)), Vec::<&str>::new());
    }

    #[test]
    fn an_owned_copy_holds_every_answer_in_order() {
        let found = FoundResources::confirmed(&ids(&["x", "y"]), |id| {
            Ok::<_, ()>(if id == "y" {
                conditional("day")
            } else {
                Permissionship::Has
            })
        })
        .unwrap();
        assert_eq!(
            found.into_vec(),
            [
                ("x".to_string(), Permissionship::Has),
                ("y".to_string(), conditional("day")),
            ]
        );
    }
}
