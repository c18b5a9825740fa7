//! Caller identity for `/v1beta1`: `Authorization: Bearer <JWT>` verified with a configured
//! key (HS256 with a shared secret, RS256 or EdDSA with a PEM public key) through the
//! `jsonwebtoken` crate; the `sub` claim is the user id. Also issues tokens for
//! `zanzi token`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::tuple::validate_object_id;

/// Why a key could not be set up or a token not issued.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM file could not be read.
    #[error("reading JWT key {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The PEM holds neither an RSA nor an Ed25519 key.
    #[error("JWT key {0} is neither an RSA nor an Ed25519 key in PEM form")]
    UnsupportedKey(String),
    /// The secret is empty.
    #[error("the JWT secret is empty")]
    EmptySecret,
    /// Signing failed.
    #[error("signing the token: {0}")]
    Sign(String),
}

/// The claims zanzi reads (and writes, for `zanzi token`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The user's email, kept on the user record when it is first created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's display name, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The user id (`sub`), a valid object id.
    pub user_id: String,
    /// The email claim, if any.
    pub email: Option<String>,
    /// The name claim, if any.
    pub name: Option<String>,
}

/// Verifies bearer tokens against the configured keys (one per algorithm family).
pub struct TokenVerifier {
    keys: Vec<(Algorithm, DecodingKey)>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let algorithms: Vec<_> = self.keys.iter().map(|(a, _)| *a).collect();
        f.debug_struct("TokenVerifier")
            .field("algorithms", &algorithms)
            .finish()
    }
}

/// Reads a PEM public key and tells its algorithm (RS256 for RSA, EdDSA for Ed25519).
fn public_key(path: &str, pem: &[u8]) -> Result<(Algorithm, DecodingKey), KeyError> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((Algorithm::RS256, key));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Ok((Algorithm::EdDSA, key));
    }
    Err(KeyError::UnsupportedKey(path.to_string()))
}

impl TokenVerifier {
    /// A verifier accepting HS256 tokens signed with `secret` (if given) and RS256 / EdDSA
    /// tokens signed by the private half of the PEM public key at `public_key_path` (if
    /// given).
    pub fn new(secret: Option<&str>, public_key_path: Option<&str>) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        if let Some(secret) = secret {
            if secret.is_empty() {
                return Err(KeyError::EmptySecret);
            }
            keys.push((
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
            ));
        }
        if let Some(path) = public_key_path {
            let pem = std::fs::read(path).map_err(|source| KeyError::Io {
                path: path.to_string(),
                source,
            })?;
            keys.push(public_key(path, &pem)?);
        }
        Ok(Self { keys })
    }

    /// A verifier from PEM bytes (for tests and embedding).
    pub fn from_public_pem(pem: &[u8]) -> Result<Self, KeyError> {
        Ok(Self {
            keys: vec![public_key("(inline)", pem)?],
        })
    }

    /// The caller a token stands for, or why it is refused (a message for a 401).
    pub fn verify(&self, token: &str) -> Result<Caller, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("invalid token: {e}"))?;
        let Some((algorithm, key)) = self.keys.iter().find(|(a, _)| *a == header.alg) else {
            return Err(format!(
                "invalid token: algorithm {:?} is not accepted by this server",
                header.alg
            ));
        };
        let mut validation = Validation::new(*algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map_err(|e| format!("invalid token: {e}"))?;
        let claims = data.claims;
        validate_object_id(&claims.sub).map_err(|_| {
            format!(
                "invalid token: subject `{}` is not a valid user id (1 to 1024 characters of `a-z A-Z 0-9 / _ | - = +`)",
                claims.sub
            )
        })?;
        Ok(Caller {
            user_id: claims.sub,
            email: claims.email,
            name: claims.name,
        })
    }
}

/// How `zanzi token` signs.
#[derive(Debug, Clone)]
pub enum SigningKey {
    /// HS256 with a shared secret.
    Secret(String),
    /// RS256 or EdDSA with a PEM private key (RSA or Ed25519).
    PrivatePem(Vec<u8>),
}

/// A token for `user` valid for `ttl`, with optional email and name claims.
pub fn issue_token(
    key: &SigningKey,
    user: &str,
    ttl: Duration,
    email: Option<String>,
    name: Option<String>,
) -> Result<String, KeyError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        sub: user.to_string(),
        exp: now.saturating_add(ttl.as_secs()),
        iat: Some(now),
        email,
        name,
    };
    let (algorithm, encoding) = match key {
        SigningKey::Secret(secret) => {
            if secret.is_empty() {
                return Err(KeyError::EmptySecret);
            }
            (
                Algorithm::HS256,
                EncodingKey::from_secret(secret.as_bytes()),
            )
        }
        SigningKey::PrivatePem(pem) => {
            if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
                (Algorithm::RS256, key)
            } else if let Ok(key) = EncodingKey::from_ed_pem(pem) {
                (Algorithm::EdDSA, key)
            } else {
                return Err(KeyError::UnsupportedKey("--jwt-private-key".to_string()));
            }
        }
    };
    jsonwebtoken::encode(&Header::new(algorithm), &claims, &encoding)
        .map_err(|e| KeyError::Sign(e.to_string()))
}

/// Parses a duration such as `3600`, `90s`, `15m`, `12h` or `7d`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration `{text}`: expected e.g. `3600`, `15m`, `12h`"))?;
    let seconds = match unit {
        "s" => value,
        "m" => value.saturating_mul(60),
        "h" => value.saturating_mul(3600),
        "d" => value.saturating_mul(86_400),
        _ => {
            return Err(format!(
                "invalid duration `{text}`: unit must be s, m, h or d"
            ))
        }
    };
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // Throwaway key pairs made for these tests only.
    const ED_PRIVATE: &str = include_str!("testdata/ed25519-private.pem");
    const ED_PUBLIC: &str = include_str!("testdata/ed25519-public.pem");

    #[test]
    fn hs256_tokens_round_trip_and_wrong_secrets_fail() {
        let verifier = TokenVerifier::new(Some("s3cret"), None).unwrap();
        let token = issue_token(
            &SigningKey::Secret("s3cret".into()),
            "alice",
            Duration::from_secs(60),
            Some("alice@example.com".into()),
            None,
        )
        .unwrap();
        let caller = verifier.verify(&token).unwrap();
        assert_eq!(caller.user_id, "alice");
        assert_eq!(caller.email.as_deref(), Some("alice@example.com"));

        let other = TokenVerifier::new(Some("other"), None).unwrap();
        assert!(other.verify(&token).unwrap_err().contains("invalid token"));
        assert!(verifier.verify("not.a.token").is_err());
    }

    #[test]
    fn expired_tokens_and_bad_subjects_are_refused() {
        let verifier = TokenVerifier::new(Some("k"), None).unwrap();
        let claims = Claims {
            sub: "alice".into(),
            exp: 1_000,
            iat: None,
            email: None,
            name: None,
        };
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(verifier.verify(&expired).unwrap_err().contains("Expired"));
        let bad = issue_token(
            &SigningKey::Secret("k".into()),
            "not a user id",
            Duration::from_secs(60),
            None,
            None,
        )
        .unwrap();
        assert!(verifier
            .verify(&bad)
            .unwrap_err()
            .contains("not a valid user id"));
    }

    #[test]
    fn eddsa_tokens_verify_with_the_public_key_only() {
        let token = issue_token(
            &SigningKey::PrivatePem(ED_PRIVATE.as_bytes().to_vec()),
            "bob",
            Duration::from_secs(60),
            None,
            None,
        )
        .unwrap();
        let verifier = TokenVerifier::from_public_pem(ED_PUBLIC.as_bytes()).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().user_id, "bob");
        // An HS256-only server does not accept it.
        let hs = TokenVerifier::new(Some("k"), None).unwrap();
        assert!(hs.verify(&token).unwrap_err().contains("not accepted"));
    }

    #[test]
    fn rs256_tokens_verify_with_a_public_key_file() {
        const RSA_PRIVATE: &str = include_str!("testdata/rsa-private.pem");
        let token = issue_token(
            &SigningKey::PrivatePem(RSA_PRIVATE.as_bytes().to_vec()),
            "carol",
            Duration::from_secs(60),
            None,
            None,
        )
        .unwrap();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/facade/testdata/rsa-public.pem"
        );
        let verifier = TokenVerifier::new(Some("also-a-secret"), Some(path)).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().user_id, "carol");
        assert!(matches!(
            TokenVerifier::new(None, Some("/nonexistent.pem")),
            Err(KeyError::Io { .. })
        ));
    }

    #[test]
    fn ttls_parse_with_units() {
        assert_eq!(parse_ttl("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_ttl("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_ttl("2w").is_err());
        assert!(parse_ttl("h").is_err());
    }
}
