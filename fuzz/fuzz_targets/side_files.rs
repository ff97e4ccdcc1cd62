//! Feeds arbitrary bytes to the attribute side-file parsers (CSV and JSON
//! lines): they must reject or parse them without panicking.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = omen_format::dataset::fuzzing::parse_side_files(data);
});
