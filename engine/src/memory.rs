//! This process's memory: the figures the kernel reports, which builds and
//! benchmarks print next to their budgets (Linux only; elsewhere `None`),
//! and the one hint we give it about large arrays.

/// Asks the kernel to back `buf` with transparent huge pages where the
/// system allows them only on request (`madvise` mode, the common default).
///
/// Why: the graph build and the search hit arrays of hundreds of megabytes
/// (vectors, adjacency, codes) at random, so with 4 KiB pages nearly every
/// access also misses the TLB and walks the page tables; 2 MiB pages cover
/// such an array with a few hundred TLB entries. Call it before the memory
/// is first written: pages already faulted in stay small until the kernel's
/// background collapse, if ever. A no-op off Linux, for small buffers, and
/// wherever the kernel refuses (the hint's result is deliberately ignored).
pub fn advise_huge_pages<T>(buf: &[T]) {
    const HUGE_PAGE: usize = 2 << 20;
    const PAGE: usize = 4096;
    let len = std::mem::size_of_val(buf);
    if !cfg!(target_os = "linux") || len < 2 * HUGE_PAGE {
        return;
    }
    let start = (buf.as_ptr() as usize).next_multiple_of(PAGE);
    let end = (buf.as_ptr() as usize + len) / PAGE * PAGE;
    if end <= start {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: `start..end` lies inside `buf`'s allocation (rounded inwards
    // to whole pages), which this process owns. MADV_HUGEPAGE only changes
    // how the kernel backs those pages, never their contents, so no Rust
    // reference can observe it.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
}

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
