//! SpiceDB's experimental relationship counters: a named relationship filter registered once
//! (kept as a facade record, so it survives restarts and commits like any write), then counted
//! on request at the newest revision, and unregistered.

use std::sync::Arc;

use super::error::{ApiError, Code};
use super::service::Service;
use super::wire::WireFilter;
use crate::revision::{Consistency, Revision};
use crate::transaction::{RecordPrecondition, RecordWrite, Transaction};

/// The records keyspace holding the registered filters (name → filter JSON).
const KEYSPACE: &str = "relationship_counter";

fn check_name(name: &str) -> Result<(), ApiError> {
    let valid = name.len() <= 64
        && (name.is_empty()
            || (name.len() >= 3
                && name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !name.ends_with('_')));
    if valid && !name.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("invalid counter name `{name}`")))
    }
}

fn not_registered(name: &str) -> ApiError {
    ApiError::new(
        Code::NotFound,
        format!("counter `{name}` is not registered"),
    )
    .with_reason(
        "ERROR_REASON_COUNTER_NOT_REGISTERED",
        [("counter_name", name.to_string())],
    )
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ApiError::internal(&err))?
}

/// Registers `filter` under `name`; a name already registered is refused.
pub async fn register(
    service: &Arc<Service>,
    name: String,
    filter: WireFilter,
) -> Result<(), ApiError> {
    check_name(&name)?;
    filter.to_domain(true)?;
    let value = serde_json::to_vec(&filter).map_err(|e| ApiError::internal(&e))?;
    let engine = Arc::clone(service.engine());
    let revision = blocking(move || {
        let transaction = Transaction {
            records: vec![RecordWrite {
                keyspace: KEYSPACE.into(),
                key: name.clone(),
                value: Some(value),
            }],
            record_preconditions: vec![RecordPrecondition {
                keyspace: KEYSPACE.into(),
                key: name.clone(),
                must_exist: false,
            }],
            ..Transaction::default()
        };
        engine
            .transact(&transaction)
            .map_err(|err| match ApiError::from(err) {
                conflict if conflict.code == Code::AlreadyExists => ApiError::new(
                    Code::AlreadyExists,
                    format!("counter `{name}` is already registered"),
                )
                .with_reason(
                    "ERROR_REASON_COUNTER_ALREADY_REGISTERED",
                    [("counter_name", name.clone())],
                ),
                other => other,
            })
    })
    .await?;
    service.publish(revision);
    Ok(())
}

/// How many relationships the counter `name`'s filter matches at the newest revision.
pub async fn count(service: &Arc<Service>, name: String) -> Result<(u64, Revision), ApiError> {
    check_name(&name)?;
    let engine = Arc::clone(service.engine());
    blocking(move || {
        let view = engine.at(Consistency::FullyConsistent)?;
        let stored = view
            .record(KEYSPACE, &name)?
            .ok_or_else(|| not_registered(&name))?;
        let filter: WireFilter = serde_json::from_slice(&stored)
            .map_err(|e| ApiError::internal(&format!("stored counter `{name}`: {e}")))?;
        let counted = view
            .read_relationships(&filter.to_domain(true)?, None, None)?
            .len();
        Ok((counted as u64, view.revision()))
    })
    .await
}

/// Forgets the counter `name`.
pub async fn unregister(service: &Arc<Service>, name: String) -> Result<(), ApiError> {
    check_name(&name)?;
    let engine = Arc::clone(service.engine());
    let revision = blocking(move || {
        let transaction = Transaction {
            records: vec![RecordWrite {
                keyspace: KEYSPACE.into(),
                key: name.clone(),
                value: None,
            }],
            record_preconditions: vec![RecordPrecondition {
                keyspace: KEYSPACE.into(),
                key: name.clone(),
                must_exist: true,
            }],
            ..Transaction::default()
        };
        engine
            .transact(&transaction)
            .map_err(|err| match ApiError::from(err) {
                missing if missing.code == Code::NotFound => not_registered(&name),
                other => other,
            })
    })
    .await?;
    service.publish(revision);
    Ok(())
}
