//! Connections to the database: a small pool of `tokio-postgres` clients, a blocking executor,
//! the classification of database errors, and the one retry helper for serialization
//! failures.
//!
//! Each client's connection task (the socket) runs on a two-thread tokio runtime the pool owns.
//! A client's query futures only talk to that task through channels, so the synchronous store
//! awaits them with [`block_on`] on the calling thread, whatever that thread is: tokio's
//! blocking pool, a plain thread, or (as a last resort) an async task, which never panics
//! here. Prepared statements are cached per connection.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Row, Statement};

use crate::store::StoreError;

/// Parameters of one statement.
pub(super) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// How long opening a connection may take before the database counts as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a caller waits for a connection when all are in use (then the database counts as
/// unavailable rather than the caller waiting forever).
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(30);

/// How many times a write transaction runs before a serialization conflict is reported.
const MAX_ATTEMPTS: u32 = 30;

/// Wakes the thread that is blocked in [`block_on`].
struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on the calling thread, parking it while the future waits.
pub(super) fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::park();
    }
}

/// What a failed statement means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// A serialization failure or deadlock (SQLSTATE 40001, 40P01): run the transaction again.
    Conflict,
    /// The database cannot be reached, or is shutting down or starting up.
    Unavailable,
    /// Anything else: a bug, or data the database refuses.
    Other,
}

/// Sorts a driver error into a [`Failure`].
pub(super) fn classify(err: &tokio_postgres::Error) -> Failure {
    if let Some(state) = err.code() {
        let code = state.code();
        return match code {
            "40001" | "40P01" => Failure::Conflict,
            // connection exceptions, admin/crash shutdown, cannot connect now, too many clients
            _ if code.starts_with("08") => Failure::Unavailable,
            "57P01" | "57P02" | "57P03" | "53300" => Failure::Unavailable,
            _ => Failure::Other,
        };
    }
    let io = std::iter::successors(std::error::Error::source(err), |e| e.source())
        .any(|e| e.is::<std::io::Error>());
    if err.is_closed() || io || err.to_string().starts_with("error connecting") {
        Failure::Unavailable
    } else {
        Failure::Other
    }
}

/// One connection and its prepared statements.
pub(super) struct Conn {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
}

impl Conn {
    async fn statement(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        let cached = self
            .statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sql)
            .cloned();
        if let Some(statement) = cached {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Runs `sql` (prepared once per connection) and returns its rows.
    pub(super) fn query(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        block_on(async {
            let statement = self.statement(sql).await?;
            self.client.query(&statement, params).await
        })
    }

    /// Runs `sql` (prepared once per connection) and returns how many rows it changed.
    pub(super) fn execute(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<u64, tokio_postgres::Error> {
        block_on(async {
            let statement = self.statement(sql).await?;
            self.client.execute(&statement, params).await
        })
    }

    /// Runs `sql` without keeping its prepared statement (for statements on a table that
    /// lives for one transaction) and returns its rows.
    pub(super) fn query_once(
        &self,
        sql: &str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        block_on(self.client.query(sql, params))
    }

    /// Starts `COPY ... FROM STDIN (FORMAT binary)` with columns of `types`.
    pub(super) fn copy_in_binary(
        &self,
        sql: &str,
        types: &[Type],
    ) -> Result<BinaryCopy, tokio_postgres::Error> {
        block_on(async {
            let sink = self.client.copy_in(sql).await?;
            Ok(BinaryCopy {
                writer: Box::pin(BinaryCopyInWriter::new(sink, types)),
            })
        })
    }

    /// Runs one or more statements without parameters (the simple query protocol).
    pub(super) fn batch(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        block_on(self.client.batch_execute(sql))
    }

    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// A binary `COPY ... FROM STDIN` in progress; dropped without [`BinaryCopy::finish`], the copy
/// is aborted (and its transaction fails).
pub(super) struct BinaryCopy {
    writer: std::pin::Pin<Box<BinaryCopyInWriter>>,
}

impl BinaryCopy {
    /// Sends one row: one value per column, in the order of the types the copy began with.
    pub(super) fn write(&mut self, values: &Params<'_>) -> Result<(), tokio_postgres::Error> {
        block_on(self.writer.as_mut().write(values))
    }

    /// Ends the copy; returns how many rows it stored.
    pub(super) fn finish(mut self) -> Result<u64, tokio_postgres::Error> {
        block_on(self.writer.as_mut().finish())
    }
}

/// The connections not in use, and how many are open in all.
struct Slots {
    idle: Vec<Arc<Conn>>,
    open: usize,
}

/// A bounded pool of connections to one database.
pub(super) struct Pool {
    config: tokio_postgres::Config,
    /// The database as messages name it (no password).
    name: String,
    runtime: Option<tokio::runtime::Runtime>,
    slots: Mutex<Slots>,
    freed: Condvar,
    max: usize,
    /// Run on every new connection (session settings).
    setup: std::sync::OnceLock<&'static str>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("database", &self.name)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

/// The connection tasks end with the runtime; shutting it down in the background is allowed
/// on any thread, async ones included.
impl Drop for Pool {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Pool {
    /// A pool for the database `url` (`postgres://USER[:PASSWORD]@HOST:PORT/DB?...`) of at most
    /// `max` connections. Connects lazily.
    pub(super) fn new(url: &str, max: usize) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|err| StoreError::Backend(format!("invalid datastore url: {err}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("zanzi");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("zanzi-postgres")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|err| {
                StoreError::Backend(format!("cannot start the database runtime: {err}"))
            })?;
        Ok(Self {
            name: display_name(&config),
            config,
            runtime: Some(runtime),
            slots: Mutex::new(Slots {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
            max: max.max(1),
            setup: std::sync::OnceLock::new(),
        })
    }

    /// Runs `sql` on every connection opened from now on, and closes the idle ones.
    pub(super) fn set_up_sessions(&self, sql: &'static str) {
        let _ = self.setup.set(sql);
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let closed = slots.idle.len();
        slots.idle.clear();
        slots.open -= closed;
    }

    /// The database as messages name it: `postgres://USER@HOST:PORT/DB`.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The error for a failed statement.
    pub(super) fn error(&self, err: &tokio_postgres::Error) -> StoreError {
        match classify(err) {
            Failure::Unavailable => self.unavailable(err),
            Failure::Conflict | Failure::Other => {
                StoreError::Backend(format!("database `{}`: {}", self.name, describe(err)))
            }
        }
    }

    /// The database cannot be reached: `reason` says why.
    pub(super) fn unavailable(&self, reason: &dyn std::fmt::Display) -> StoreError {
        StoreError::Unavailable {
            database: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// A connection: an idle one, a new one while fewer than `max` are open, or the next one
    /// freed (waiting at most [`CHECKOUT_TIMEOUT`]).
    pub(super) fn get(&self) -> Result<Lease<'_>, StoreError> {
        let deadline = std::time::Instant::now() + CHECKOUT_TIMEOUT;
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            while let Some(conn) = slots.idle.pop() {
                if conn.is_closed() {
                    slots.open -= 1;
                    continue;
                }
                return Ok(Lease {
                    pool: self,
                    conn,
                    fresh: false,
                    keep: true,
                });
            }
            if slots.open < self.max {
                slots.open += 1;
                drop(slots);
                return match self.connect() {
                    Ok(conn) => Ok(Lease {
                        pool: self,
                        conn: Arc::new(conn),
                        fresh: true,
                        keep: true,
                    }),
                    Err(err) => {
                        self.release_slot();
                        Err(err)
                    }
                };
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(self.unavailable(&format!(
                    "no connection came free within {} s (all {} in use)",
                    CHECKOUT_TIMEOUT.as_secs(),
                    self.max
                )));
            }
            slots = self
                .freed
                .wait_timeout(slots, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn release_slot(&self) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.open -= 1;
        drop(slots);
        self.freed.notify_one();
    }

    /// Opens a connection, its socket driven by the pool's runtime.
    fn connect(&self) -> Result<Conn, StoreError> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| self.unavailable(&"the store is closing"))?;
        let config = self.config.clone();
        let (sender, receiver) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            match config.connect(NoTls).await {
                Ok((client, connection)) => {
                    if sender.send(Ok(client)).is_ok() {
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "database connection ended");
                        }
                    }
                }
                Err(err) => {
                    let _ = sender.send(Err(err));
                }
            }
        });
        let wait = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT)
            + Duration::from_secs(1);
        match receiver.recv_timeout(wait) {
            Ok(Ok(client)) => {
                let conn = Conn {
                    client,
                    statements: Mutex::new(HashMap::new()),
                };
                if let Some(sql) = self.setup.get() {
                    conn.batch(sql).map_err(|err| self.error(&err))?;
                }
                Ok(conn)
            }
            Ok(Err(err)) => Err(self.unavailable(&describe(&err))),
            Err(_) => Err(self.unavailable(&"timed out connecting")),
        }
    }

    /// Runs `read` on a connection. A pooled connection that turns out to be dead (the
    /// database restarted since it was opened) is replaced once.
    pub(super) fn read<T>(
        &self,
        mut read: impl FnMut(&Conn) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        loop {
            let lease = self.get()?;
            match read(&lease) {
                Ok(value) => return Ok(value),
                Err(err) if classify(&err) == Failure::Unavailable && !lease.fresh => {
                    drop(lease);
                    continue;
                }
                Err(err) => return Err(self.error(&err)),
            }
        }
    }

    /// Runs `attempt` until it succeeds, fails for another reason than a serialization
    /// conflict, or has conflicted [`MAX_ATTEMPTS`] times; waits a little longer after each
    /// conflict.
    pub(super) fn retrying<T>(
        &self,
        mut attempt: impl FnMut(&Self) -> Result<T, Attempt>,
    ) -> Result<T, StoreError> {
        let mut backoff = Duration::from_micros(200);
        for _ in 1..MAX_ATTEMPTS {
            match attempt(self) {
                Ok(value) => return Ok(value),
                Err(Attempt::Failed(err)) => return Err(err),
                Err(Attempt::Conflict) => {
                    std::thread::sleep(backoff.mul_f64(0.5 + jitter()));
                    backoff = (backoff * 2).min(Duration::from_millis(50));
                }
            }
        }
        match attempt(self) {
            Ok(value) => Ok(value),
            Err(Attempt::Failed(err)) => Err(err),
            Err(Attempt::Conflict) => Err(StoreError::Backend(format!(
                "database `{}`: the write conflicted with concurrent writes {MAX_ATTEMPTS} times",
                self.name
            ))),
        }
    }
}

/// How one run of a retried transaction ended, when it did not succeed.
#[derive(Debug)]
pub(super) enum Attempt {
    /// A serialization failure or deadlock: run it again.
    Conflict,
    /// Any other failure: report it.
    Failed(StoreError),
}

/// A number in `[0, 1)` that differs between calls and threads, to spread retries.
fn jitter() -> f64 {
    let mut bytes = [0u8; 2];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.5;
    }
    f64::from(u16::from_le_bytes(bytes)) / 65_536.0
}

/// A borrowed connection; back to the pool when dropped (closed or discarded ones are not).
pub(super) struct Lease<'p> {
    pool: &'p Pool,
    conn: Arc<Conn>,
    /// Opened for this lease (so a failure is not a stale pooled connection).
    fresh: bool,
    /// Whether the connection goes back to the pool.
    keep: bool,
}

impl std::ops::Deref for Lease<'_> {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if !self.keep || self.conn.is_closed() {
            self.pool.release_slot();
            return;
        }
        let mut slots = self
            .pool
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slots.idle.push(Arc::clone(&self.conn));
        drop(slots);
        self.pool.freed.notify_one();
    }
}

impl Lease<'_> {
    /// Closes this connection instead of returning it (its session state is unknown).
    pub(super) fn discard(mut self) {
        self.keep = false;
    }
}

/// A flag a transaction raises when one of its statements hit a serialization conflict, so
/// the conflict is noticed even when the body's own error wraps (or hides) it.
#[derive(Debug, Default)]
pub(super) struct ConflictFlag(AtomicBool);

impl ConflictFlag {
    pub(super) fn note(&self, err: &tokio_postgres::Error) {
        if classify(err) == Failure::Conflict {
            self.0.store(true, Ordering::Relaxed);
        }
    }

    pub(super) fn raised(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The driver's message with the database's detail, if any.
pub(super) fn describe(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({}): {detail}", db.message(), db.code().code()),
            None => format!("{} ({})", db.message(), db.code().code()),
        },
        None => match std::error::Error::source(err) {
            Some(source) => format!("{err}: {source}"),
            None => err.to_string(),
        },
    }
}

/// `postgres://USER@HOST:PORT/DB` from a parsed configuration (never the password).
fn display_name(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let database = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { "" } else { "@" };
    format!("postgres://{user}{at}{host}:{port}/{database}")
}
