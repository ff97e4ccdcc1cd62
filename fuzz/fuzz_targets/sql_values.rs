//! Feeds arbitrary bytes to what omen-serve reads from the network:
//! parameter values of every type in text and binary format, pgvector's
//! vector text and binary forms (whatever parses must round-trip), and
//! SQL text. Each must return a value or an error, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    omen_sql::wire::codec::fuzzing::wire_values(data);
});
