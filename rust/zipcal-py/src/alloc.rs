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

    fn purge_delay() -> i64 {
        // SAFETY: as in `Retain::new`.
        unsafe { mi_option_get(PURGE_DELAY) as i64 }
    }

    #[test]
    fn retain_turns_purging_off_and_restores_it() {
        let before = purge_delay();
        {
            let _a = Retain::new();
            assert_eq!(purge_delay(), -1);
            {
                let _b = Retain::new();
                assert_eq!(purge_delay(), -1);
            }
            assert_eq!(purge_delay(), -1, "still off while one guard lives");
        }
        assert_eq!(purge_delay(), before);
    }
}
