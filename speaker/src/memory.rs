//! Handing freed heap back to the system after a big reload.
//!
//! A reload of 10,000 Services builds the new state beside the old one and parses
//! the status file whole: the heap peaks near twice what it holds afterwards. glibc
//! keeps what was freed (in the middle of its arenas, pinned by live chunks above),
//! so the speaker's RSS stayed at the peak (~80 MiB) long after the live heap
//! settled near 30 MiB. `malloc_trim` returns those free pages (`MADV_DONTNEED`);
//! the runner calls it half a second after a reload's plan (when the status write
//! and the old snapshot are gone too), and it runs only when enough is free to be
//! worth the arena walk. With 10,000 Services, after the first load: 2.4 MB free
//! in the arenas, 1.5 MiB of it handed back.
// Three libc calls with no arguments that point anywhere.
#![allow(unsafe_code)]

/// Allocator settings for a long-lived process with a large, slowly changing heap.
///
/// At most two malloc arenas for the whole process. glibc gives each thread that
/// allocates under contention an arena of its own, and what is freed stays free
/// in its arena only: the file watcher, the speaker loop and the BGP sessions
/// each kept their own slack. With 10,000 Services, after five reloads: 71 MiB
/// RSS with the default (8 per core), 62 MiB with two, 53 MiB with one; but one
/// arena made the session's first send of the table wait on the lock while the
/// speaker loop allocated beside it (Established to 10,000 routes at BIRD:
/// median 6 ms with two, 9 ms with one).
///
/// Blocks of 128 KiB and more always mapped on their own (glibc's starting
/// threshold, kept fixed). glibc raises the threshold to the size of any mapped
/// block that is freed, so after the first reload the status file's text, the
/// parsed records and each doubling of a 10,000-entry list came from the arenas,
/// and the holes they left kept pages among what stays: 10,000 Services, one
/// peer, 11.2 MiB anonymous memory with the moving threshold, 9.6-10.1 fixed
/// (same latencies). Call before any thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
            libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
        }
    }
}

/// Free heap (bytes) below which trimming is not worth it. 4 MiB let the 2.4 MB
/// a first load of 10,000 Services leaves stay.
pub const TRIM_AT: usize = 1 << 20;

/// Whether `free` bytes sitting unused in the allocator are worth a trim.
pub fn worth_trimming(free: usize) -> bool {
    free >= TRIM_AT
}

/// Free bytes the allocator holds (all arenas), when it can say.
pub fn free_heap() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's own bookkeeping.
        let m = unsafe { libc::mallinfo2() };
        Some(m.fordblks)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Returns free heap pages to the system when enough is free; `true` when the
/// allocator released something.
pub fn release_free_heap() -> bool {
    let Some(free) = free_heap() else {
        return false;
    };
    if !worth_trimming(free) {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let t = std::time::Instant::now();
        let before = anon_kib();
        // SAFETY: malloc_trim takes the arena locks itself; 0 keeps no pad.
        let released = unsafe { libc::malloc_trim(0) } == 1;
        // SAFETY: as in free_heap.
        let m = unsafe { libc::mallinfo2() };
        tracing::debug!(
            free_bytes = free,
            in_use = m.uordblks,
            arena = m.arena,
            mmapped = m.hblkhd,
            anon_kib_before = before,
            anon_kib_after = anon_kib(),
            released,
            trim_us = t.elapsed().as_micros() as u64,
            "returned free heap to the system"
        );
        released
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// RssAnon of this process in KiB (0 when unreadable).
fn anon_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("RssAnon:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_free_heaps_are_left_alone() {
        assert!(!worth_trimming(0));
        assert!(!worth_trimming(TRIM_AT - 1));
        assert!(worth_trimming(TRIM_AT));
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_freed_reload_goes_back_to_the_system() {
        // Many small chunks freed under a live one, as a reload leaves them: glibc
        // cannot shrink past the live chunk, only trim can give the pages back.
        let chunks: Vec<Box<[u8; 1024]>> = (0..32 * 1024).map(|_| Box::new([1u8; 1024])).collect();
        let pin = Box::new([2u8; 1024]);
        drop(chunks);
        assert!(free_heap().is_some_and(worth_trimming), "{:?}", free_heap());
        assert!(release_free_heap());
        assert_eq!(pin[0], 2);
    }
}
