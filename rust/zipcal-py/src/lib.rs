//! Python bindings of zipcal-core. Arguments are converted, the GIL is released
//! once around the Rust work, and results come back as numpy arrays. Core errors
//! map to the exception classes of `zipcal.errors`.

use pyo3::prelude::*;
use zipcal_core as core;

mod alloc;
mod corpus;
mod errors;
mod parquet_text;
mod segmenter;

use corpus::Corpus;
use parquet_text::{ParquetText, TextBatch};
use segmenter::Segmenter;

/// Words of `text` (UAX #29, original case).
#[pyfunction]
fn segment_words(text: &str) -> Vec<String> {
    core::text::words(text).map(str::to_string).collect()
}

/// Byte spans (start, end) of the words of `text`.
#[pyfunction]
fn word_spans(text: &str) -> Vec<(usize, usize)> {
    core::text::word_spans(text)
}

/// Type normalisation of one token text (None when nothing is left).
#[pyfunction]
fn normalize_type(text: &str) -> Option<String> {
    core::text::normalize_type(text)
}

/// Split `text` into the cache chunks used by ingestion.
#[pyfunction]
fn chunks(text: &str) -> Vec<String> {
    core::text::Chunks::new(text).map(str::to_string).collect()
}

/// Set the number of worker threads (0 = default: `ZIPCAL_NUM_THREADS` or all CPUs).
/// Returns the previous setting (0 = default) so callers can restore it.
#[pyfunction]
fn set_num_threads(n: usize) -> usize {
    core::threads::set_num_threads(n)
}

/// Number of worker threads in use.
#[pyfunction]
fn get_num_threads() -> usize {
    core::threads::num_threads()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    alloc::configure();
    m.add_class::<Segmenter>()?;
    m.add_class::<Corpus>()?;
    m.add_class::<ParquetText>()?;
    m.add_class::<TextBatch>()?;
    m.add_function(wrap_pyfunction!(segment_words, m)?)?;
    m.add_function(wrap_pyfunction!(word_spans, m)?)?;
    m.add_function(wrap_pyfunction!(normalize_type, m)?)?;
    m.add_function(wrap_pyfunction!(chunks, m)?)?;
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add("NO_TYPE", core::NO_TYPE)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
