//! The allocator, and how it treats freed memory during ingestion.
//!
//! mimalloc gives memory that stays free for a while (`purge_delay`, 1 s by
//! default) back to the OS, page by page. Ingestion frees and allocates buffers of
//! similar sizes batch after batch, so with the default most of them are purged and
//! faulted in again, zeroed by the kernel each time (with transparent huge pages,
//! 2 MiB at a time). While any ingestion call runs, [`Retain`] turns purging off;
//! memory freed meanwhile stays with the allocator and serves the next batches. The
//! previous setting (the default, or `MIMALLOC_PURGE_DELAY` from the environment) is
//! restored when the last call ends, so memory freed afterwards, such as a dropped
//! corpus, is returned as usual.

use std::sync::Mutex;

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// Tokenization allocates many small short-lived buffers; mimalloc serves them far
/// faster than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` (position 15 of `mi_option_t` in mimalloc 2 and 3; the
/// `libmimalloc-sys` crate does not name it). Milliseconds; -1 disables purging.
const PURGE_DELAY: mi_option_t = 15;

/// `mi_option_allow_thp` (position 43 of `mi_option_t` in mimalloc 3, the version
/// the `mimalloc` crate builds by default).
const ALLOW_THP: mi_option_t = 43;

/// Called when the module loads, before its first allocation: no transparent huge
/// pages for this allocator's arenas (unless `MIMALLOC_ALLOW_THP` says otherwise).
/// A first touch of a huge page zeroes 2 MiB and, where free huge pages are scarce,
/// stalls in kernel compaction, which made the first batch of a run slower and its
/// time erratic; later batches ran at the same speed either way.
pub fn configure() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: as in `Retain::new`.
        unsafe { mi_option_set(ALLOW_THP, 0) };
    }
}

/// Active ingestion calls, and the purge delay to restore when none is left.
static ACTIVE: Mutex<(usize, i64)> = Mutex::new((0, 0));

/// While a value of this type lives, freed memory is not purged.
pub struct Retain(());

impl Retain {
    pub fn new() -> Retain {
        let mut a = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        if a.0 == 0 {
            // SAFETY: mimalloc options are plain integers read atomically by the allocator.
            a.1 = unsafe { mi_option_get(PURGE_DELAY) } as i64;
            unsafe { mi_option_set(PURGE_DELAY, -1) };
        }
        a.0 += 1;
        Retain(())
    }
}

impl Drop for Retain {
    fn drop(&mut self) {
        let mut a = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        a.0 -= 1;
        if a.0 == 0 {
            // SAFETY: as in `Retain::new`.
            unsafe { mi_option_set(PURGE_DELAY, a.1 as _) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(o: mi_option_t) -> i64 {
        // SAFETY: as in `Retain::new`.
        unsafe { mi_option_get(o) as i64 }
    }

    /// One test, so that no other test changes the options meanwhile.
    #[test]
    fn options_are_the_ones_meant_and_are_restored() {
        let env = |k: &str| std::env::var_os(k).is_some();
        // mimalloc's documented defaults identify the option positions.
        if !env("MIMALLOC_PURGE_DELAY") {
            assert_eq!(option(PURGE_DELAY), 1000, "purge_delay default");
        }
        if !env("MIMALLOC_ALLOW_THP") {
            assert_eq!(option(ALLOW_THP), 1, "allow_thp default");
            configure();
            assert_eq!(option(ALLOW_THP), 0);
        }
        let before = option(PURGE_DELAY);
        {
            let _a = Retain::new();
            assert_eq!(option(PURGE_DELAY), -1);
            {
                let _b = Retain::new();
                assert_eq!(option(PURGE_DELAY), -1);
            }
            assert_eq!(option(PURGE_DELAY), -1, "still off while one guard lives");
        }
        assert_eq!(option(PURGE_DELAY), before);
    }
}
