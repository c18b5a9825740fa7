//! [`Datastore`]: where a zanzi process keeps its relationships, as the CLI and the server name
//! it (`--data-dir` for the embedded store, `--datastore postgres://...` for a shared
//! database), and opening it as a [`TupleStore`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{PgOptions, PgStore, RocksStore, StoreError, StoreOptions, TupleStore};
use crate::clock::{Clock, SystemClock};

/// Where relationships live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datastore {
    /// The embedded RocksDB store in this folder (the default).
    Embedded(PathBuf),
    /// A PostgreSQL or CockroachDB database, by its `postgres://` URL.
    Postgres(String),
}

/// A `--datastore` value that names no supported database.
#[derive(Debug, thiserror::Error)]
#[error("unsupported datastore `{0}`: give a `postgres://USER@HOST:PORT/DB` URL (PostgreSQL or CockroachDB), or leave it out for the embedded store in --data-dir")]
pub struct DatastoreError(String);

impl Datastore {
    /// The datastore of a `--datastore` URL.
    pub fn from_url(url: &str) -> Result<Self, DatastoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_string()))
        } else {
            // Only the scheme: the URL may hold a password.
            let scheme = url.split("://").next().unwrap_or(url);
            Err(DatastoreError(format!("{scheme}://…")))
        }
    }

    /// How messages name it (a database URL without its password).
    pub fn describe(&self) -> String {
        match self {
            Self::Embedded(path) => path.display().to_string(),
            Self::Postgres(url) => redact(url),
        }
    }
}

/// `url` with any password replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// How to open a datastore.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// The time source for expiration.
    pub clock: Arc<dyn Clock>,
    /// Sync every embedded write to the WAL before acknowledging it (the database's own
    /// durability settings apply to PostgreSQL).
    pub sync_writes: bool,
    /// Recent revisions readable at exactly their state (embedded store).
    pub snapshot_window: usize,
    /// The history retention window: how long a revision stays readable at exactly its state
    /// and its changes stay in the log (the pruner forgets older history on either backend).
    pub history_retention: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        let rocks = StoreOptions::default();
        Self {
            clock: Arc::new(SystemClock),
            sync_writes: rocks.sync_writes,
            snapshot_window: rocks.snapshot_window,
            history_retention: rocks.history_retention,
        }
    }
}

/// An opened datastore.
#[derive(Debug, Clone)]
pub enum Opened {
    /// The embedded store.
    Embedded(Arc<RocksStore>),
    /// A database.
    Postgres(Arc<PgStore>),
}

impl Opened {
    /// Opens `datastore` (an embedded store's folder is created if needed; a database's
    /// tables are created or migrated).
    pub fn open(datastore: &Datastore, options: &OpenOptions) -> Result<Self, StoreError> {
        match datastore {
            Datastore::Embedded(path) => Ok(Self::Embedded(Arc::new(RocksStore::open(
                path,
                StoreOptions {
                    sync_writes: options.sync_writes,
                    clock: Arc::clone(&options.clock),
                    snapshot_window: options.snapshot_window,
                    history_retention: options.history_retention,
                },
            )?))),
            Datastore::Postgres(url) => Ok(Self::Postgres(Arc::new(PgStore::open(
                url,
                PgOptions {
                    clock: Arc::clone(&options.clock),
                    ..PgOptions::default()
                },
            )?))),
        }
    }

    /// The store behind the seam.
    pub fn store(&self) -> Arc<dyn TupleStore> {
        match self {
            Self::Embedded(store) => Arc::clone(store) as Arc<dyn TupleStore>,
            Self::Postgres(store) => Arc::clone(store) as Arc<dyn TupleStore>,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_postgres_urls_name_a_database_and_passwords_never_show() {
        assert!(matches!(
            Datastore::from_url("postgres://u@h:5432/db").unwrap(),
            Datastore::Postgres(_)
        ));
        let err = Datastore::from_url("mysql://root:secret@h/db").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let db = Datastore::from_url("postgresql://zanzi:hunter2@db:5432/authz").unwrap();
        assert_eq!(db.describe(), "postgresql://zanzi:***@db:5432/authz");
    }
}
