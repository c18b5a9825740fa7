//! The `zanzi` binary: command-line parsing and wiring of the library's parts.

#![forbid(unsafe_code)]

mod cli;

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use zanzi::api::auth::{self, KeySource};
use zanzi::api::grpc::TlsFiles;
use zanzi::api::service::Limits;
use zanzi::client::Client;
use zanzi::engine::{Context, Engine, EngineConfig, Permissionship};
use zanzi::explain;
use zanzi::facade::auth::{parse_ttl, sign, unix_now, Claims, JwtSettings, SigningKey};
use zanzi::facade::FacadeConfig;
use zanzi::filter::RelationshipFilter;
use zanzi::server::{self, ServeConfig};
use zanzi::store::{Datastore, OpenOptions, Opened, PgStore};
use zanzi::transaction::{Update, UpdateOp};
use zanzi::tuple::{parse_expiration, ObjectRef, Relationship, SubjectRef};
use zanzi::validate::{self, ValidateOptions};

/// The history retention window when none is configured.
const DEFAULT_HISTORY_RETENTION: Duration = Duration::from_secs(3600);

/// zanzi: a Zanzibar-style authorization engine that speaks SpiceDB's schema language.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a command acts: a running server (`--endpoint`) or a local data folder.
#[derive(Debug, Args)]
struct Target {
    /// Data folder of the embedded store (when no --endpoint or --datastore is given).
    #[arg(long, env = "ZANZI_DATA_DIR", default_value = "./zanzi-data")]
    data_dir: PathBuf,
    /// A shared database instead of the embedded store: `postgres://USER@HOST:PORT/DB`
    /// (PostgreSQL or CockroachDB).
    #[arg(
        long,
        env = "ZANZI_DATASTORE",
        hide_env_values = true,
        conflicts_with = "endpoint"
    )]
    datastore: Option<String>,
    /// A running server: `host:port` (HTTP) or a URL, e.g. `127.0.0.1:8443`.
    #[arg(long, env = "ZANZI_ENDPOINT")]
    endpoint: Option<String>,
    /// The server's preshared key (default: the key stored in --data-dir).
    #[arg(long, env = "ZANZI_KEY", hide_env_values = true)]
    key: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API on the embedded store.
    Serve(Box<ServeArgs>),
    /// Run SpiceDB validation files: assertions, expected relations and self-consistency.
    Validate {
        /// Validation files (YAML). Each is validated on its own fresh store.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Load all files into one store and validate them together.
        #[arg(long)]
        together: bool,
        /// Pin the current time (RFC 3339) for relationship expiration.
        #[arg(long)]
        now: Option<String>,
        /// Skip the check / lookup agreement pass.
        #[arg(long)]
        skip_consistency: bool,
        /// Answer by the plain walk, without the check cache and the group and arrow indexes
        /// (for comparing answers).
        #[arg(long, hide = true)]
        plain: bool,
        /// Validate on this database (`postgres://USER@HOST:PORT/DB`) instead of a temporary
        /// embedded store: each file (or group, with --together) on an empty database.
        #[arg(long, env = "ZANZI_DATASTORE", hide_env_values = true)]
        datastore: Option<String>,
        /// With --datastore: empty a database that holds data first (everything in it is lost).
        #[arg(long, requires = "datastore")]
        clear: bool,
    },
    /// Manage a shared database.
    Datastore {
        #[command(subcommand)]
        action: DatastoreAction,
    },
    /// Check a permission: `doc:1#view@user:tom`. Exits 0 (has), 1 (no) or 2 (conditional).
    Check {
        #[command(flatten)]
        target: Target,
        /// `resource#permission@subject`.
        check: String,
        /// Caveat context as a JSON object.
        #[arg(long)]
        context: Option<String>,
        /// Print the trace of the check as a tree (as `zed permission check --explain`):
        /// one line per step, `✓` on the steps that granted access; colours on a terminal.
        #[arg(long)]
        explain: bool,
    },
    /// Resources of a type on which a subject has a permission.
    LookupResources {
        #[command(flatten)]
        target: Target,
        /// Resource type, e.g. `doc`.
        resource_type: String,
        /// Permission, e.g. `view`.
        permission: String,
        /// Subject, e.g. `user:tom`.
        subject: String,
        /// Caveat context as a JSON object.
        #[arg(long)]
        context: Option<String>,
    },
    /// Subjects of a type that have a permission on a resource.
    LookupSubjects {
        #[command(flatten)]
        target: Target,
        /// Resource, e.g. `doc:1`.
        resource: String,
        /// Permission, e.g. `view`.
        permission: String,
        /// Subject type, e.g. `user`.
        subject_type: String,
        /// Caveat context as a JSON object.
        #[arg(long)]
        context: Option<String>,
    },
    /// The tree of subject sets that make up a permission: `doc:1#view`.
    Expand {
        #[command(flatten)]
        target: Target,
        /// `resource#permission`.
        permission: String,
    },
    /// Stream relationship changes as they are committed (Ctrl-C ends).
    Watch {
        #[command(flatten)]
        target: Target,
        /// Start after this ZedToken (default: after the newest revision).
        #[arg(long)]
        since: Option<String>,
        /// Only changes to resources of these types (repeatable).
        #[arg(long = "type")]
        types: Vec<String>,
    },
    /// Read or write the schema.
    Schema {
        #[command(subcommand)]
        action: SchemaAction,
    },
    /// Read, write or delete relationships.
    Relationship {
        #[command(subcommand)]
        action: RelationshipAction,
    },
    /// Store the relationships in FILE (one per line, or a validation file's
    /// `relationships`) as one atomic revision: all of them or, on any error, none.
    Import {
        #[command(flatten)]
        target: Target,
        /// The file (`-` for standard input).
        file: PathBuf,
        /// Overwrite relationships that exist (TOUCH) instead of failing (CREATE), so an
        /// export can go back into a non-empty store.
        #[arg(long)]
        touch: bool,
        /// Commit every N relationships on their own instead of the whole file at once; an
        /// error then says how many are stored.
        #[arg(long, value_name = "N")]
        batch: Option<usize>,
    },
    /// Print every relationship, one per line.
    Export {
        #[command(flatten)]
        target: Target,
    },
    /// Print a bearer token for the `/v1beta1` facade.
    Token {
        /// The user id (the token's `sub`).
        #[arg(long)]
        user: String,
        /// HS256 secret (the server's --jwt-secret).
        #[arg(long, env = "ZANZI_JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
        /// PEM private key (RSA → RS256, Ed25519 → EdDSA) instead of a secret.
        #[arg(long, conflicts_with = "jwt_secret")]
        jwt_private_key: Option<PathBuf>,
        /// How long the token is valid: seconds, or with a unit (`15m`, `12h`, `7d`).
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// An `email` claim.
        #[arg(long)]
        email: Option<String>,
        /// A `name` claim.
        #[arg(long)]
        name: Option<String>,
        /// An `iss` claim (the server's --jwt-issuer).
        #[arg(long)]
        issuer: Option<String>,
        /// An `aud` claim (the server's --jwt-audience).
        #[arg(long)]
        audience: Option<String>,
        /// A `kid` header (the id of the key in the server's --jwt-jwks).
        #[arg(long)]
        kid: Option<String>,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Optional TOML config file; flags and environment variables override it.
    #[arg(long, env = "ZANZI_CONFIG")]
    config: Option<PathBuf>,
    /// Data folder of the embedded store [default: ./zanzi-data]; with --datastore it only
    /// holds a generated preshared key.
    #[arg(long, env = "ZANZI_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Keep relationships in a shared database instead of the embedded store:
    /// `postgres://USER[:PASSWORD]@HOST:PORT/DB` (PostgreSQL or CockroachDB). Several nodes may
    /// serve one database.
    #[arg(long, env = "ZANZI_DATASTORE", hide_env_values = true)]
    datastore: Option<String>,
    /// HTTP listen address [default: 127.0.0.1:8443].
    #[arg(long, env = "ZANZI_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// gRPC listen address (SpiceDB's authzed.api.v1) [default: 127.0.0.1:50051].
    #[arg(long, env = "ZANZI_GRPC_ADDR")]
    grpc_addr: Option<SocketAddr>,
    /// PEM certificate chain: serve HTTP over TLS (with --http-tls-key).
    #[arg(long, env = "ZANZI_HTTP_TLS_CERT", requires = "http_tls_key")]
    http_tls_cert: Option<PathBuf>,
    /// PEM private key for --http-tls-cert.
    #[arg(long, env = "ZANZI_HTTP_TLS_KEY", requires = "http_tls_cert")]
    http_tls_key: Option<PathBuf>,
    /// PEM certificate chain: serve gRPC over TLS (with --grpc-tls-key).
    #[arg(long, env = "ZANZI_GRPC_TLS_CERT", requires = "grpc_tls_key")]
    grpc_tls_cert: Option<PathBuf>,
    /// PEM private key for --grpc-tls-cert.
    #[arg(long, env = "ZANZI_GRPC_TLS_KEY", requires = "grpc_tls_cert")]
    grpc_tls_key: Option<PathBuf>,
    /// Key every /v1/ call must present as `Authorization: Bearer KEY` [default: generated and
    /// stored in the data folder].
    #[arg(long, env = "ZANZI_PRESHARED_KEY", hide_env_values = true)]
    preshared_key: Option<String>,
    /// Largest request body in bytes [default: 4194304].
    #[arg(long, env = "ZANZI_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Most updates in one relationship write [default: 1000].
    #[arg(long, env = "ZANZI_MAX_UPDATES_PER_WRITE")]
    max_updates_per_write: Option<usize>,
    /// Most items in one bulk check [default: 10000].
    #[arg(long, env = "ZANZI_MAX_BULK_CHECKS")]
    max_bulk_checks: Option<usize>,
    /// How long a check, expand or lookup may run before it is stopped with
    /// DEADLINE_EXCEEDED (HTTP 504), e.g. `30s`, `500ms`, `2m`; a gRPC client's shorter
    /// deadline wins [default: 30s].
    #[arg(long, env = "ZANZI_REQUEST_TIMEOUT", value_parser = parse_duration)]
    request_timeout: Option<Duration>,
    /// Engine calls running at once; one more is refused at once with 429 /
    /// RESOURCE_EXHAUSTED [default: 64 per core, between 64 and 448].
    #[arg(long, env = "ZANZI_MAX_CONCURRENT_REQUESTS", value_parser = clap::value_parser!(u32).range(1..))]
    max_concurrent_requests: Option<u32>,
    /// HTTP connections served at once; the next one waits in the kernel's accept queue until
    /// one closes, so a flood of new connections cannot crowd out clients on the connections
    /// they keep alive [default: 512].
    #[arg(long, env = "ZANZI_MAX_HTTP_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    max_http_connections: Option<u32>,
    /// Of those, HTTP connections that have not yet made a request with a valid credential;
    /// such a connection is also closed 10 s after it opened, so a flood of junk keys or idle
    /// sockets holds at most this many [default: 16].
    #[arg(long, env = "ZANZI_MAX_UNAUTHENTICATED_CONNECTIONS", value_parser = clap::value_parser!(u32).range(1..))]
    max_unauthenticated_connections: Option<u32>,
    /// Most relationships in one import [default: 10000000].
    #[arg(long, env = "ZANZI_MAX_IMPORT_RELATIONSHIPS")]
    max_import_relationships: Option<usize>,
    /// Recent revisions readable with atExactSnapshot [default: 1024].
    #[arg(long, env = "ZANZI_SNAPSHOT_WINDOW")]
    snapshot_window: Option<usize>,
    /// History retention window: how long a revision stays readable with atExactSnapshot, by
    /// watch resumption and by cursors; older change log and snapshots are pruned. Seconds, or
    /// with a unit (`90s`, `30m`, `1h`, `7d`) [default: 1h].
    #[arg(long, env = "ZANZI_HISTORY_RETENTION", value_parser = parse_ttl)]
    history_retention: Option<Duration>,
    /// Deprecated: --history-retention in seconds.
    #[arg(
        long,
        env = "ZANZI_SNAPSHOT_MAX_AGE_SECS",
        hide = true,
        conflicts_with = "history_retention"
    )]
    snapshot_max_age_secs: Option<u64>,
    /// Milliseconds between checkpoints on an idle watch stream [default: 1000].
    #[arg(long, env = "ZANZI_WATCH_CHECKPOINT_MS")]
    watch_checkpoint_ms: Option<u64>,
    /// HS256 secret (at least 32 bytes) of the facades' bearer tokens; setting it (or
    /// --jwt-public-key, or --jwt-jwks) turns the facades on.
    #[arg(long, env = "ZANZI_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// PEM public key (RSA for RS256, Ed25519 for EdDSA) of the facades' bearer tokens.
    #[arg(long, env = "ZANZI_JWT_PUBLIC_KEY")]
    jwt_public_key: Option<PathBuf>,
    /// JSON Web Key Set file: tokens with a `kid` are verified with the key of that id.
    #[arg(long, env = "ZANZI_JWT_JWKS")]
    jwt_jwks: Option<PathBuf>,
    /// The `iss` every bearer token must carry.
    #[arg(long, env = "ZANZI_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// The `aud` every bearer token must carry.
    #[arg(long, env = "ZANZI_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Seconds of clock skew allowed on a token's `exp` and `nbf` [default: 30].
    #[arg(long, env = "ZANZI_JWT_LEEWAY_SECS")]
    jwt_leeway_secs: Option<u64>,
    /// Organizations one user may have created (0: no limit) [default: 100].
    #[arg(long, env = "ZANZI_MAX_ORGS_PER_USER")]
    max_orgs_per_user: Option<usize>,
    /// A user id that gets `app/platform:platform#admin` in the facade (repeatable;
    /// comma-separated in ZANZI_SUPERUSERS).
    #[arg(long = "superuser", env = "ZANZI_SUPERUSERS", value_delimiter = ',')]
    superusers: Vec<String>,
}

/// The config file: the same settings as the flags, in snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    data_dir: Option<PathBuf>,
    datastore: Option<String>,
    http_addr: Option<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
    http_tls_cert: Option<PathBuf>,
    http_tls_key: Option<PathBuf>,
    grpc_tls_cert: Option<PathBuf>,
    grpc_tls_key: Option<PathBuf>,
    preshared_key: Option<String>,
    max_body_bytes: Option<usize>,
    max_updates_per_write: Option<usize>,
    max_bulk_checks: Option<usize>,
    /// A duration as `--request-timeout` takes it (`"30s"`, `"500ms"`).
    request_timeout: Option<String>,
    max_concurrent_requests: Option<u32>,
    max_http_connections: Option<u32>,
    max_unauthenticated_connections: Option<u32>,
    max_import_relationships: Option<usize>,
    snapshot_window: Option<usize>,
    history_retention: Option<String>,
    /// Deprecated: `history_retention` in seconds.
    snapshot_max_age_secs: Option<u64>,
    watch_checkpoint_ms: Option<u64>,
    jwt_secret: Option<String>,
    jwt_public_key: Option<PathBuf>,
    jwt_jwks: Option<PathBuf>,
    jwt_issuer: Option<String>,
    jwt_audience: Option<String>,
    jwt_leeway_secs: Option<u64>,
    max_orgs_per_user: Option<usize>,
    superusers: Option<Vec<String>>,
}

#[derive(Debug, Subcommand)]
enum DatastoreAction {
    /// Create or upgrade zanzi's tables (what `zanzi serve --datastore` does on start), then
    /// exit.
    Migrate {
        /// The database: `postgres://USER@HOST:PORT/DB`.
        #[arg(long, env = "ZANZI_DATASTORE", hide_env_values = true)]
        datastore: String,
    },
}

#[derive(Debug, Subcommand)]
enum SchemaAction {
    /// Print the stored schema.
    Read {
        #[command(flatten)]
        target: Target,
    },
    /// Compile and store the schema in FILE.
    Write {
        #[command(flatten)]
        target: Target,
        /// Schema file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum RelationshipAction {
    /// Touch (create or overwrite) relationships given as text.
    Write {
        #[command(flatten)]
        target: Target,
        /// Relationships, e.g. `doc:1#viewer@user:tom`.
        #[arg(required = true)]
        relationships: Vec<String>,
    },
    /// Delete relationships given as text.
    Delete {
        #[command(flatten)]
        target: Target,
        /// Relationships, e.g. `doc:1#viewer@user:tom`.
        #[arg(required = true)]
        relationships: Vec<String>,
    },
    /// Print relationships of a resource type (optionally one id and relation).
    Read {
        #[command(flatten)]
        target: Target,
        /// Resource type.
        resource_type: String,
        /// Resource id.
        #[arg(long)]
        id: Option<String>,
        /// Relation.
        #[arg(long)]
        relation: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => cli::output::report(&err),
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => run_serve(*args),
        Command::Validate {
            files,
            together,
            now,
            skip_consistency,
            plain,
            datastore,
            clear,
        } => {
            let now = now
                .map(|n| parse_expiration(&n))
                .transpose()
                .context("--now")?;
            let options = ValidateOptions {
                now,
                skip_consistency,
                engine: if plain {
                    EngineConfig::plain()
                } else {
                    EngineConfig::default()
                },
                datastore: datastore.map(|url| Datastore::from_url(&url)).transpose()?,
                clear,
            };
            run_validate(&files, together, options)
        }
        Command::Datastore {
            action: DatastoreAction::Migrate { datastore },
        } => {
            let Datastore::Postgres(url) = Datastore::from_url(&datastore)? else {
                anyhow::bail!("--datastore must be a postgres:// URL");
            };
            let migrated = PgStore::migrate(&url)?;
            if migrated.from == migrated.to {
                println!("tables are at layout version {} already", migrated.to);
            } else {
                println!(
                    "migrated tables from layout version {} to {}",
                    migrated.from, migrated.to
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            target,
            check,
            context,
            explain,
        } => {
            let rel = Relationship::parse(&check)?;
            let context: Context = match context {
                Some(json) => {
                    serde_json::from_str(&json).context("--context must be a JSON object")?
                }
                None => Context::new(),
            };
            let (permissionship, trace) = match Backend::open(&target)? {
                Backend::Local(engine) if explain => {
                    let traced = engine.check_traced(
                        &rel.resource,
                        &rel.relation,
                        &rel.subject,
                        &context,
                    )?;
                    (traced.result.permissionship, Some(traced.trace))
                }
                Backend::Local(engine) => (
                    engine
                        .check(&rel.resource, &rel.relation, &rel.subject, &context)?
                        .permissionship,
                    None,
                ),
                Backend::Remote(client) if explain => {
                    let (answer, missing, trace) = client.check_traced(&rel, &context)?;
                    (remote_permissionship(&answer, missing), Some(trace))
                }
                Backend::Remote(client) => {
                    let (answer, missing) = client.check(&rel, &context)?;
                    (remote_permissionship(&answer, missing), None)
                }
            };
            if let Some(trace) = &trace {
                let style = explain::Style {
                    colour: std::io::stdout().is_terminal()
                        && std::env::var_os("NO_COLOR").is_none(),
                    timings: true,
                };
                print!("{}", explain::render(trace, style));
            }
            let (text, code) = match &permissionship {
                Permissionship::Has => ("true".to_string(), ExitCode::SUCCESS),
                Permissionship::No => ("false".to_string(), ExitCode::from(1)),
                Permissionship::Conditional { missing } => (
                    format!(
                        "caveated (missing {})",
                        missing.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                    ExitCode::from(2),
                ),
            };
            cli::output::line(&text)?;
            Ok(code)
        }
        Command::LookupResources {
            target,
            resource_type,
            permission,
            subject,
            context,
        } => {
            let subject = SubjectRef::parse(&subject)?;
            let context = cli::parse_context(context.as_deref())?;
            let found: Vec<(String, bool)> = match Backend::open(&target)? {
                Backend::Local(engine) => engine
                    .lookup_resources(&resource_type, &permission, &subject, &context)?
                    .0
                    .into_iter()
                    .map(|(id, p)| (id, matches!(p, Permissionship::Conditional { .. })))
                    .collect(),
                Backend::Remote(client) => client
                    .lookup_resources(&resource_type, &permission, &subject, &context)?
                    .into_iter()
                    .map(|(id, p)| (id, p.contains("CONDITIONAL")))
                    .collect(),
            };
            print_found(&found)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::LookupSubjects {
            target,
            resource,
            permission,
            subject_type,
            context,
        } => {
            let resource = ObjectRef::parse(&resource)?;
            let context = cli::parse_context(context.as_deref())?;
            let found: Vec<(String, bool)> = match Backend::open(&target)? {
                Backend::Local(engine) => engine
                    .lookup_subjects(&resource, &permission, &subject_type, None, &context)?
                    .0
                    .into_iter()
                    .map(|s| {
                        let conditional =
                            matches!(s.permissionship, Permissionship::Conditional { .. });
                        (s.subject_id, conditional)
                    })
                    .collect(),
                Backend::Remote(client) => client
                    .lookup_subjects(&resource, &permission, &subject_type, &context)?
                    .into_iter()
                    .map(|(id, p)| (id, p.contains("CONDITIONAL")))
                    .collect(),
            };
            print_found(&found)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Expand { target, permission } => cli::expand::run(&target, &permission),
        Command::Watch {
            target,
            since,
            types,
        } => cli::watch::run(&target, since.as_deref(), &types),
        Command::Schema { action } => match action {
            SchemaAction::Read { target } => {
                let text = match Backend::open(&target)? {
                    Backend::Local(engine) => engine.schema()?.source.clone(),
                    Backend::Remote(client) => client.read_schema()?,
                };
                cli::output::line(&text)?;
                Ok(ExitCode::SUCCESS)
            }
            SchemaAction::Write { target, file } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let written = match Backend::open(&target)? {
                    Backend::Local(engine) => engine
                        .write_schema(&text)
                        .map(|revision| format!("schema written at revision {revision}"))
                        .map_err(anyhow::Error::from),
                    Backend::Remote(client) => client
                        .write_schema(&text)
                        .map(|token| format!("schema written at {token}"))
                        .map_err(anyhow::Error::from),
                };
                match written {
                    Ok(message) => cli::output::line(&message)?,
                    Err(err) => {
                        return Err(cli::output::SchemaFailure::new(err, &file, &text).into())
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Relationship { action } => run_relationship(action),
        Command::Token {
            user,
            jwt_secret,
            jwt_private_key,
            ttl,
            email,
            name,
            issuer,
            audience,
            kid,
        } => {
            let key = match (jwt_secret, jwt_private_key) {
                (Some(secret), _) => SigningKey::Secret(secret),
                (None, Some(path)) => SigningKey::PrivatePem(
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                ),
                (None, None) => anyhow::bail!("give --jwt-secret or --jwt-private-key"),
            };
            let ttl = parse_ttl(&ttl).map_err(anyhow::Error::msg)?;
            let now = unix_now();
            let claims = Claims {
                sub: user,
                exp: now.saturating_add(ttl.as_secs()),
                iat: Some(now),
                iss: issuer,
                aud: audience,
                email,
                name,
                ..Claims::default()
            };
            cli::output::line(&sign(&key, &claims, kid.as_deref())?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            target,
            file,
            touch,
            batch,
        } => cli::import::run(&target, &file, touch, batch),
        Command::Export { target } => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let progress = cli::output::spinner("relationships");
            match Backend::open(&target)? {
                Backend::Local(engine) => {
                    let mut after: Option<Relationship> = None;
                    loop {
                        let (page, _) = engine.read_relationships(
                            &RelationshipFilter::default(),
                            after.as_ref(),
                            Some(1_000),
                        )?;
                        for rel in &page {
                            writeln!(out, "{rel}")?;
                        }
                        progress.inc(page.len() as u64);
                        match page.last() {
                            Some(last) if page.len() == 1_000 => after = Some(last.clone()),
                            _ => break,
                        }
                    }
                }
                Backend::Remote(client) => {
                    let mut failed: Option<std::io::Error> = None;
                    let exported = client.export(|page| {
                        progress.inc(page.len() as u64);
                        for rel in page {
                            if let Err(err) = writeln!(out, "{rel}") {
                                failed = Some(err);
                                return Err(zanzi::client::ClientError::Stopped);
                            }
                        }
                        Ok(())
                    });
                    if let Some(err) = failed {
                        return Err(err.into());
                    }
                    exported?;
                }
            }
            out.flush()?;
            progress.finish_and_clear();
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_found(found: &[(String, bool)]) -> Result<()> {
    for (id, conditional) in found {
        if *conditional {
            cli::output::line(&format!("{id} (conditional)"))?;
        } else {
            cli::output::line(id)?;
        }
    }
    Ok(())
}

/// The engine of a local data folder, or a client of a running server.
enum Backend {
    Local(Box<Engine>),
    Remote(Client),
}

impl Backend {
    fn open(target: &Target) -> Result<Self> {
        match &target.endpoint {
            Some(endpoint) => {
                let key = match &target.key {
                    Some(key) => key.clone(),
                    None => std::fs::read_to_string(target.data_dir.join(auth::KEY_FILE))
                        .map(|k| k.trim().to_string())
                        .with_context(|| {
                            format!(
                                "no --key given and no key stored in {}",
                                target.data_dir.display()
                            )
                        })?,
                };
                Ok(Backend::Remote(Client::connect(endpoint, &key)?))
            }
            None => Ok(Backend::Local(Box::new(open_engine(target)?))),
        }
    }
}

/// A duration: a whole number with a unit (`ms`, `s`, `m`, `h`), or seconds without one;
/// more than zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as `30s` or `500ms`"))?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(value),
        "" | "s" => Duration::from_secs(value),
        "m" => Duration::from_secs(value.saturating_mul(60)),
        "h" => Duration::from_secs(value.saturating_mul(3600)),
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: use ms, s, m or h"
            ))
        }
    };
    if duration.is_zero() {
        return Err("a duration must be more than zero".to_string());
    }
    Ok(duration)
}

fn run_serve(args: ServeArgs) -> Result<ExitCode> {
    let file: ConfigFile = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?
        }
        None => ConfigFile::default(),
    };
    let defaults = Limits::default();
    let grpc_tls = match (
        args.grpc_tls_cert.or(file.grpc_tls_cert),
        args.grpc_tls_key.or(file.grpc_tls_key),
    ) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => anyhow::bail!("give both --grpc-tls-cert and --grpc-tls-key, or neither"),
    };
    // Flags and environment first, then the config file; the deprecated seconds-only setting
    // counts only where the new one is absent at the same level.
    let history_retention = match (args.history_retention, args.snapshot_max_age_secs) {
        (Some(window), _) => window,
        (None, Some(secs)) => Duration::from_secs(secs),
        (None, None) => match (&file.history_retention, file.snapshot_max_age_secs) {
            (Some(text), _) => parse_ttl(text)
                .map_err(anyhow::Error::msg)
                .context("config file setting `history_retention`")?,
            (None, Some(secs)) => Duration::from_secs(secs),
            (None, None) => DEFAULT_HISTORY_RETENTION,
        },
    };
    let http_tls = match (
        args.http_tls_cert.or(file.http_tls_cert),
        args.http_tls_key.or(file.http_tls_key),
    ) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => anyhow::bail!("give both --http-tls-cert and --http-tls-key, or neither"),
    };
    let datastore = args
        .datastore
        .or(file.datastore)
        .map(|url| Datastore::from_url(&url))
        .transpose()?;
    let config = ServeConfig {
        data_dir: args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./zanzi-data")),
        datastore,
        http_addr: args
            .http_addr
            .or(file.http_addr)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443))),
        http_tls,
        grpc_addr: Some(
            args.grpc_addr
                .or(file.grpc_addr)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 50051))),
        ),
        grpc_tls,
        clock: None,
        preshared_key: args.preshared_key.or(file.preshared_key),
        limits: Limits {
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(defaults.max_body_bytes),
            max_updates_per_write: args
                .max_updates_per_write
                .or(file.max_updates_per_write)
                .unwrap_or(defaults.max_updates_per_write),
            max_bulk_checks: args
                .max_bulk_checks
                .or(file.max_bulk_checks)
                .unwrap_or(defaults.max_bulk_checks),
            request_timeout: match args.request_timeout {
                Some(timeout) => timeout,
                None => match &file.request_timeout {
                    Some(text) => parse_duration(text)
                        .map_err(|e| anyhow::anyhow!("config file: request_timeout: {e}"))?,
                    None => defaults.request_timeout,
                },
            },
            max_concurrent_requests: args
                .max_concurrent_requests
                .or(file.max_concurrent_requests)
                .map_or(defaults.max_concurrent_requests, |n| n.max(1) as usize),
            max_http_connections: args
                .max_http_connections
                .or(file.max_http_connections)
                .map_or(defaults.max_http_connections, |n| n.max(1) as usize),
            max_unauthenticated_connections: args
                .max_unauthenticated_connections
                .or(file.max_unauthenticated_connections)
                .map_or(defaults.max_unauthenticated_connections, |n| {
                    n.max(1) as usize
                }),
            max_import_relationships: args
                .max_import_relationships
                .or(file.max_import_relationships)
                .unwrap_or(defaults.max_import_relationships),
            ..defaults
        },
        engine: EngineConfig::default(),
        snapshot_window: args
            .snapshot_window
            .or(file.snapshot_window)
            .unwrap_or(1024),
        history_retention,
        watch_checkpoint: Duration::from_millis(
            args.watch_checkpoint_ms
                .or(file.watch_checkpoint_ms)
                .unwrap_or(1000),
        ),
        expiry_sweep: Duration::from_secs(60),
        facade: None,
    };
    let defaults = FacadeConfig::default();
    let jwt = JwtSettings {
        secret: args.jwt_secret.or(file.jwt_secret),
        public_key: args.jwt_public_key.or(file.jwt_public_key),
        jwks: args.jwt_jwks.or(file.jwt_jwks),
        issuer: args.jwt_issuer.or(file.jwt_issuer),
        audience: args.jwt_audience.or(file.jwt_audience),
        leeway_secs: args
            .jwt_leeway_secs
            .or(file.jwt_leeway_secs)
            .unwrap_or(defaults.jwt.leeway_secs),
    };
    let superusers = if args.superusers.is_empty() {
        file.superusers.unwrap_or_default()
    } else {
        args.superusers
    };
    let max_orgs_per_user = args
        .max_orgs_per_user
        .or(file.max_orgs_per_user)
        .unwrap_or(defaults.max_orgs_per_user);
    let config = ServeConfig {
        facade: jwt.has_key().then_some(FacadeConfig {
            jwt,
            superusers,
            max_orgs_per_user,
        }),
        ..config
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(server::serve(
        config,
        |started| {
            if let KeySource::Generated(path) = &started.key_source {
                println!(
                    "generated preshared key {} (stored in {})",
                    started.key,
                    path.display()
                );
            }
            let scheme = if started.http_tls { "https" } else { "http" };
            println!("zanzi listening on {scheme}://{}", started.http_addr);
            if let Some(addr) = started.grpc_addr {
                println!("zanzi listening for gRPC on {addr}");
            }
        },
        server::shutdown_signal(),
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn run_relationship(action: RelationshipAction) -> Result<ExitCode> {
    let (target, texts, op) = match action {
        RelationshipAction::Write {
            target,
            relationships,
        } => (target, relationships, UpdateOp::Touch),
        RelationshipAction::Delete {
            target,
            relationships,
        } => (target, relationships, UpdateOp::Delete),
        RelationshipAction::Read {
            target,
            resource_type,
            id,
            relation,
        } => {
            let filter = RelationshipFilter {
                resource_type: Some(resource_type),
                resource_id: id,
                relation,
                ..RelationshipFilter::default()
            };
            let found = match Backend::open(&target)? {
                Backend::Local(engine) => engine.read_relationships(&filter, None, None)?.0,
                Backend::Remote(client) => client.read(&filter)?,
            };
            for rel in found {
                cli::output::line(&rel.to_string())?;
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let updates = texts
        .iter()
        .map(|text| {
            Ok(Update {
                op,
                relationship: Relationship::parse(text)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    match Backend::open(&target)? {
        Backend::Local(engine) => {
            let revision = engine.write_relationships(&updates, &[])?;
            cli::output::line(&format!("written at revision {revision}"))?;
        }
        Backend::Remote(client) => {
            let token = client.write(&updates)?;
            cli::output::line(&format!("written at {token}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn open_engine(target: &Target) -> Result<Engine> {
    let store = match &target.datastore {
        Some(url) => {
            let datastore = Datastore::from_url(url)?;
            Opened::open(&datastore, &OpenOptions::default())
                .with_context(|| format!("opening datastore {}", datastore.describe()))?
        }
        None => Opened::open(
            &Datastore::Embedded(target.data_dir.join("store")),
            &OpenOptions::default(),
        )
        .with_context(|| {
            format!(
                "opening data folder {} (if a server is using it, pass --endpoint)",
                target.data_dir.display()
            )
        })?,
    };
    Ok(Engine::new(store.store(), EngineConfig::default())?)
}

fn run_validate(files: &[PathBuf], together: bool, options: ValidateOptions) -> Result<ExitCode> {
    let groups: Vec<Vec<&Path>> = if together {
        vec![files.iter().map(PathBuf::as_path).collect()]
    } else {
        files.iter().map(|f| vec![f.as_path()]).collect()
    };
    let mut failed = 0usize;
    for group in &groups {
        let name = group
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" + ");
        match validate::validate_files(group, &options) {
            Ok(report) if report.passed() => println!(
                "PASS {name}: {} relationships, {} assertions, {} expected relations, {} consistency checks",
                report.relationships, report.assertions, report.validations, report.consistency_checks
            ),
            Ok(report) => {
                failed += 1;
                let count = report.failures.len();
                println!(
                    "FAIL {name}: {count} problem{}",
                    if count == 1 { "" } else { "s" }
                );
                for failure in &report.failures {
                    println!("  {failure}");
                }
            }
            Err(err) => {
                failed += 1;
                println!("FAIL {name}: {err}");
            }
        }
    }
    println!("{} of {} validated ok", groups.len() - failed, groups.len());
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A check answer read from a server: its `PERMISSIONSHIP_...` name and, for a conditional
/// one, the missing parameters.
fn remote_permissionship(answer: &str, missing: Vec<String>) -> Permissionship {
    match answer {
        "PERMISSIONSHIP_HAS_PERMISSION" => Permissionship::Has,
        "PERMISSIONSHIP_CONDITIONAL_PERMISSION" => Permissionship::conditional(missing),
        _ => Permissionship::No,
    }
}
