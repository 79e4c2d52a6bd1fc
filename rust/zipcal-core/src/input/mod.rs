//! Reading input: Arrow string arrays (validated as UTF-8) and the text column of
//! Parquet files (as Arrow string views).

pub mod arrow;
pub mod parquet;

pub use arrow::{arrow_strings, Origin};
