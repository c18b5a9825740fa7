//! Revisions (the number each committed write gets), the consistency a read asks for, and
//! ZedTokens: the opaque text form of a revision handed to clients.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// A store's identity: random bytes fixed when the store is created (its data folder, or its
/// database), so a revision from one store is never mistaken for a revision of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreId(pub [u8; 16]);

/// A store revision. Revision 0 is the empty store; every committed write adds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Revision(pub u64);

impl Revision {
    /// The revision before any write.
    pub const ZERO: Revision = Revision(0);

    /// The revision after this one.
    pub fn next(self) -> Revision {
        Revision(self.0.saturating_add(1))
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which revision a read may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Any recent revision will do; zanzi reads the head (there are no replicas to lag).
    MinimizeLatency,
    /// The head, or any revision at least this new.
    AtLeastAsFresh(Revision),
    /// Exactly this revision (it must still be retained).
    AtExactSnapshot(Revision),
    /// The newest committed revision.
    #[default]
    FullyConsistent,
}

/// Why a ZedToken was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZedTokenError {
    /// Not a token this build wrote.
    #[error("malformed ZedToken `{0}`")]
    Malformed(String),
    /// A token from a different data folder.
    #[error("ZedToken `{0}` was issued by a different zanzi data store")]
    OtherStore(String),
}

const TOKEN_VERSION: u8 = 1;
const TOKEN_LEN: usize = 1 + 16 + 8;

/// An opaque consistency token: a revision bound to the store that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZedToken {
    /// The issuing store.
    pub store: StoreId,
    /// The revision it stands for.
    pub revision: Revision,
}

impl ZedToken {
    /// The token for `revision` of `store`.
    pub fn new(store: StoreId, revision: Revision) -> Self {
        Self { store, revision }
    }

    /// The text handed to clients (URL-safe base64 of a version byte, the store id and the
    /// big-endian revision).
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_LEN);
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(&self.store.0);
        bytes.extend_from_slice(&self.revision.0.to_be_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes `text`, refusing tokens of any store but `expected`.
    pub fn decode(text: &str, expected: StoreId) -> Result<Self, ZedTokenError> {
        let malformed = || ZedTokenError::Malformed(text.to_string());
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| malformed())?;
        if bytes.len() != TOKEN_LEN || bytes[0] != TOKEN_VERSION {
            return Err(malformed());
        }
        let store: [u8; 16] = bytes[1..17].try_into().map_err(|_| malformed())?;
        let revision: [u8; 8] = bytes[17..].try_into().map_err(|_| malformed())?;
        if StoreId(store) != expected {
            return Err(ZedTokenError::OtherStore(text.to_string()));
        }
        Ok(Self {
            store: StoreId(store),
            revision: Revision(u64::from_be_bytes(revision)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_is_bound_to_its_store() {
        let store = StoreId([7; 16]);
        let token = ZedToken::new(store, Revision(42)).encode();
        assert_eq!(
            ZedToken::decode(&token, store).unwrap().revision,
            Revision(42)
        );
        assert_eq!(
            ZedToken::decode(&token, StoreId([8; 16])),
            Err(ZedTokenError::OtherStore(token.clone()))
        );
    }

    #[test]
    fn garbage_tokens_are_malformed() {
        let store = StoreId([7; 16]);
        for text in ["", "abc", "!!!!", &URL_SAFE_NO_PAD.encode([2u8; 25])] {
            assert!(matches!(
                ZedToken::decode(text, store),
                Err(ZedTokenError::Malformed(_))
            ));
        }
    }
}
