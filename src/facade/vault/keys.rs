//! Organization keys: the public API key and the SCIM key. Each is a service user
//! (`app/serviceuser:{id}`, a deterministic id per organization and kind) bound to its
//! organization with the owner role, plus a record holding only an HMAC-SHA256 of the secret.
//! The owner creates or rotates a key through `POST /api/organizations/{orgId}/api-key` or
//! `/scim-key`; the answer shows the key once, as `{orgId}.{secret}`, which callers send as
//! `Authorization: Bearer {orgId}.{secret}`. Rotating replaces the hash, so the old key stops
//! working in the same write.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::errors::BitwardenError;
use super::{run, Answer, Authed, Facade, FacadeError, Who};
use crate::facade::organizations::{self, ORG_TYPE};
use crate::facade::policies::BINDING_TYPE;
use crate::facade::records::{Keyspace, Tx};
use crate::facade::roles::{ORG_OWNER, ROLE_TYPE};
use crate::facade::{now, object, Cx};
use crate::tuple::{Relationship, SubjectRef};

/// The service user type keys act as.
pub const SERVICE_USER_TYPE: &str = "app/serviceuser";

/// Which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The organization API key (`/public`).
    Api,
    /// The SCIM key (`/scim/v2/{orgId}`).
    Scim,
}

impl KeyKind {
    fn name(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Scim => "scim",
        }
    }
}

/// A key's record: the hash of its secret, never the secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgKey {
    /// HMAC-SHA256 of the secret (see `sha256_hex`).
    pub secret_sha256: String,
    /// The service user the key acts as.
    pub service_user: String,
    /// RFC 3339 of the last rotation.
    pub rotated_at: String,
}

/// Keys by `{kind}/{orgId}`.
pub const ORG_KEYS: Keyspace<OrgKey> = Keyspace::new("vault_org_key");

/// The deterministic service user id of `org`'s `kind` key.
pub fn service_user(kind: KeyKind, org: &str) -> String {
    let name = format!("zanzi-vault|{}|{org}", kind.name());
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

/// The stored form of a secret: HMAC-SHA256 under a fixed key (base64), through the JWT
/// crate's RustCrypto backend (no extra hashing crate: adding one changed build features and
/// rebuilt RocksDB).
fn sha256_hex(secret: &str) -> Result<String, FacadeError> {
    let key = jsonwebtoken::EncodingKey::from_secret(b"zanzi-vault-org-key");
    jsonwebtoken::crypto::sign(secret.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
        .map_err(|e| FacadeError::Internal(format!("hashing a key: {e}")))
}

/// `(orgId, secret)` from `Authorization: Bearer {orgId}.{secret}` (401 otherwise).
pub fn from_headers(headers: &HeaderMap) -> Result<(String, String), FacadeError> {
    let unauthenticated = || {
        FacadeError::Unauthenticated(
            "missing or malformed `Authorization: Bearer <orgId>.<secret>` header".to_string(),
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(unauthenticated)?;
    let (org, secret) = value.trim().rsplit_once('.').ok_or_else(unauthenticated)?;
    if org.is_empty() || secret.is_empty() {
        return Err(unauthenticated());
    }
    Ok((org.to_string(), secret.to_string()))
}

/// The key's service user as a subject when `secret` is `org`'s current `kind` key (401
/// otherwise, the same answer for an unknown organization).
pub fn verify(
    cx: &Cx<'_>,
    kind: KeyKind,
    org: &str,
    secret: &str,
) -> Result<SubjectRef, FacadeError> {
    let record = ORG_KEYS.get(&cx.view, &format!("{}/{org}", kind.name()))?;
    match record {
        Some(key) if key.secret_sha256 == sha256_hex(secret)? => {
            Ok(SubjectRef::new(SERVICE_USER_TYPE, &key.service_user, None)?)
        }
        _ => Err(FacadeError::Unauthenticated(format!(
            "invalid {} key",
            kind.name()
        ))),
    }
}

/// The deterministic id of the owner binding of `org`'s `kind` key.
fn binding_of(kind: KeyKind, org: &str) -> String {
    let name = format!(
        "{ORG_TYPE}:{org}|{ORG_OWNER}|{SERVICE_USER_TYPE}:{}",
        service_user(kind, org)
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

/// Removes both keys of `org`: records, service users' tuples and owner bindings (part of
/// the organization's delete cascade).
pub fn delete_keys(cx: &Cx<'_>, tx: &mut Tx, org: &str) -> Result<(), FacadeError> {
    for kind in [KeyKind::Api, KeyKind::Scim] {
        tx.remove(&ORG_KEYS, &format!("{}/{org}", kind.name()));
        for resource in [
            object(SERVICE_USER_TYPE, &service_user(kind, org))?,
            object(BINDING_TYPE, &binding_of(kind, org))?,
        ] {
            organizations::delete_all_tuples_of(cx, tx, &resource)?;
        }
        tx.delete(Relationship::new(
            object(ORG_TYPE, org)?,
            "granted",
            SubjectRef::new(BINDING_TYPE, &binding_of(kind, org), None)?,
        ));
    }
    Ok(())
}

/// Creates or rotates `org`'s `kind` key: the service user's owner binding (touched) and the
/// new hash. Returns the key text.
fn issue(tx: &mut Tx, kind: KeyKind, org: &str) -> Result<String, FacadeError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| FacadeError::Internal(format!("no randomness for a key: {e}")))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let user = service_user(kind, org);
    let organization = object(ORG_TYPE, org)?;
    let principal = SubjectRef::new(SERVICE_USER_TYPE, &user, None)?;
    let binding_id = binding_of(kind, org);
    let binding = object(BINDING_TYPE, &binding_id)?;
    tx.touch(Relationship::new(
        object(SERVICE_USER_TYPE, &user)?,
        "org",
        SubjectRef::new(ORG_TYPE, org, None)?,
    ));
    tx.touch(Relationship::new(binding.clone(), "bearer", principal));
    tx.touch(Relationship::new(
        binding,
        "role",
        SubjectRef::new(ROLE_TYPE, ORG_OWNER, None)?,
    ));
    tx.touch(Relationship::new(
        organization,
        "granted",
        SubjectRef::new(BINDING_TYPE, &binding_id, None)?,
    ));
    let record = OrgKey {
        secret_sha256: sha256_hex(&secret)?,
        service_user: user,
        rotated_at: now(),
    };
    tx.put(&ORG_KEYS, &format!("{}/{org}", kind.name()), &record)?;
    Ok(format!("{org}.{secret}"))
}

async fn create(
    facade: Arc<Facade>,
    auth: Result<Authed, FacadeError>,
    org: String,
    kind: KeyKind,
) -> Result<Answer, BitwardenError> {
    let who = Who::User(auth?);
    Ok(run(&facade, who, true, move |cx, tx, actor| {
        actor.require(cx, &org, "administer")?;
        let key = issue(tx, kind, &org)?;
        let object = match kind {
            KeyKind::Api => "organizationApiKey",
            KeyKind::Scim => "scimApiKey",
        };
        Ok(json!({ "object": object, "apiKey": key, "revisionDate": now() }))
    })
    .await?)
}

/// `POST /api/organizations/{orgId}/api-key`: creates or rotates the public API key (owner).
pub async fn create_api_key(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path(org): Path<String>,
) -> Result<Answer, BitwardenError> {
    create(facade, auth, org, KeyKind::Api).await
}

/// `POST /api/organizations/{orgId}/scim-key`: creates or rotates the SCIM key (owner).
pub async fn create_scim_key(
    State(facade): State<Arc<Facade>>,
    auth: Result<Authed, FacadeError>,
    Path(org): Path<String>,
) -> Result<Answer, BitwardenError> {
    create(facade, auth, org, KeyKind::Scim).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_the_bearer_header_and_hash_stably() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer org-1.abc".parse().unwrap());
        assert_eq!(
            from_headers(&headers).unwrap(),
            ("org-1".to_string(), "abc".to_string())
        );
        headers.insert(header::AUTHORIZATION, "Bearer nodot".parse().unwrap());
        assert!(from_headers(&headers).is_err());
        assert!(!sha256_hex("abc").unwrap().is_empty());
        assert_ne!(sha256_hex("abc").unwrap(), sha256_hex("abd").unwrap());
        assert_ne!(
            service_user(KeyKind::Api, "o"),
            service_user(KeyKind::Scim, "o")
        );
    }
}
