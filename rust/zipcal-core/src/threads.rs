//! The thread pool used for all parallel work.
//!
//! One pool per process, sized by [`set_num_threads`], else `ZIPCAL_NUM_THREADS`,
//! else the number of CPUs. The pool remembers the process id that built it: a
//! child created by `fork()` has no worker threads, so it builds a fresh pool
//! instead of waiting forever on the parent's.

use std::sync::{Arc, Mutex};

struct Pool {
    pid: u32,
    threads: usize,
    pool: Arc<rayon::ThreadPool>,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);
static REQUESTED: Mutex<Option<usize>> = Mutex::new(None);

fn default_threads() -> usize {
    if let Some(n) = *REQUESTED.lock().unwrap_or_else(|e| e.into_inner()) {
        return n;
    }
    std::env::var("ZIPCAL_NUM_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Set the number of worker threads (0 = back to the default). Returns the previous
/// setting (0 = default).
pub fn set_num_threads(n: usize) -> usize {
    let mut guard = REQUESTED.lock().unwrap_or_else(|e| e.into_inner());
    let previous = guard.unwrap_or(0);
    *guard = if n == 0 { None } else { Some(n) };
    previous
}

/// The number of worker threads the next parallel call will use.
pub fn num_threads() -> usize {
    default_threads()
}

fn pool() -> Arc<rayon::ThreadPool> {
    let pid = std::process::id();
    let threads = default_threads();
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = guard.as_ref() {
        if p.pid == pid && p.threads == threads {
            return p.pool.clone();
        }
    }
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("zipcal-{i}"))
            .build()
            .expect("building a thread pool"),
    );
    // In a forked child the old pool's threads do not exist; leak it rather than
    // run its destructor, which would wait on them.
    if let Some(old) = guard.take() {
        if old.pid != pid {
            std::mem::forget(old);
        }
    }
    *guard = Some(Pool {
        pid,
        threads,
        pool: pool.clone(),
    });
    pool
}

/// Run `f` on the zipcal pool.
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}
