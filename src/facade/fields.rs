//! Request bodies shared by several endpoints and the checks of their fields: slug names,
//! titles, metadata objects, user id lists. Input accepts camelCase and snake_case.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::FacadeError;

/// `{name, title, metadata}` (plus `orgId` for projects, `namespace` for resources).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedBody {
    /// Slug name.
    #[serde(default)]
    pub name: Option<String>,
    /// Display title.
    #[serde(default)]
    pub title: Option<String>,
    /// Metadata object.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Owning organization (projects).
    #[serde(default, alias = "org_id")]
    pub org_id: Option<String>,
    /// Resource type (custom resources).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `{"userIds": [...]}` (or `user_ids`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdsBody {
    /// The users.
    #[serde(default, alias = "user_ids")]
    pub user_ids: Vec<String>,
}

impl UserIdsBody {
    /// The ids, de-duplicated in order; 400 when there are none.
    pub fn ids(self) -> Result<Vec<String>, FacadeError> {
        if self.user_ids.is_empty() {
            return Err(FacadeError::InvalidArgument(
                "userIds must name at least one user".to_string(),
            ));
        }
        let mut ids: Vec<String> = Vec::new();
        for id in self.user_ids {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }
}

/// A slug from a title: spaces and `_` become `-`, other characters outside the slug
/// alphabet are dropped.
fn slugify(title: &str) -> String {
    title
        .trim()
        .chars()
        .filter_map(|c| match c {
            ' ' | '_' => Some('-'),
            c if c.is_ascii_alphanumeric() || c == '-' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// The name to use: `name`, or a slug of `title` when the name is empty; it must match
/// `^[A-Za-z0-9_-]+$` and be 2 to 64 characters.
pub fn slug_name(name: Option<&str>, title: Option<&str>) -> Result<String, FacadeError> {
    let name = match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => name.to_string(),
        None => slugify(title.unwrap_or_default()),
    };
    let valid = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(name)
    } else if name.is_empty() {
        Err(FacadeError::InvalidArgument("name is required".to_string()))
    } else {
        Err(FacadeError::InvalidArgument(format!(
            "invalid name `{name}`: expected 2 to 64 characters of `A-Z a-z 0-9 _ -`"
        )))
    }
}

/// Metadata must be a JSON object (absent or `null` reads as `{}`); like Frontier's default
/// metaschema, `label` must be an object and `description` a string when present.
pub fn metadata(value: Option<Value>) -> Result<Map<String, Value>, FacadeError> {
    let invalid = |why: &str| {
        FacadeError::InvalidArgument(format!(
            "invalid syntax in body: metadata schema validation failed: {why}"
        ))
    };
    let map = match value {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(invalid("metadata must be an object")),
    };
    if map.get("label").is_some_and(|l| !l.is_object()) {
        return Err(invalid("`label` must be an object"));
    }
    if map.get("description").is_some_and(|d| !d.is_string()) {
        return Err(invalid("`description` must be a string"));
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_slugs_or_come_from_titles() {
        assert_eq!(
            slug_name(Some("eng-team_1"), None).ok().as_deref(),
            Some("eng-team_1")
        );
        assert_eq!(
            slug_name(Some(""), Some("Data Team")).ok().as_deref(),
            Some("data-team")
        );
        assert!(slug_name(Some("bad name"), None).is_err());
        assert!(slug_name(None, None).is_err());
        assert!(slug_name(Some("x"), None).is_err());
    }

    #[test]
    fn metadata_must_be_an_object_with_typed_known_keys() {
        assert!(metadata(None).is_ok());
        assert!(metadata(Some(json!({"description": "d", "label": {"a": "b"}}))).is_ok());
        assert!(metadata(Some(json!([1]))).is_err());
        assert!(metadata(Some(json!({"description": 3}))).is_err());
        assert!(metadata(Some(json!({"label": "x"}))).is_err());
    }
}
