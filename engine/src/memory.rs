//! This process's memory figures, as the kernel reports them: what builds
//! and benchmarks print next to their budgets. Linux only; elsewhere the
//! figures are `None`.

/// The peak resident set size (`VmHWM`), in bytes.
pub fn peak_resident_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|kib| kib * 1024)
}

/// The current resident set size (`VmRSS`), in bytes.
pub fn resident_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|kib| kib * 1024)
}

/// A `kB` field of /proc/self/status.
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn peak_is_at_least_current() {
        let (now, peak) = (super::resident_bytes(), super::peak_resident_bytes());
        if let (Some(now), Some(peak)) = (now, peak) {
            assert!(now > 0 && peak >= now, "{now} {peak}");
        }
    }
}
