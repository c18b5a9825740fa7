//! Expected relations (`validation:` blocks): parsing the expected lines and computing the
//! same shape from a recursive expand tree.
//!
//! A line reads `[subject] is <type:id#relation>/<...>`: the subject (a concrete object,
//! a subject set, `user:tom[...]` for a caveated one, or `user:* - {user:a, user:b}` for a
//! wildcard with exclusions) and every relationship where it was found directly.

use std::collections::{BTreeMap, BTreeSet};

use super::ValidateError;
use crate::engine::{ExpandNode, ExpandTree};
use crate::tuple::WILDCARD_ID;

/// One subject found for a relation, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FoundEntry {
    /// `type:id`, `type:id#relation` or `type:*`.
    pub subject: String,
    /// For a wildcard: the excluded subjects, as `type:id`.
    pub excluded: BTreeSet<String>,
    /// Whether it is found only through caveated relationships.
    pub caveated: bool,
    /// The `type:id#relation` of every relationship where it was found.
    pub paths: BTreeSet<String>,
}

impl std::fmt::Display for FoundEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}", self.subject)?;
        if !self.excluded.is_empty() {
            let excluded: Vec<&str> = self.excluded.iter().map(String::as_str).collect();
            write!(f, " - {{{}}}", excluded.join(", "))?;
        }
        if self.caveated {
            write!(f, "[...]")?;
        }
        let paths: Vec<String> = self.paths.iter().map(|p| format!("<{p}>")).collect();
        write!(f, "] is {}", paths.join("/"))
    }
}

/// Parses one expected line.
pub fn parse_line(line: &str) -> Result<FoundEntry, ValidateError> {
    let bad = || ValidateError::Invalid(format!("cannot parse expected relation `{line}`"));
    let rest = line.trim().strip_prefix('[').ok_or_else(bad)?;
    let (subject_part, paths_part) = rest.rsplit_once("] is ").ok_or_else(bad)?;
    let (subject_part, caveated) = match subject_part.strip_suffix("[...]") {
        Some(s) => (s, true),
        None => (subject_part, false),
    };
    let (subject, excluded) = match subject_part.split_once(" - {") {
        Some((subject, list)) => {
            let list = list.strip_suffix('}').ok_or_else(bad)?;
            let excluded = list
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            (subject.trim().to_string(), excluded)
        }
        None => (subject_part.trim().to_string(), BTreeSet::new()),
    };
    let mut paths = BTreeSet::new();
    for part in paths_part.split(">/<") {
        let p = part.trim().trim_start_matches('<').trim_end_matches('>');
        if p.is_empty() {
            return Err(bad());
        }
        paths.insert(p.to_string());
    }
    Ok(FoundEntry {
        subject,
        excluded,
        caveated,
        paths,
    })
}

/// Subjects found in a recursive expand tree, keyed by subject text.
pub fn found_subjects(tree: &ExpandTree) -> BTreeMap<String, FoundEntry> {
    match &tree.node {
        ExpandNode::Leaf(subjects) => {
            let path = format!("{}#{}", tree.object, tree.relation);
            let mut out: BTreeMap<String, FoundEntry> = BTreeMap::new();
            for found in subjects {
                let key = found.subject.to_string();
                let entry = FoundEntry {
                    subject: key.clone(),
                    excluded: BTreeSet::new(),
                    caveated: found.caveat.is_some(),
                    paths: BTreeSet::from([path.clone()]),
                };
                merge_union(&mut out, entry);
            }
            out
        }
        ExpandNode::Union(children) => {
            let mut out = BTreeMap::new();
            for child in children {
                for (_, entry) in found_subjects(child) {
                    merge_union(&mut out, entry);
                }
            }
            out
        }
        ExpandNode::Intersection(children) => {
            let sets: Vec<BTreeMap<String, FoundEntry>> =
                children.iter().map(found_subjects).collect();
            let Some((first, rest)) = sets.split_first() else {
                return BTreeMap::new();
            };
            let mut keys: BTreeSet<String> = first.keys().cloned().collect();
            for set in rest {
                keys.extend(set.keys().cloned());
            }
            let mut out = BTreeMap::new();
            for key in keys {
                let mut combined: Option<FoundEntry> = None;
                let mut in_all = true;
                for set in &sets {
                    match lookup(set, &key) {
                        Some(entry) => {
                            combined = Some(match combined {
                                None => FoundEntry {
                                    subject: key.clone(),
                                    ..entry
                                },
                                Some(mut acc) => {
                                    acc.paths.extend(entry.paths);
                                    acc.excluded.extend(entry.excluded);
                                    acc.caveated |= entry.caveated;
                                    acc
                                }
                            })
                        }
                        None => {
                            in_all = false;
                            break;
                        }
                    }
                }
                if let (true, Some(entry)) = (in_all, combined) {
                    out.insert(key, entry);
                }
            }
            out
        }
        ExpandNode::Exclusion(base, subtracted) => {
            let base = found_subjects(base);
            let subtracted = found_subjects(subtracted);
            let mut out = BTreeMap::new();
            for (key, mut entry) in base {
                if is_wildcard_key(&key) {
                    if let Some(other) = subtracted.get(&key) {
                        // `* - *`: only ids excluded from the subtracted wildcard remain; they are
                        // not reported as a wildcard.
                        if !other.caveated {
                            continue;
                        }
                        entry.caveated = true;
                    }
                    let prefix = key.trim_end_matches(WILDCARD_ID);
                    for other in subtracted.values() {
                        if other.subject.starts_with(prefix)
                            && !is_wildcard_key(&other.subject)
                            && !other.caveated
                        {
                            entry.excluded.insert(other.subject.clone());
                        }
                    }
                    out.insert(key, entry);
                    continue;
                }
                match lookup(&subtracted, &key) {
                    Some(other) if !other.caveated => {}
                    Some(_) => {
                        entry.caveated = true;
                        out.insert(key, entry);
                    }
                    None => {
                        out.insert(key, entry);
                    }
                }
            }
            out
        }
    }
}

fn is_wildcard_key(key: &str) -> bool {
    key.ends_with(":*")
}

/// The entry for `key` in `set`, directly or through a wildcard of its type that does not
/// exclude it.
fn lookup(set: &BTreeMap<String, FoundEntry>, key: &str) -> Option<FoundEntry> {
    if let Some(entry) = set.get(key) {
        return Some(entry.clone());
    }
    if key.contains('#') || is_wildcard_key(key) {
        return None;
    }
    let (object_type, _) = key.split_once(':')?;
    let wildcard = set.get(&format!("{object_type}:*"))?;
    if wildcard.excluded.contains(key) {
        return None;
    }
    Some(wildcard.clone())
}

fn merge_union(out: &mut BTreeMap<String, FoundEntry>, entry: FoundEntry) {
    match out.get_mut(&entry.subject) {
        Some(existing) => {
            existing.paths.extend(entry.paths);
            existing.caveated &= entry.caveated;
            if is_wildcard_key(&entry.subject) {
                existing.excluded = existing
                    .excluded
                    .intersection(&entry.excluded)
                    .cloned()
                    .collect();
            }
        }
        None => {
            out.insert(entry.subject.clone(), entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_expected_lines() {
        let e =
            parse_line("[user:jake] is <organization:authzed#own>/<repository:authzed_go#reader>")
                .unwrap();
        assert_eq!(e.subject, "user:jake");
        assert_eq!(e.paths.len(), 2);
        let e = parse_line("[user:tom[...]] is <document:firstdoc#reader>").unwrap();
        assert!(e.caveated);
        assert_eq!(e.subject, "user:tom");
        let e = parse_line("[user:* - {user:a, user:b}] is <doc:1#viewer>").unwrap();
        assert_eq!(e.subject, "user:*");
        assert_eq!(e.excluded.len(), 2);
        assert!(parse_line("user:tom is <doc:1#viewer>").is_err());
    }
}
