//! The conformance suite: SpiceDB validation files from `../shared/conformance` through
//! `zanzi validate`, and the loader cases with the outcomes their `EXPECTED.tsv` gives.
//! Every validation file runs in each engine configuration (plain walk, check cache, group
//! index, both): a cache hit or an index probe must never change an answer.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{configs, conformance_dir, yaml_files};
use zanzi::engine::EngineConfig;
use zanzi::validate::{self, ValidateOptions};

/// Validation options with "now" pinned, so expiration files answer the same on any date
/// (their relationships expire in 2023, 2223 or 2323).
fn pinned_clock(engine: EngineConfig) -> ValidateOptions {
    ValidateOptions {
        now: Some(zanzi::tuple::parse_expiration("2025-06-01T00:00:00Z").unwrap()),
        engine,
        ..ValidateOptions::default()
    }
}

/// Validates every file of `dir` once per engine configuration; returns the files run and
/// every failure, labelled with its configuration.
fn run_dir(dir: &Path) -> (usize, Vec<String>) {
    let mut ran = 0;
    let mut failures = Vec::new();
    for file in yaml_files(dir) {
        ran += 1;
        for (name, config) in configs() {
            match validate::validate_files(&[file.as_path()], &pinned_clock(config)) {
                Ok(report) if report.passed() => {}
                Ok(report) => failures.push(format!(
                    "{} ({name}):\n    {}",
                    file.display(),
                    report.failures.join("\n    ")
                )),
                Err(err) => failures.push(format!("{} ({name}): {err}", file.display())),
            }
        }
    }
    (ran, failures)
}

fn assert_dir_passes(dir: PathBuf, minimum_files: usize) {
    let (ran, failures) = run_dir(&dir);
    assert!(
        ran >= minimum_files,
        "only {ran} files ran in {}",
        dir.display()
    );
    assert!(
        failures.is_empty(),
        "{} files failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn spicedb_integration_files_pass() {
    assert_dir_passes(conformance_dir().join("spicedb"), 36);
}

#[test]
fn spicedb_oracle_files_match_spicedb_answer_for_answer() {
    assert_dir_passes(conformance_dir().join("spicedb-oracle"), 41);
}

/// Minimal worlds where zanzi once disagreed with SpiceDB (written by hand from issues, or by
/// the differential runner's shrinker), with SpiceDB's answers as assertions.
#[test]
fn regression_files_pass() {
    assert_dir_passes(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/regressions"),
        2,
    );
}

#[test]
fn example_files_pass_with_expected_relations() {
    let examples = conformance_dir().join("examples");
    let mut ran = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for sub in [dir.clone(), dir.join("validations")] {
            if !sub.is_dir() {
                continue;
            }
            let (n, f) = run_dir(&sub);
            ran += n;
            failures.extend(f);
        }
    }
    assert!(ran >= 5, "only {ran} example files ran");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn frontier_schemas_compile() {
    for name in ["base_schema.zed", "compiled_schema.zed"] {
        let text = std::fs::read_to_string(conformance_dir().join("frontier").join(name)).unwrap();
        let schema = zanzi::schema::compile(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(schema.definition("app/organization").is_some(), "{name}");
    }
}

/// Runs `zanzi validate` from the conformance folder, as SpiceDB's loader tests run from
/// theirs, so `schemaFile` paths resolve the same way.
fn zanzi_validate(files: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_zanzi"))
        .current_dir(conformance_dir())
        .arg("validate")
        .arg("--together")
        .args(["--now", "2025-06-01T00:00:00Z"])
        .args(files)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn loader_cases_have_their_expected_outcomes() {
    let expected = std::fs::read_to_string(conformance_dir().join("loader/EXPECTED.tsv")).unwrap();
    let mut checked = 0;
    let mut problems = Vec::new();
    for line in expected.lines().skip(1) {
        let mut columns = line.split('\t');
        let (Some(files), Some(outcome), Some(detail)) =
            (columns.next(), columns.next(), columns.next())
        else {
            continue;
        };
        let files: Vec<String> = files
            .split(" + ")
            .map(|f| format!("loader/{}", f.trim()))
            .collect();
        let file_refs: Vec<&str> = files.iter().map(String::as_str).collect();
        checked += 1;
        let (ok, output) = zanzi_validate(&file_refs);
        match outcome {
            "ok" if !ok => problems.push(format!("{files:?} should load, got:\n{output}")),
            "ok" => {
                if let Some(count) = expected_count(detail) {
                    let wanted = format!(": {count} relationships,");
                    if !output.contains(&wanted) {
                        problems.push(format!(
                            "{files:?} should load {count} relationships, got:\n{output}"
                        ));
                    }
                }
            }
            "error" => {
                let wanted = error_substring(detail);
                if ok {
                    problems.push(format!("{files:?} should fail with `{wanted}`, but passed"));
                } else if !output.contains(&wanted) {
                    problems.push(format!(
                        "{files:?} should fail with `{wanted}`, got:\n{output}"
                    ));
                }
            }
            _ => {}
        }
    }
    assert!(checked >= 17, "only {checked} loader cases checked");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The relationship count an `ok` row names (`3 relationships`, `same 3 relationships`).
fn expected_count(detail: &str) -> Option<usize> {
    let words: Vec<&str> = detail.split_whitespace().collect();
    let at = words.iter().position(|w| w.starts_with("relationships"))?;
    words.get(at.checked_sub(1)?)?.parse().ok()
}

/// The part of an expected error that does not depend on the test folder's name.
fn error_substring(detail: &str) -> String {
    detail.replace("testdata/", "loader/").replace(
        "error when parsing schema (line 6, column 18 of invalid_schemafile.zed)",
        "line 6, column 18",
    )
}
