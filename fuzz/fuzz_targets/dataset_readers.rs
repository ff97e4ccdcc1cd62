//! Feeds arbitrary bytes to every dataset reader (big-ann, TEXMEX, ground
//! truth): each must reject or read them without panicking.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("omen-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = omen_format::dataset::fuzzing::open_everything(scratch_dir(), data);
});
