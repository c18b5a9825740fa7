//! Three-valued answers (has / no / conditional) and how they combine.

use std::collections::BTreeSet;

/// The answer to "does the subject have this permission?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permissionship {
    /// Yes, unconditionally.
    Has,
    /// No.
    No,
    /// Yes if caveats hold, which depends on context parameters nobody supplied.
    Conditional {
        /// The caveat parameters that were missing.
        missing: BTreeSet<String>,
    },
}

impl Permissionship {
    /// A conditional answer missing the given parameters.
    pub fn conditional<I: IntoIterator<Item = String>>(missing: I) -> Self {
        Permissionship::Conditional {
            missing: missing.into_iter().collect(),
        }
    }

    /// Whether the answer is an unconditional yes.
    pub fn is_has(&self) -> bool {
        matches!(self, Permissionship::Has)
    }

    /// Whether the answer is a no.
    pub fn is_no(&self) -> bool {
        matches!(self, Permissionship::No)
    }

    /// `self + other`: a yes on either side wins; a conditional beats a no.
    pub fn union(self, other: Permissionship) -> Permissionship {
        use Permissionship::*;
        match (self, other) {
            (Has, _) | (_, Has) => Has,
            (No, x) | (x, No) => x,
            (Conditional { missing: mut a }, Conditional { missing: b }) => {
                a.extend(b);
                Conditional { missing: a }
            }
        }
    }

    /// `self & other`: a no on either side wins; a conditional beats a yes.
    pub fn intersect(self, other: Permissionship) -> Permissionship {
        use Permissionship::*;
        match (self, other) {
            (No, _) | (_, No) => No,
            (Has, x) | (x, Has) => x,
            (Conditional { missing: mut a }, Conditional { missing: b }) => {
                a.extend(b);
                Conditional { missing: a }
            }
        }
    }

    /// `self - other`.
    pub fn exclude(self, other: Permissionship) -> Permissionship {
        use Permissionship::*;
        match (self, other) {
            (No, _) | (_, Has) => No,
            (x, No) => x,
            (Has, Conditional { missing }) => Conditional { missing },
            (Conditional { missing: mut a }, Conditional { missing: b }) => {
                a.extend(b);
                Conditional { missing: a }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Permissionship::{self, *};

    fn cond(p: &str) -> Permissionship {
        Permissionship::conditional([p.to_string()])
    }

    #[test]
    fn union_table() {
        assert_eq!(Has.union(cond("a")), Has);
        assert_eq!(No.union(cond("a")), cond("a"));
        assert_eq!(No.union(No), No);
        assert_eq!(
            cond("a").union(cond("b")),
            Permissionship::conditional(["a".to_string(), "b".to_string()])
        );
    }

    #[test]
    fn intersection_table() {
        assert_eq!(cond("a").intersect(No), No);
        assert_eq!(Has.intersect(cond("a")), cond("a"));
        assert_eq!(Has.intersect(Has), Has);
    }

    #[test]
    fn exclusion_table() {
        assert_eq!(Has.exclude(cond("a")), cond("a"));
        assert_eq!(cond("a").exclude(Has), No);
        assert_eq!(cond("a").exclude(No), cond("a"));
        assert_eq!(No.exclude(cond("a")), No);
        assert_eq!(Has.exclude(No), Has);
    }
}
