//! User identity for the facades: `Authorization: Bearer <JWT>` verified with configured keys
//! through the `jsonwebtoken` crate (HS256 with a shared secret of at least 32 bytes, RS256
//! or EdDSA with a PEM public key, and a JWKS file whose keys are chosen by the token's
//! `kid`), with the issuer and audience an operator requires and `exp` / `nbf` checked with a
//! small leeway. The `sub` claim is the user id. Also issues tokens for `zanzi token`.
//!
//! Verification is pure CPU work on the request's own task: no lock, no blocking-pool slot
//! and no store read is taken before a token is known to be good.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::tuple::validate_object_id;

/// The shortest HS256 secret accepted (RFC 7518 §3.2: a key at least as long as the hash).
pub const MIN_SECRET_BYTES: usize = 32;

/// Why a key could not be set up or a token not issued.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read.
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
    /// The JWKS file is not a JSON Web Key Set zanzi can use.
    #[error("JWKS file {path}: {reason}")]
    Jwks {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The HS256 secret is shorter than [`MIN_SECRET_BYTES`].
    #[error("the JWT secret is {0} bytes long; HS256 needs at least 32 bytes (e.g. `openssl rand -hex 32`)")]
    ShortSecret(usize),
    /// Signing failed.
    #[error("signing the token: {0}")]
    Sign(String),
}

/// The claims zanzi reads (and writes, for `zanzi token`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Not before, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The user's email, kept on the user record when it is first created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's display name, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The authenticated user of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// The user id (`sub`), a valid object id.
    pub user_id: String,
    /// The email claim, if any.
    pub email: Option<String>,
    /// The name claim, if any.
    pub name: Option<String>,
}

/// Where a token's keys come from and what it must say.
#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    /// HS256 shared secret.
    pub secret: Option<String>,
    /// PEM public key (RSA → RS256, Ed25519 → EdDSA).
    pub public_key: Option<PathBuf>,
    /// A JSON Web Key Set file; its keys are chosen by the token's `kid`.
    pub jwks: Option<PathBuf>,
    /// The `iss` every token must carry.
    pub issuer: Option<String>,
    /// The `aud` every token must carry.
    pub audience: Option<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway_secs: u64,
}

impl JwtSettings {
    /// Whether any key is configured (the facade is served only then).
    pub fn has_key(&self) -> bool {
        self.secret.is_some() || self.public_key.is_some() || self.jwks.is_some()
    }
}

/// One verification key: its `kid` (JWKS keys have one; the secret and the PEM key none).
struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verifies bearer tokens against the configured keys and claims.
pub struct TokenVerifier {
    keys: Vec<Key>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_secs: u64,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<_> = self
            .keys
            .iter()
            .map(|k| (k.kid.clone(), k.algorithm))
            .collect();
        f.debug_struct("TokenVerifier")
            .field("keys", &keys)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
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

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn secret_key(secret: &[u8]) -> Result<DecodingKey, KeyError> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(KeyError::ShortSecret(secret.len()));
    }
    Ok(DecodingKey::from_secret(secret))
}

/// The keys of a JWKS document: each needs a `kid`; its algorithm is its `alg`, or follows
/// from its key type (RSA → RS256, Ed25519 → EdDSA, P-256 → ES256, P-384 → ES384,
/// oct → HS256).
fn jwks_keys(path: &str, text: &[u8]) -> Result<Vec<Key>, KeyError> {
    let bad = |reason: String| KeyError::Jwks {
        path: path.to_string(),
        reason,
    };
    let set: JwkSet = serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
    if set.keys.is_empty() {
        return Err(bad("the set has no keys".to_string()));
    }
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            return Err(bad("every key needs a `kid`".to_string()));
        };
        let algorithm = match jwk.common.key_algorithm {
            Some(named) => Algorithm::from_str(&named.to_string()).map_err(|_| {
                bad(format!(
                    "key `{kid}`: algorithm `{named}` cannot sign tokens"
                ))
            })?,
            None => match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Algorithm::RS256,
                AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                AlgorithmParameters::OctetKey(_) => Algorithm::HS256,
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    EllipticCurve::P256 => Algorithm::ES256,
                    EllipticCurve::P384 => Algorithm::ES384,
                    _ => return Err(bad(format!("key `{kid}`: unsupported curve"))),
                },
            },
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| bad(format!("key `{kid}`: {e}")))?;
        if let AlgorithmParameters::OctetKey(_) = jwk.algorithm {
            secret_key(key.try_get_hmac_secret().unwrap_or_default())?;
        }
        if keys
            .iter()
            .any(|k: &Key| k.kid.as_deref() == Some(kid.as_str()))
        {
            return Err(bad(format!("key id `{kid}` appears twice")));
        }
        keys.push(Key {
            kid: Some(kid),
            algorithm,
            key,
        });
    }
    Ok(keys)
}

impl TokenVerifier {
    /// A verifier for `settings`: refuses a secret shorter than 32 bytes, an unreadable key
    /// file, and a JWKS file without usable keys.
    pub fn new(settings: &JwtSettings) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        if let Some(secret) = &settings.secret {
            keys.push(Key {
                kid: None,
                algorithm: Algorithm::HS256,
                key: secret_key(secret.as_bytes())?,
            });
        }
        if let Some(path) = &settings.public_key {
            let (algorithm, key) = public_key(&path.display().to_string(), &read(path)?)?;
            keys.push(Key {
                kid: None,
                algorithm,
                key,
            });
        }
        if let Some(path) = &settings.jwks {
            keys.extend(jwks_keys(&path.display().to_string(), &read(path)?)?);
        }
        Ok(Self {
            keys,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway_secs: settings.leeway_secs,
        })
    }

    /// A verifier of one PEM public key, with no issuer or audience required (for tests and
    /// embedding).
    pub fn from_public_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let (algorithm, key) = public_key("(inline)", pem)?;
        Ok(Self {
            keys: vec![Key {
                kid: None,
                algorithm,
                key,
            }],
            issuer: None,
            audience: None,
            leeway_secs: 0,
        })
    }

    /// The key a token's header names: by `kid` among the JWKS keys, otherwise the configured
    /// key of its algorithm.
    fn key_for(&self, header: &Header) -> Result<&Key, String> {
        let key = match &header.kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid.as_str()))
                .ok_or_else(|| format!("invalid token: unknown key id `{kid}`"))?,
            None => self
                .keys
                .iter()
                .find(|k| k.kid.is_none() && k.algorithm == header.alg)
                .ok_or_else(|| {
                    format!(
                        "invalid token: algorithm {:?} without a `kid` is not accepted by this server",
                        header.alg
                    )
                })?,
        };
        if key.algorithm != header.alg {
            return Err(format!(
                "invalid token: key `{}` signs {:?}, not {:?}",
                key.kid.as_deref().unwrap_or_default(),
                key.algorithm,
                header.alg
            ));
        }
        Ok(key)
    }

    /// The user a token stands for, or why it is refused (a message for a 401).
    pub fn verify(&self, token: &str) -> Result<UserIdentity, String> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("invalid token: {e}"))?;
        let key = self.key_for(&header)?;
        let mut validation = Validation::new(key.algorithm);
        let mut required = vec!["exp", "sub"];
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| format!("invalid token: {e}"))?;
        let claims = data.claims;
        validate_object_id(&claims.sub).map_err(|_| {
            format!(
                "invalid token: subject `{}` is not a valid user id (1 to 1024 characters of `a-z A-Z 0-9 / _ | - = +`)",
                claims.sub
            )
        })?;
        Ok(UserIdentity {
            user_id: claims.sub,
            email: claims.email,
            name: claims.name,
        })
    }
}

/// How `zanzi token` signs.
#[derive(Debug, Clone)]
pub enum SigningKey {
    /// HS256 with a shared secret (at least 32 bytes).
    Secret(String),
    /// RS256 or EdDSA with a PEM private key (RSA or Ed25519).
    PrivatePem(Vec<u8>),
}

/// Seconds since the epoch now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A token carrying `claims`, signed with `key` (with `kid` in its header when given).
pub fn sign(key: &SigningKey, claims: &Claims, kid: Option<&str>) -> Result<String, KeyError> {
    let (algorithm, encoding) = match key {
        SigningKey::Secret(secret) => {
            if secret.len() < MIN_SECRET_BYTES {
                return Err(KeyError::ShortSecret(secret.len()));
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
    let mut header = Header::new(algorithm);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &encoding).map_err(|e| KeyError::Sign(e.to_string()))
}

/// A token for `user` valid for `ttl`, with optional email and name claims.
pub fn issue_token(
    key: &SigningKey,
    user: &str,
    ttl: Duration,
    email: Option<String>,
    name: Option<String>,
) -> Result<String, KeyError> {
    let now = unix_now();
    let claims = Claims {
        sub: user.to_string(),
        exp: now.saturating_add(ttl.as_secs()),
        iat: Some(now),
        email,
        name,
        ..Claims::default()
    };
    sign(key, &claims, None)
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
    const RSA_PRIVATE: &str = include_str!("testdata/rsa-private.pem");
    const SECRET: &str = "a-secret-of-thirty-two-bytes-0001";

    fn settings(secret: &str) -> JwtSettings {
        JwtSettings {
            secret: Some(secret.to_string()),
            ..JwtSettings::default()
        }
    }

    fn claims(user: &str) -> Claims {
        Claims {
            sub: user.to_string(),
            exp: unix_now() + 60,
            ..Claims::default()
        }
    }

    fn secret(s: &str) -> SigningKey {
        SigningKey::Secret(s.to_string())
    }

    #[test]
    fn hs256_tokens_round_trip_and_wrong_secrets_fail() {
        let verifier = TokenVerifier::new(&settings(SECRET)).unwrap();
        let token = issue_token(
            &secret(SECRET),
            "alice",
            Duration::from_secs(60),
            Some("alice@example.com".into()),
            None,
        )
        .unwrap();
        let caller = verifier.verify(&token).unwrap();
        assert_eq!(caller.user_id, "alice");
        assert_eq!(caller.email.as_deref(), Some("alice@example.com"));

        let other = TokenVerifier::new(&settings("another-secret-of-32-bytes-000002")).unwrap();
        assert!(other.verify(&token).unwrap_err().contains("invalid token"));
        assert!(verifier.verify("not.a.token").is_err());
    }

    #[test]
    fn short_secrets_are_refused_at_start_and_when_signing() {
        assert!(matches!(
            TokenVerifier::new(&settings("short")),
            Err(KeyError::ShortSecret(5))
        ));
        assert!(matches!(
            issue_token(&secret("x"), "a", Duration::from_secs(1), None, None),
            Err(KeyError::ShortSecret(1))
        ));
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway() {
        let verifier = TokenVerifier::new(&JwtSettings {
            leeway_secs: 30,
            ..settings(SECRET)
        })
        .unwrap();
        let now = unix_now();
        let expired = Claims {
            exp: now - 100,
            ..claims("alice")
        };
        let token = sign(&secret(SECRET), &expired, None).unwrap();
        assert!(verifier.verify(&token).unwrap_err().contains("Expired"));
        let just_expired = Claims {
            exp: now - 10,
            ..claims("alice")
        };
        let token = sign(&secret(SECRET), &just_expired, None).unwrap();
        assert!(verifier.verify(&token).is_ok(), "within the leeway");
        let early = Claims {
            nbf: Some(now + 600),
            ..claims("alice")
        };
        let token = sign(&secret(SECRET), &early, None).unwrap();
        assert!(verifier.verify(&token).unwrap_err().contains("Immature"));
        let bad = issue_token(
            &secret(SECRET),
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
    fn issuer_and_audience_are_required_when_configured() {
        let verifier = TokenVerifier::new(&JwtSettings {
            issuer: Some("https://idp.example".into()),
            audience: Some("zanzi".into()),
            ..settings(SECRET)
        })
        .unwrap();
        let good = Claims {
            iss: Some("https://idp.example".into()),
            aud: Some("zanzi".into()),
            ..claims("alice")
        };
        let token = sign(&secret(SECRET), &good, None).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().user_id, "alice");
        for bad in [
            Claims {
                iss: None,
                ..good.clone()
            },
            Claims {
                iss: Some("https://evil.example".into()),
                ..good.clone()
            },
            Claims {
                aud: None,
                ..good.clone()
            },
            Claims {
                aud: Some("other".into()),
                ..good.clone()
            },
        ] {
            let token = sign(&secret(SECRET), &bad, None).unwrap();
            assert!(verifier.verify(&token).is_err(), "{bad:?}");
        }
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
        let hs = TokenVerifier::new(&settings(SECRET)).unwrap();
        assert!(hs.verify(&token).unwrap_err().contains("not accepted"));
    }

    #[test]
    fn rs256_tokens_verify_with_a_public_key_file() {
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
            "/src/facade/core/testdata/rsa-public.pem"
        );
        let verifier = TokenVerifier::new(&JwtSettings {
            public_key: Some(path.into()),
            ..settings(SECRET)
        })
        .unwrap();
        assert_eq!(verifier.verify(&token).unwrap().user_id, "carol");
        assert!(matches!(
            TokenVerifier::new(&JwtSettings {
                public_key: Some("/nonexistent.pem".into()),
                ..JwtSettings::default()
            }),
            Err(KeyError::Io { .. })
        ));
    }

    #[test]
    fn jwks_keys_are_chosen_by_kid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        // Two keys: the test pair's Ed25519 public key and an HS256 secret.
        let pem_body: String = ED_PUBLIC
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, pem_body).unwrap();
        // An Ed25519 SubjectPublicKeyInfo ends with the 32-byte key.
        let x = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &der[der.len() - 32..],
        );
        let k = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            SECRET.as_bytes(),
        );
        let jwks = serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "ed-2026"},
            {"kty": "oct", "k": k, "kid": "hs-1", "alg": "HS256"},
        ]});
        std::fs::write(&path, jwks.to_string()).unwrap();
        let verifier = TokenVerifier::new(&JwtSettings {
            jwks: Some(path.clone()),
            ..JwtSettings::default()
        })
        .unwrap();
        let ed_key = SigningKey::PrivatePem(ED_PRIVATE.as_bytes().to_vec());
        let token = sign(&ed_key, &claims("dan"), Some("ed-2026")).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().user_id, "dan");
        let token = sign(&secret(SECRET), &claims("erin"), Some("hs-1")).unwrap();
        assert_eq!(verifier.verify(&token).unwrap().user_id, "erin");
        // The wrong kid, an unknown kid, or no kid at all are refused.
        let token = sign(&ed_key, &claims("dan"), Some("hs-1")).unwrap();
        assert!(verifier.verify(&token).is_err());
        let token = sign(&ed_key, &claims("dan"), Some("old")).unwrap();
        assert!(verifier
            .verify(&token)
            .unwrap_err()
            .contains("unknown key id"));
        let token = sign(&ed_key, &claims("dan"), None).unwrap();
        assert!(verifier.verify(&token).is_err());
        // Keys without a kid, and short oct keys, are refused at start.
        std::fs::write(&path, r#"{"keys": [{"kty": "oct", "k": "c2hvcnQ"}]}"#).unwrap();
        assert!(TokenVerifier::new(&JwtSettings {
            jwks: Some(path.clone()),
            ..JwtSettings::default()
        })
        .is_err());
        std::fs::write(
            &path,
            r#"{"keys": [{"kty": "oct", "k": "c2hvcnQ", "kid": "a"}]}"#,
        )
        .unwrap();
        assert!(matches!(
            TokenVerifier::new(&JwtSettings {
                jwks: Some(path),
                ..JwtSettings::default()
            }),
            Err(KeyError::ShortSecret(5))
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
