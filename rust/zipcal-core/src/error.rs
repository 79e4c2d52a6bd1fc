//! The one error type of the core. The Python bindings map each variant to a
//! subclass of `zipcal.ZipcalError`.

use thiserror::Error;

/// Everything that can go wrong in the core, with enough context for a one-line message.
#[derive(Debug, Error)]
pub enum Error {
    /// A caller-supplied argument is out of range (`n <= 0`, `seq_len == 0`, ...).
    #[error("{0}")]
    InvalidArgument(String),
    /// A tokenizer file could not be read or parsed.
    #[error("invalid tokenizer {source_name}: {message}")]
    Tokenizer {
        source_name: String,
        message: String,
    },
    /// The input data is not what the caller said it is (wrong Arrow type, ...).
    #[error("{0}")]
    InvalidInput(String),
    /// Fewer usable candidates than requested.
    #[error("only {available} usable candidates, but n = {requested} were requested{hint}")]
    NotEnoughCandidates {
        available: usize,
        requested: usize,
        hint: String,
    },
    /// Too many distinct types for 31-bit ids.
    #[error("too many distinct types (limit {0})")]
    Capacity(u64),
}

pub type Result<T> = std::result::Result<T, Error>;
