//! Feeds arbitrary bytes to the segment reader: it must reject or read them
//! without panicking, reading out of bounds or allocating without limit.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = omen_format::segment::fuzzing::read_everything(data);
});
