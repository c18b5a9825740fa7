//! The preshared key every `/v1/` call presents as `Authorization: Bearer <key>`: taken from
//! configuration, or generated once and kept in the data folder.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The file in the data folder that holds a generated key.
pub const KEY_FILE: &str = "preshared-key";

/// Why no key could be set up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("preshared key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The key file exists but is empty.
    #[error("preshared key file {0} is empty")]
    Empty(PathBuf),
    /// No randomness for a new key.
    #[error("cannot generate a preshared key: {0}")]
    Random(String),
}

/// Where the key in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Given by flag, environment or config file.
    Configured,
    /// Read from the data folder.
    Stored(PathBuf),
    /// Generated now and stored in the data folder.
    Generated(PathBuf),
}

/// The key to require: `configured` if given, else the one stored in `data_dir`, else a new
/// random key written there (readable by the owner only).
pub fn resolve_key(
    configured: Option<&str>,
    data_dir: &Path,
) -> Result<(String, KeySource), KeyError> {
    if let Some(key) = configured.filter(|k| !k.is_empty()) {
        return Ok((key.to_string(), KeySource::Configured));
    }
    let path = data_dir.join(KEY_FILE);
    let io = |source| KeyError::Io {
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = text.trim().to_string();
            if key.is_empty() {
                return Err(KeyError::Empty(path));
            }
            Ok((key, KeySource::Stored(path)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 24];
            getrandom::fill(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
            let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            std::fs::create_dir_all(data_dir).map_err(io)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&path).map_err(io)?;
            file.write_all(key.as_bytes()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok((key, KeySource::Generated(path)))
        }
        Err(err) => Err(io(err)),
    }
}

/// Whether the `Authorization` header value presents `key` (compared in constant time).
pub fn authorized(header: Option<&str>, key: &str) -> bool {
    let Some(presented) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let (a, b) = (presented.trim().as_bytes(), key.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_is_stored_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (key, source) = resolve_key(None, dir.path()).unwrap();
        assert!(matches!(source, KeySource::Generated(_)));
        assert_eq!(key.len(), 48);
        let (again, source) = resolve_key(None, dir.path()).unwrap();
        assert_eq!(again, key);
        assert!(matches!(source, KeySource::Stored(_)));
        let (configured, source) = resolve_key(Some("given"), dir.path()).unwrap();
        assert_eq!(
            (configured.as_str(), source),
            ("given", KeySource::Configured)
        );
    }

    #[test]
    fn only_the_exact_bearer_key_is_authorized() {
        assert!(authorized(Some("Bearer s3cret"), "s3cret"));
        assert!(!authorized(Some("Bearer s3cret2"), "s3cret"));
        assert!(!authorized(Some("s3cret"), "s3cret"));
        assert!(!authorized(None, "s3cret"));
    }
}
