//! Input checks every product shares: JSON bodies, slug names, bounded titles and metadata,
//! id lists, and paging.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::FacadeError;

/// The largest metadata object accepted, in bytes of compact JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// The longest title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 1024;
/// The most ids one request may name in a list.
pub const MAX_IDS: usize = 1000;
/// Items per page when a list request names no `pageSize`.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The largest `pageSize` (and SCIM `count`).
pub const MAX_PAGE_SIZE: usize = 1000;

/// Parses a JSON body; an empty body (or `null`) reads as `{}`.
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FacadeError> {
    let trimmed = bytes.trim_ascii();
    let bytes: &[u8] = if trimmed.is_empty() || trimmed == b"null" {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(|e| {
        let message = e.to_string();
        if message.starts_with("unknown field `body`") {
            FacadeError::bad_body(format!(
                "{message} (send the request object itself, not wrapped in `body`)"
            ))
        } else {
            FacadeError::bad_body(message)
        }
    })
}

/// `{"userIds": [...]}` (or `user_ids`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserIdsBody {
    /// The users.
    #[serde(default, alias = "user_ids")]
    pub user_ids: Vec<String>,
}

impl UserIdsBody {
    /// The ids, de-duplicated in order; 400 when there are none or too many.
    pub fn ids(self) -> Result<Vec<String>, FacadeError> {
        if self.user_ids.is_empty() {
            return Err(FacadeError::InvalidArgument(
                "userIds must name at least one user".to_string(),
            ));
        }
        unique_ids(self.user_ids, "userIds")
    }
}

/// `ids` de-duplicated in order; 400 when more than [`MAX_IDS`] are named.
pub fn unique_ids(ids: Vec<String>, field: &str) -> Result<Vec<String>, FacadeError> {
    if ids.len() > MAX_IDS {
        return Err(FacadeError::InvalidArgument(format!(
            "{field} names {} ids; at most {MAX_IDS} are allowed in one request",
            ids.len()
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
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

/// A title: any text up to [`MAX_TITLE_CHARS`] characters (absent reads as empty).
pub fn title(title: Option<String>) -> Result<String, FacadeError> {
    bounded("title", title, MAX_TITLE_CHARS)
}

/// The text of `field`, up to `max` characters (absent reads as empty).
pub fn bounded(field: &str, text: Option<String>, max: usize) -> Result<String, FacadeError> {
    let text = text.unwrap_or_default();
    let length = text.chars().count();
    if length > max {
        return Err(FacadeError::InvalidArgument(format!(
            "{field} is {length} characters long; at most {max} are allowed"
        )));
    }
    Ok(text)
}

/// Metadata must be a JSON object (absent or `null` reads as `{}`) of at most
/// [`MAX_METADATA_BYTES`]; like Frontier's default metaschema, `label` must be an object and
/// `description` a string when present.
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
    let size = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
    if size > MAX_METADATA_BYTES {
        return Err(invalid(&format!(
            "metadata is {size} bytes; at most {MAX_METADATA_BYTES} are allowed"
        )));
    }
    Ok(map)
}

/// A request's query parameters, each read by its camelCase name or its snake_case one (as
/// Frontier's gateway takes both); others are ignored, as the gateway does.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(transparent)]
pub struct Params(HashMap<String, String>);

/// `pageSize` → `page_size`.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A checked page: which items of a list to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Items to skip.
    pub offset: usize,
    /// Items to return at most.
    pub size: usize,
}

impl Params {
    /// Parameters from `(name, value)` pairs.
    pub fn of(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        )
    }

    /// The value of `name` (camelCase) or of its snake_case spelling; empty reads as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .or_else(|| self.0.get(&snake(name)))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean parameter (`true`/`false`, `1`/`0`); absent is false.
    pub fn flag(&self, name: &str) -> Result<bool, FacadeError> {
        match self.get(name) {
            None | Some("false" | "0") => Ok(false),
            Some("true" | "1") => Ok(true),
            Some(other) => Err(FacadeError::InvalidArgument(format!(
                "invalid {name} `{other}`: expected `true` or `false`"
            ))),
        }
    }

    fn number(&self, name: &str) -> Result<Option<usize>, FacadeError> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    FacadeError::InvalidArgument(format!("invalid {name} `{v}`: expected a number"))
                })
            })
            .transpose()
    }

    /// The page asked for by `pageSize` and `pageNum` (Frontier's paging: pages count from
    /// 1; without `pageSize`, pages of [`DEFAULT_PAGE_SIZE`]); 400 for a size of 0 or above
    /// [`MAX_PAGE_SIZE`], or page 0.
    pub fn page(&self) -> Result<Page, FacadeError> {
        let size = self.number("pageSize")?.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            return Err(FacadeError::InvalidArgument(format!(
                "pageSize must be between 1 and {MAX_PAGE_SIZE}, not {size}"
            )));
        }
        let num = self.number("pageNum")?.unwrap_or(1);
        if num == 0 {
            return Err(FacadeError::InvalidArgument(
                "pageNum counts from 1".to_string(),
            ));
        }
        Ok(Page {
            offset: (num - 1).saturating_mul(size),
            size,
        })
    }
}

impl Page {
    /// The page's items of `all`, and how many items `all` holds.
    pub fn of<T>(self, all: Vec<T>) -> (Vec<T>, usize) {
        let total = all.len();
        (
            all.into_iter().skip(self.offset).take(self.size).collect(),
            total,
        )
    }
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
        assert!(title(Some("t".repeat(MAX_TITLE_CHARS + 1))).is_err());
    }

    #[test]
    fn metadata_must_be_a_bounded_object_with_typed_known_keys() {
        assert!(metadata(None).is_ok());
        assert!(metadata(Some(json!({"description": "d", "label": {"a": "b"}}))).is_ok());
        assert!(metadata(Some(json!([1]))).is_err());
        assert!(metadata(Some(json!({"description": 3}))).is_err());
        assert!(metadata(Some(json!({"label": "x"}))).is_err());
        let big = json!({"blob": "x".repeat(MAX_METADATA_BYTES)});
        assert!(metadata(Some(big)).is_err());
    }

    #[test]
    fn pages_count_from_one_and_are_bounded() {
        let page = Params::of(&[("pageSize", "2"), ("page_num", "2")])
            .page()
            .ok();
        assert_eq!(page, Some(Page { offset: 2, size: 2 }));
        assert_eq!(
            page.map(|p| p.of(vec![1, 2, 3, 4, 5])),
            Some((vec![3, 4], 5))
        );
        assert!(Params::of(&[("pageSize", "1001")]).page().is_err());
        assert!(Params::of(&[("pageNum", "0")]).page().is_err());
        assert!(Params::of(&[("pageNum", "x")]).page().is_err());
        let flags = Params::of(&[("with_members", "true"), ("withRoles", "nope")]);
        assert!(flags.flag("withMembers").unwrap());
        assert!(flags.flag("withRoles").is_err());
        assert!(!flags.flag("absent").unwrap());
    }

    #[test]
    fn a_wrapped_body_is_named_in_the_error() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            #[allow(dead_code)]
            name: Option<String>,
        }
        let err = parse_body::<Body>(br#"{"body": {"name": "x"}}"#).unwrap_err();
        assert!(err.to_string().contains("not wrapped in `body`"), "{err}");
        assert!(parse_body::<Body>(b"  ").is_ok());
    }
}
