//! Feeds arbitrary bytes to every parser of a collection's files (WAL
//! files and records, the manifest, id-set and tombstone files): each must
//! reject or read them without panicking.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = omen_format::collection::fuzzing::parse_everything(data);
});
