//! Fuzz target: `zanzi::tuple::Relationship::parse` must never panic, and whatever it accepts
//! must print to text that parses back to the same relationship.
//!
//! Run with `cargo fuzz run relationship_parse` from the repository root.

#![no_main]

use libfuzzer_sys::fuzz_target;
use zanzi::tuple::Relationship;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(rel) = Relationship::parse(text) {
            let printed = rel.to_string();
            let reparsed = Relationship::parse(&printed);
            assert!(reparsed.is_ok_and(|r| r == rel), "round trip failed for {printed}");
        }
    }
});
