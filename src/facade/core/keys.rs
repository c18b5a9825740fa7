//! Organization keys: the public API key and the SCIM key of an organization.
//!
//! Each key acts as a service user (`app/serviceuser:{id}`, a deterministic id per
//! organization and kind) bound to its organization with the owner role. A key reads
//! `{orgId}.{nonce}{tag}`: 32 hex characters of random nonce, then an HMAC-SHA256 tag of the
//! organization, kind and nonce under the deployment's HMAC key ([`KeyRing`]). Checking a
//! presented key happens in two steps:
//!
//! 1. [`KeyRing::authenticate`], on the request's own task before anything shared: the tag
//!    must verify (a constant-time comparison). A junk or forged key is refused here, so a
//!    flood of them takes no lock, no blocking-pool slot and no store read.
//! 2. [`KeyRing::is_current`], inside the call's snapshot: the organization's key record
//!    holds an HMAC of the current key; a rotated-out key no longer matches (again a
//!    constant-time comparison).
//!
//! The HMAC key is random per deployment and lives in the store (`facade_secret` record),
//! created once under a record precondition, so every node sharing a database uses the same
//! one and no constant in the code can forge a key.

use axum::http::{header, HeaderMap};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::{Deserialize, Serialize};

use super::error::FacadeError;
use super::records::{Keyspace, Tx};
use super::runner::now;
use crate::engine::{Engine, EngineError, ReadView};
use crate::revision::Consistency;
use crate::store::StoreError;

/// The service user type keys act as.
pub const SERVICE_USER_TYPE: &str = "app/serviceuser";

/// Hex characters of a key's nonce.
const NONCE_HEX: usize = 32;

/// Which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The organization API key (`/public`).
    Api,
    /// The SCIM key (`/scim/v2/{orgId}`).
    Scim,
}

impl KeyKind {
    /// `api` or `scim`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Scim => "scim",
        }
    }

    /// The record key of `org`'s key of this kind.
    fn record_key(self, org: &str) -> String {
        format!("{}/{org}", self.name())
    }
}

/// A key's record: an HMAC of the current key text, never the key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrgKey {
    /// HMAC-SHA256 of the key's secret part under the deployment's HMAC key (base64url).
    pub secret_hmac: String,
    /// The service user the key acts as.
    pub service_user: String,
    /// RFC 3339 of the last rotation.
    pub rotated_at: String,
}

/// Keys by `{kind}/{orgId}`.
pub const ORG_KEYS: Keyspace<OrgKey> = Keyspace::new("org_key");
/// Where keys of the first format (a hash under a fixed key) were kept; they no longer
/// authenticate and are removed with their organization.
const LEGACY_KEYS: Keyspace<serde_json::Value> = Keyspace::new("vault_org_key");

/// The deployment's secrets (one record per secret).
const SECRETS: Keyspace<String> = Keyspace::new("facade_secret");
/// The record holding the org keys' HMAC key.
const HMAC_RECORD: &str = "org_key_hmac";

/// The deterministic service user id of `org`'s `kind` key.
pub fn service_user(kind: KeyKind, org: &str) -> String {
    let name = format!("zanzi-vault|{}|{org}", kind.name());
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).to_string()
}

/// A key as presented, after step 1: it was minted by this deployment for `org`.
#[derive(Clone)]
pub struct PresentedKey {
    /// API or SCIM.
    pub kind: KeyKind,
    /// The organization the key names.
    pub org: String,
    secret: String,
}

impl std::fmt::Debug for PresentedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedKey")
            .field("kind", &self.kind)
            .field("org", &self.org)
            .finish_non_exhaustive()
    }
}

/// The deployment's HMAC key for organization keys.
pub struct KeyRing {
    signing: EncodingKey,
    verifying: DecodingKey,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing(..)")
    }
}

fn random_hex(bytes: usize) -> Result<String, FacadeError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)
        .map_err(|e| FacadeError::Internal(format!("no randomness for a key: {e}")))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

fn tag_message(kind: KeyKind, org: &str, nonce: &str) -> String {
    format!(
        "zanzi-org-key\u{0}tag\u{0}{}\u{0}{org}\u{0}{nonce}",
        kind.name()
    )
}

fn record_message(kind: KeyKind, org: &str, secret: &str) -> String {
    format!(
        "zanzi-org-key\u{0}record\u{0}{}\u{0}{org}\u{0}{secret}",
        kind.name()
    )
}

impl KeyRing {
    /// The deployment's key ring: the HMAC key stored in `engine`'s store, created (random,
    /// under a record precondition) when no node has made one yet.
    pub fn load_or_create(engine: &Engine) -> Result<Self, FacadeError> {
        let fresh = random_hex(32)?;
        let created = engine.transact_with(|view| {
            let mut tx = Tx::default();
            if SECRETS.get(view, HMAC_RECORD)?.is_none() {
                tx.require_absent(&SECRETS, HMAC_RECORD);
                tx.put(&SECRETS, HMAC_RECORD, &fresh)?;
            }
            Ok::<_, FacadeError>(tx.into_transaction())
        });
        match created {
            // Another node created it between our read and our commit: use theirs.
            Ok(_)
            | Err(FacadeError::Engine(EngineError::Store(StoreError::RecordConflict { .. }))) => {}
            Err(err) => return Err(err),
        }
        let view = engine.at(Consistency::FullyConsistent)?;
        let secret = SECRETS
            .get(&view, HMAC_RECORD)?
            .ok_or_else(|| FacadeError::Internal("the org key HMAC key is missing".into()))?;
        Ok(Self::from_secret(secret.as_bytes()))
    }

    /// A key ring over a given HMAC key.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            signing: EncodingKey::from_secret(secret),
            verifying: DecodingKey::from_secret(secret),
        }
    }

    fn mac(&self, message: &str) -> Result<String, FacadeError> {
        jsonwebtoken::crypto::sign(message.as_bytes(), &self.signing, Algorithm::HS256)
            .map_err(|e| FacadeError::Internal(format!("signing a key: {e}")))
    }

    /// Whether `tag` is the HMAC of `message` (compared in constant time by the HMAC crate).
    fn verifies(&self, tag: &str, message: &str) -> bool {
        jsonwebtoken::crypto::verify(tag, message.as_bytes(), &self.verifying, Algorithm::HS256)
            .unwrap_or(false)
    }

    /// A new key for `org`: the text to hand out once, and the record to store.
    pub fn mint(&self, kind: KeyKind, org: &str) -> Result<(String, OrgKey), FacadeError> {
        let nonce = random_hex(NONCE_HEX / 2)?;
        let secret = format!("{nonce}{}", self.mac(&tag_message(kind, org, &nonce))?);
        let record = OrgKey {
            secret_hmac: self.mac(&record_message(kind, org, &secret))?,
            service_user: service_user(kind, org),
            rotated_at: now(),
        };
        Ok((format!("{org}.{secret}"), record))
    }

    /// Step 1: the `kind` key in `Authorization: Bearer {orgId}.{secret}`, if this deployment
    /// minted it (401 otherwise). Pure computation.
    pub fn authenticate(
        &self,
        kind: KeyKind,
        headers: &HeaderMap,
    ) -> Result<PresentedKey, FacadeError> {
        let refused = || {
            FacadeError::Unauthenticated(format!(
                "missing or invalid {} key: expected `Authorization: Bearer <orgId>.<secret>`",
                kind.name()
            ))
        };
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(refused)?;
        let (org, secret) = value.trim().rsplit_once('.').ok_or_else(refused)?;
        let (Some(nonce), Some(tag)) = (secret.get(..NONCE_HEX), secret.get(NONCE_HEX..)) else {
            return Err(refused());
        };
        if org.is_empty() || !self.verifies(tag, &tag_message(kind, org, nonce)) {
            return Err(refused());
        }
        Ok(PresentedKey {
            kind,
            org: org.to_string(),
            secret: secret.to_string(),
        })
    }

    /// Step 2: whether `key` is its organization's current key at `view` (not rotated out,
    /// the organization not deleted).
    pub fn is_current(&self, view: &ReadView<'_>, key: &PresentedKey) -> Result<bool, FacadeError> {
        let record = ORG_KEYS.get(view, &key.kind.record_key(&key.org))?;
        Ok(record.is_some_and(|record| {
            self.verifies(
                &record.secret_hmac,
                &record_message(key.kind, &key.org, &key.secret),
            )
        }))
    }
}

/// Stages `record` as `org`'s current `kind` key (replacing, so rotating ends the old key in
/// the same write).
pub fn store(tx: &mut Tx, kind: KeyKind, org: &str, record: &OrgKey) -> Result<(), FacadeError> {
    tx.put(&ORG_KEYS, &kind.record_key(org), record)
}

/// Stages the removal of both of `org`'s key records.
pub fn remove_all(tx: &mut Tx, org: &str) {
    for kind in [KeyKind::Api, KeyKind::Scim] {
        tx.remove(&ORG_KEYS, &kind.record_key(org));
        tx.remove(&LEGACY_KEYS, &kind.record_key(org));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn minted_keys_authenticate_and_forged_ones_do_not() {
        let ring = KeyRing::from_secret(b"deployment-one");
        let (key, record) = ring.mint(KeyKind::Api, "org-1").unwrap();
        assert!(key.starts_with("org-1."));
        let presented = ring
            .authenticate(KeyKind::Api, &headers(&format!("Bearer {key}")))
            .unwrap();
        assert_eq!(presented.org, "org-1");
        assert!(ring.verifies(
            &record.secret_hmac,
            &record_message(KeyKind::Api, "org-1", &presented.secret)
        ));
        // The same key for another kind, another organization or another deployment fails.
        assert!(ring
            .authenticate(KeyKind::Scim, &headers(&format!("Bearer {key}")))
            .is_err());
        let moved = key.replacen("org-1", "org-2", 1);
        assert!(ring
            .authenticate(KeyKind::Api, &headers(&format!("Bearer {moved}")))
            .is_err());
        let other = KeyRing::from_secret(b"deployment-two");
        assert!(other
            .authenticate(KeyKind::Api, &headers(&format!("Bearer {key}")))
            .is_err());
        for junk in ["Bearer nodot", "Bearer org-1.abc", "Basic x", "Bearer .x"] {
            assert!(ring.authenticate(KeyKind::Api, &headers(junk)).is_err());
        }
        assert_ne!(
            service_user(KeyKind::Api, "o"),
            service_user(KeyKind::Scim, "o")
        );
    }
}
