//! Relationship filters: which stored relationships a read, a delete or a precondition means.
//!
//! Pure vocabulary shared by every layer (the store answers filters, the engine validates
//! them against the schema, the APIs and the facade build them); no I/O.

use std::fmt;

use crate::tuple::Relationship;

/// Matches stored relationships by subject.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubjectFilter {
    /// Subject type (required).
    pub subject_type: String,
    /// Subject id, if restricted.
    pub subject_id: Option<String>,
    /// Subject relation: `None` = any; `Some(None)` = no subject relation (`...`);
    /// `Some(Some(r))` = exactly `r`.
    pub relation: Option<Option<String>>,
}

/// Matches stored relationships. Every field that is `None` matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RelationshipFilter {
    /// Resource type.
    pub resource_type: Option<String>,
    /// Exact resource id.
    pub resource_id: Option<String>,
    /// Resource id prefix (exclusive with `resource_id`).
    pub resource_id_prefix: Option<String>,
    /// Relation name.
    pub relation: Option<String>,
    /// Subject constraints.
    pub subject: Option<SubjectFilter>,
}

impl RelationshipFilter {
    /// Every relationship of `resource_type#relation`.
    pub fn of_relation(resource_type: &str, relation: &str) -> Self {
        RelationshipFilter {
            resource_type: Some(resource_type.to_string()),
            relation: Some(relation.to_string()),
            ..RelationshipFilter::default()
        }
    }

    /// Whether `rel` satisfies every constraint of the filter.
    pub fn matches(&self, rel: &Relationship) -> bool {
        let resource_ok = self
            .resource_type
            .as_ref()
            .is_none_or(|t| *t == rel.resource.object_type)
            && self
                .resource_id
                .as_ref()
                .is_none_or(|id| *id == rel.resource.object_id)
            && self
                .resource_id_prefix
                .as_ref()
                .is_none_or(|p| rel.resource.object_id.starts_with(p.as_str()))
            && self.relation.as_ref().is_none_or(|r| *r == rel.relation);
        let subject_ok = self.subject.as_ref().is_none_or(|s| {
            s.subject_type == rel.subject.object.object_type
                && s.subject_id
                    .as_ref()
                    .is_none_or(|id| *id == rel.subject.object.object_id)
                && s.relation
                    .as_ref()
                    .is_none_or(|r| *r == rel.subject.relation)
        });
        resource_ok && subject_ok
    }
}

/// Describes the filter the way relationships are written, `…` standing for "any":
/// `document:1#viewer@user:…`, `document:pre…#…`.
impl fmt::Display for RelationshipFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ANY: &str = "…";
        write!(f, "{}:", self.resource_type.as_deref().unwrap_or(ANY))?;
        match (&self.resource_id, &self.resource_id_prefix) {
            (Some(id), _) => write!(f, "{id}")?,
            (None, Some(prefix)) => write!(f, "{prefix}{ANY}")?,
            (None, None) => write!(f, "{ANY}")?,
        }
        write!(f, "#{}", self.relation.as_deref().unwrap_or(ANY))?;
        if let Some(subject) = &self.subject {
            write!(
                f,
                "@{}:{}",
                subject.subject_type,
                subject.subject_id.as_deref().unwrap_or(ANY)
            )?;
            match &subject.relation {
                None => write!(f, "#{ANY}")?,
                Some(None) => {}
                Some(Some(relation)) => write!(f, "#{relation}")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_print_like_relationships_with_gaps_for_any() {
        let filter = RelationshipFilter {
            resource_type: Some("doc".to_string()),
            resource_id_prefix: Some("pre".to_string()),
            subject: Some(SubjectFilter {
                subject_type: "group".to_string(),
                subject_id: None,
                relation: Some(Some("member".to_string())),
            }),
            ..RelationshipFilter::default()
        };
        assert_eq!(filter.to_string(), "doc:pre…#…@group:…#member");
        assert_eq!(RelationshipFilter::default().to_string(), "…:…#…");
    }

    #[test]
    fn a_filter_matches_only_what_every_field_allows() {
        let rel = Relationship::parse("doc:readme#viewer@group:eng#member").unwrap();
        let mut filter = RelationshipFilter {
            resource_type: Some("doc".to_string()),
            resource_id_prefix: Some("read".to_string()),
            ..RelationshipFilter::default()
        };
        assert!(filter.matches(&rel));
        filter.subject = Some(SubjectFilter {
            subject_type: "group".to_string(),
            subject_id: Some("eng".to_string()),
            relation: Some(None),
        });
        assert!(!filter.matches(&rel), "`...` is not `member`");
    }
}
