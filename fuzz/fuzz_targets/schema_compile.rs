//! Fuzz target: `zanzi::schema::compile` must never panic, whatever the text.
//!
//! Run with `cargo fuzz run schema_compile` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = zanzi::schema::compile(text);
    }
});
