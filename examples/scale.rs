//! zanzi at scale: loads millions of relationships into a RocksDB folder, then reopens it the way
//! a restarted server does and reports the load rate, the size on disk, the resident memory
//! after open and under check load, check latency (a 30-level nested group chain,
//! Frontier-like nested checks and direct `owner` checks, with the check cache on and off) and
//! lookup-resources for a user in 1,000 groups.
//!
//! ```sh
//! cargo run --example scale --config 'profile.dev.package.zanzi.opt-level=3' -- \
//!     --relationships 10000000 --batch 10000000
//! ```
//!
//! By default the load goes through imports (`Engine::import`, the store's bulk path: sorted
//! files ingested into RocksDB), `--batch` relationships per atomic import, generated before
//! each import so the rate is the import's own; `--load write` loads through ordinary CREATE
//! writes of `--batch` relationships instead. Each import's rate is printed with the store size
//! it went into, so `--relationships 20000000 --batch 10000000` measures an import into an
//! empty store and one into a store of 10M.
//!
//! The load runs in one process and the measurements in a second one (`--measure DIR`), so the
//! resident memory is that of an engine opened over data already on disk, not what the load
//! left behind. `--load-only` stops after the load (for profiling it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zanzi::engine::{Context, Engine, EngineConfig, Permissionship};
use zanzi::store::{RocksStore, StoreOptions, TupleStore};
use zanzi::transaction::{ImportMode, Update, UpdateOp};
use zanzi::tuple::{ObjectRef, Relationship, SubjectRef};

const SCHEMA: &str = "definition user {}
definition group {
    relation member: user | group#member
}
definition doc {
    relation owner: user
    relation viewer: user | group#member
    permission view = owner + viewer
}";

/// Groups nest this deep below the top level (Frontier's org shape).
const NEST_LEVELS: u64 = 5;
/// The length of the separate group chain checked at 30 levels.
const CHAIN: u64 = 30;
/// The fan-out: one user in this many groups of their own, each the viewer of its own document.
const FAN: u64 = 1_000;

type Error = Box<dyn std::error::Error>;

struct Args {
    relationships: u64,
    batch: usize,
    /// `import` (bulk path) or `write` (ordinary writes).
    load: String,
    dir: Option<PathBuf>,
    measure: Option<PathBuf>,
    checks: usize,
    load_only: bool,
}

fn parse_args() -> Result<Args, Error> {
    let mut args = Args {
        relationships: 10_000_000,
        batch: 10_000_000,
        load: "import".to_string(),
        dir: None,
        measure: None,
        checks: 20_000,
        load_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--load-only" {
            args.load_only = true;
            continue;
        }
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--relationships" => args.relationships = value.parse()?,
            "--batch" => args.batch = value.parse()?,
            "--load" => args.load = value,
            "--dir" => args.dir = Some(PathBuf::from(value)),
            "--measure" => args.measure = Some(PathBuf::from(value)),
            "--checks" => args.checks = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(args)
}

/// A small deterministic generator (xorshift), so every run loads the same data.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The shape scaled to `total` relationships: users (1 per 100 relationships) in groups
/// (1 per 1,000) nested `NEST_LEVELS` deep, documents with an owner and a viewer group or user.
struct Shape {
    users: u64,
    groups: u64,
}

impl Shape {
    fn for_total(total: u64) -> Self {
        Self {
            users: (total / 100).max(100),
            groups: (total / 1_000).max(10),
        }
    }

    /// Every relationship text, in load order: the chain, group structure, then documents.
    fn relationships(&self, total: u64) -> impl Iterator<Item = String> + '_ {
        let chain = (0..CHAIN).map(|level| {
            if level == 0 {
                "group:chain0#member@user:chainuser".to_string()
            } else {
                format!("group:chain{level}#member@group:chain{}#member", level - 1)
            }
        });
        let chain = chain.chain(std::iter::once(format!(
            "doc:chaindoc#viewer@group:chain{}#member",
            CHAIN - 1
        )));
        let fan = (0..FAN).flat_map(|i| {
            [
                format!("group:fan{i}#member@user:fanuser"),
                format!("doc:fandoc{i}#viewer@group:fan{i}#member"),
            ]
        });
        let mut rng = Rng(0x5eed_cafe);
        let groups = self.groups;
        let users = self.users;
        // Each user in two groups; each group below the top level inside one group a level up.
        let nesting = (0..groups).filter_map(move |g| {
            let level = g % (NEST_LEVELS + 1);
            (level > 0).then(|| format!("group:g{}#member@group:g{g}#member", g - 1))
        });
        let members = (0..users * 2).map(move |i| {
            let user = i / 2;
            let group = (user * 7 + i % 2 * 13) % groups;
            format!("group:g{group}#member@user:u{user}")
        });
        let fixed = CHAIN + 1 + FAN * 2 + groups + users * 2;
        let docs = (0..total.saturating_sub(fixed)).map(move |i| {
            let doc = i / 2;
            if i % 2 == 0 {
                format!("doc:d{doc}#owner@user:u{}", rng.below(users))
            } else if rng.below(4) == 0 {
                format!("doc:d{doc}#viewer@user:u{}", rng.below(users))
            } else {
                format!("doc:d{doc}#viewer@group:g{}#member", rng.below(groups))
            }
        });
        chain.chain(fan).chain(nesting).chain(members).chain(docs)
    }
}

fn open(dir: &Path) -> Result<(Arc<dyn TupleStore>, Engine), Error> {
    let store: Arc<dyn TupleStore> = Arc::new(RocksStore::open(dir, StoreOptions::default())?);
    let engine = Engine::new(Arc::clone(&store), EngineConfig::default())?;
    Ok((store, engine))
}

/// Loads through imports of `--batch` relationships each, generated before each import.
fn import(dir: &Path, args: &Args) -> Result<(), Error> {
    let (_store, engine) = open(dir)?;
    engine.write_schema(SCHEMA)?;
    let shape = Shape::for_total(args.relationships);
    let mut texts = shape.relationships(args.relationships).peekable();
    let mut stored = 0u64;
    let mut busy = Duration::ZERO;
    let started = Instant::now();
    while texts.peek().is_some() {
        let batch: Vec<Relationship> = texts
            .by_ref()
            .take(args.batch)
            .map(|text| Relationship::parse(&text))
            .collect::<Result<_, _>>()?;
        let count = batch.len() as u64;
        let t = Instant::now();
        let outcome = engine.import(batch.into_iter().map(Ok), ImportMode::Create)?;
        let took = t.elapsed();
        busy += took;
        println!(
            "import: {count} relationships into a store of {stored} in {:.2} s = {:.0} relationships/s",
            took.as_secs_f64(),
            count as f64 / took.as_secs_f64()
        );
        stored += outcome.loaded;
    }
    println!(
        "load: {stored} relationships in imports of up to {}: {:.1} s importing = {:.0} relationships/s \
         ({:.1} s wall with generation)",
        args.batch,
        busy.as_secs_f64(),
        stored as f64 / busy.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn load(dir: &Path, args: &Args) -> Result<(), Error> {
    if args.load == "import" {
        return import(dir, args);
    }
    let (_store, engine) = open(dir)?;
    engine.write_schema(SCHEMA)?;
    let shape = Shape::for_total(args.relationships);
    let mut pending = Vec::with_capacity(args.batch);
    let mut written = 0u64;
    let mut busy = Duration::ZERO;
    let started = Instant::now();
    let flush = |pending: &mut Vec<Update>, written: &mut u64| -> Result<Duration, Error> {
        let t = Instant::now();
        engine.write_relationships(pending, &[])?;
        let took = t.elapsed();
        *written += pending.len() as u64;
        pending.clear();
        Ok(took)
    };
    for text in shape.relationships(args.relationships) {
        pending.push(Update {
            op: UpdateOp::Create,
            relationship: Relationship::parse(&text)?,
        });
        if pending.len() == args.batch {
            busy += flush(&mut pending, &mut written)?;
            if written % 1_000_000 == 0 {
                eprintln!(
                    "  {written} loaded, {:.0}/s",
                    written as f64 / busy.as_secs_f64()
                );
            }
        }
    }
    if !pending.is_empty() {
        busy += flush(&mut pending, &mut written)?;
    }
    println!(
        "load: {written} relationships in {}-row CREATE batches (WAL synced per batch): \
         {:.1} s in write_relationships = {:.0} relationships/s ({:.1} s wall with generation)",
        args.batch,
        busy.as_secs_f64(),
        written as f64 / busy.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    (at(0.5), at(0.99))
}

fn timed_checks(
    engine: &Engine,
    permission: &str,
    queries: &[(ObjectRef, SubjectRef)],
) -> Result<(Duration, Duration, usize), Error> {
    let mut samples = Vec::with_capacity(queries.len());
    let mut allowed = 0;
    for (resource, subject) in queries {
        let t = Instant::now();
        let answer = engine.check(resource, permission, subject, &Context::new())?;
        samples.push(t.elapsed());
        if answer.permissionship == Permissionship::Has {
            allowed += 1;
        }
    }
    let (p50, p99) = percentiles(samples);
    Ok((p50, p99, allowed))
}

fn measure(dir: &Path, args: &Args) -> Result<(), Error> {
    let before = status_kib("VmRSS:");
    let started = Instant::now();
    let (store, engine) = open(dir)?;
    println!(
        "open: store and engine (group index built from the store) in {:.2} s; \
         {:.2} GiB on disk",
        started.elapsed().as_secs_f64(),
        store.size_on_disk() as f64 / f64::from(1u32 << 30)
    );
    println!(
        "resident after open: {} (process before open: {})",
        mib(status_kib("VmRSS:")),
        mib(before)
    );
    let shape = Shape::for_total(args.relationships);
    let chain: Vec<_> = (0..args.checks)
        .map(|_| {
            Ok((
                ObjectRef::parse("doc:chaindoc")?,
                SubjectRef::parse("user:chainuser")?,
            ))
        })
        .collect::<Result<_, Error>>()?;
    let docs = (args
        .relationships
        .saturating_sub(shape.users * 2 + shape.groups)
        / 2)
    .max(1);
    let mut rng = Rng(0x0bad_f00d);
    let random: Vec<_> = (0..args.checks)
        .map(|_| {
            Ok((
                ObjectRef::parse(&format!("doc:d{}", rng.below(docs)))?,
                SubjectRef::parse(&format!("user:u{}", rng.below(shape.users)))?,
            ))
        })
        .collect::<Result<_, Error>>()?;
    // Direct checks: the `owner` relation of a random document for a random user.
    let owners: Vec<_> = random
        .iter()
        .map(|(doc, _)| {
            Ok((
                doc.clone(),
                SubjectRef::parse(&format!("user:u{}", rng.below(shape.users)))?,
            ))
        })
        .collect::<Result<_, Error>>()?;
    let runs = [
        ("30-level chain", "view", &chain),
        ("random doc view (nested groups)", "view", &random),
        ("random doc owner (direct)", "owner", &owners),
    ];
    for (name, permission, queries) in runs {
        let (p50, p99, allowed) = timed_checks(&engine, permission, queries)?;
        println!(
            "check {name}, cache on: {} checks, p50 {p50:?}, p99 {p99:?} ({allowed} allowed); \
             resident {}",
            queries.len(),
            mib(status_kib("VmRSS:"))
        );
    }
    // The same checks with the cache off: the nested-group index and the store alone.
    let plain_cache = Engine::new(
        Arc::clone(&store),
        EngineConfig {
            cache_bytes: 0,
            ..EngineConfig::default()
        },
    )?;
    for (name, permission, queries) in runs {
        let (p50, p99, allowed) = timed_checks(&plain_cache, permission, queries)?;
        println!(
            "check {name}, cache off: p50 {p50:?}, p99 {p99:?} ({allowed} allowed); resident {}",
            mib(status_kib("VmRSS:"))
        );
    }
    // Lookup-resources for a user in 1,000 groups, each the viewer of its own document.
    let fan_user = SubjectRef::parse("user:fanuser")?;
    let mut samples = Vec::new();
    let mut found = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let (docs, _) = plain_cache.lookup_resources("doc", "view", &fan_user, &Context::new())?;
        samples.push(t.elapsed());
        found = docs.len();
    }
    let (p50, p99) = percentiles(samples);
    println!(
        "lookup-resources doc view for a user in {FAN} groups, cache off: {found} documents, \
         20 calls, p50 {p50:?}, p99 {p99:?}"
    );
    println!(
        "resident at the end: {}, peak {}",
        mib(status_kib("VmRSS:")),
        mib(status_kib("VmHWM:"))
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    // `RUST_LOG=zanzi=debug` shows each import's phases.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args()?;
    if let Some(dir) = &args.measure {
        return measure(dir, &args);
    }
    let temp;
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    load(&dir, &args)?;
    if args.load_only {
        return Ok(());
    }
    // Measure in a fresh process, as a restarted server would run.
    let status = Command::new(std::env::current_exe()?)
        .arg("--measure")
        .arg(&dir)
        .args(["--relationships", &args.relationships.to_string()])
        .args(["--checks", &args.checks.to_string()])
        .status()?;
    if !status.success() {
        return Err(format!("measuring process failed: {status}").into());
    }
    Ok(())
}
