//! Holds ARCHITECTURE.md's map true: every top-level module is named there, every source file
//! starts with a `//!` doc, and only the store implementation names RocksDB.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    files
}

#[test]
fn every_top_level_module_is_in_the_architecture_map() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let map = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(module) = line
            .strip_prefix("pub mod ")
            .and_then(|m| m.strip_suffix(';'))
        {
            assert!(
                map.contains(&format!("`{module}`")),
                "module `{module}` is missing from ARCHITECTURE.md"
            );
        }
    }
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} has no `//!` doc at the top",
            file.display()
        );
    }
}

#[test]
fn only_the_store_implementation_names_rocksdb() {
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        let is_rocks =
            file.ends_with("store/rocks.rs") || file.to_string_lossy().contains("store/rocks/");
        if !is_rocks {
            assert!(
                !text.contains("rocksdb::"),
                "{} names rocksdb",
                file.display()
            );
        }
    }
}
