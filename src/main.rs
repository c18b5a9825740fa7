//! The `zanzi` binary: command-line parsing and wiring of the library's parts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use zanzi::engine::{Context, Engine, EngineConfig, Permissionship};
use zanzi::store::{RelationshipFilter, RocksStore, StoreOptions, Update, UpdateOp};
use zanzi::tuple::{parse_expiration, Relationship};
use zanzi::validate::{self, ValidateOptions};

/// zanzi: a Zanzibar-style authorization engine that speaks SpiceDB's schema language.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
        /// Answer by the plain walk, without the check cache and the nested-group index
        /// (for comparing answers).
        #[arg(long, hide = true)]
        plain: bool,
    },
    /// Check a permission against a local data folder: `doc:1#view@user:tom`.
    Check {
        /// Data folder of the embedded store.
        #[arg(long, env = "ZANZI_DATA_DIR", default_value = "./zanzi-data")]
        data_dir: PathBuf,
        /// `resource#permission@subject`.
        check: String,
        /// Caveat context as a JSON object.
        #[arg(long)]
        context: Option<String>,
    },
    /// Read or write the schema of a local data folder.
    Schema {
        #[command(subcommand)]
        action: SchemaAction,
    },
    /// Read, write or delete relationships in a local data folder.
    Relationship {
        #[command(subcommand)]
        action: RelationshipAction,
    },
}

#[derive(Debug, Subcommand)]
enum SchemaAction {
    /// Print the stored schema.
    Read {
        /// Data folder of the embedded store.
        #[arg(long, env = "ZANZI_DATA_DIR", default_value = "./zanzi-data")]
        data_dir: PathBuf,
    },
    /// Compile and store the schema in FILE.
    Write {
        /// Data folder of the embedded store.
        #[arg(long, env = "ZANZI_DATA_DIR", default_value = "./zanzi-data")]
        data_dir: PathBuf,
        /// Schema file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum RelationshipAction {
    /// Touch (create or overwrite) relationships given as text.
    Write {
        /// Data folder of the embedded store.
        #[arg(long, env = "ZANZI_DATA_DIR", default_value = "./zanzi-data")]
        data_dir: PathBuf,
        /// Relationships, e.g. `doc:1#viewer@user:tom`.
        #[arg(required = true)]
        relationships: Vec<String>,
    },
    /// Delete relationships given as text.
    Delete {
        /// Data folder of the embedded store.
        #[arg(long, env = "ZANZI_DATA_DIR", default_value = "./zanzi-data")]
        data_dir: PathBuf,
        /// Relationships, e.g. `doc:1#viewer@user:tom`.
        #[arg(required = true)]
        relationships: Vec<String>,
    },
    /// Print relationships of a resource type (optionally one id and relation).
    Read {
        /// Data folder of the embedded store.
        #[arg(long, env = "ZANZI_DATA_DIR", default_value = "./zanzi-data")]
        data_dir: PathBuf,
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
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Validate {
            files,
            together,
            now,
            skip_consistency,
            plain,
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
            };
            run_validate(&files, together, &options)
        }
        Command::Check {
            data_dir,
            check,
            context,
        } => {
            let engine = open_engine(&data_dir)?;
            let rel = Relationship::parse(&check)?;
            let context: Context = match context {
                Some(json) => {
                    serde_json::from_str(&json).context("--context must be a JSON object")?
                }
                None => Context::new(),
            };
            let result = engine.check(&rel.resource, &rel.relation, &rel.subject, &context)?;
            let (text, code) = match &result.permissionship {
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
            println!("{text}");
            Ok(code)
        }
        Command::Schema { action } => match action {
            SchemaAction::Read { data_dir } => {
                let engine = open_engine(&data_dir)?;
                println!("{}", engine.schema()?.source);
                Ok(ExitCode::SUCCESS)
            }
            SchemaAction::Write { data_dir, file } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let engine = open_engine(&data_dir)?;
                let revision = engine.write_schema(&text)?;
                println!("schema written at revision {revision}");
                Ok(ExitCode::SUCCESS)
            }
        },
        Command::Relationship { action } => run_relationship(action),
    }
}

fn run_relationship(action: RelationshipAction) -> Result<ExitCode> {
    let (data_dir, texts, op) = match action {
        RelationshipAction::Write {
            data_dir,
            relationships,
        } => (data_dir, relationships, UpdateOp::Touch),
        RelationshipAction::Delete {
            data_dir,
            relationships,
        } => (data_dir, relationships, UpdateOp::Delete),
        RelationshipAction::Read {
            data_dir,
            resource_type,
            id,
            relation,
        } => {
            let engine = open_engine(&data_dir)?;
            let filter = RelationshipFilter {
                resource_type: Some(resource_type),
                resource_id: id,
                relation,
                ..RelationshipFilter::default()
            };
            let (found, _) = engine.read_relationships(&filter, None, None)?;
            for rel in found {
                println!("{rel}");
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let engine = open_engine(&data_dir)?;
    let updates = texts
        .iter()
        .map(|text| {
            Ok(Update {
                op,
                relationship: Relationship::parse(text)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let revision = engine.write_relationships(&updates, &[])?;
    println!("written at revision {revision}");
    Ok(ExitCode::SUCCESS)
}

fn open_engine(data_dir: &Path) -> Result<Engine> {
    let store = RocksStore::open(data_dir, StoreOptions::default())
        .with_context(|| format!("opening data folder {}", data_dir.display()))?;
    Ok(Engine::new(Arc::new(store), EngineConfig::default())?)
}

fn run_validate(files: &[PathBuf], together: bool, options: &ValidateOptions) -> Result<ExitCode> {
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
        match validate::validate_files(group, options) {
            Ok(report) if report.passed() => println!(
                "PASS {name}: {} relationships, {} assertions, {} expected relations, {} consistency checks",
                report.relationships, report.assertions, report.validations, report.consistency_checks
            ),
            Ok(report) => {
                failed += 1;
                println!("FAIL {name}: {} problems", report.failures.len());
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
