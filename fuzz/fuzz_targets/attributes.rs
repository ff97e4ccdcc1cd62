//! Feeds arbitrary bytes to the attribute-section parser (head, statistics
//! and column blocks, without the page checksums in the way): it must
//! reject or decode them without panicking, reading out of bounds or
//! allocating without limit.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = omen_format::segment::attributes::fuzzing::decode_everything(data);
});
