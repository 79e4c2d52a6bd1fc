//! zipcal-core: lexical-coverage calibration data selection (ZipCal), in pure Rust.
//!
//! Pipeline: text batches (Arrow strings) → [`segment::Segmenter`] (UAX #29 words or a
//! `tokenizer.json`) → per-candidate type sets and pool type counts
//! ([`corpus::Corpus`]) → exact lazy greedy coverage ([`select::lazy_greedy`]).

pub(crate) mod bytebpe;
pub(crate) mod cache;
pub mod corpus;
pub mod error;
pub mod input;
pub mod segment;
pub mod select;
pub mod text;
pub mod threads;

pub use corpus::{Candidates, Corpus, CorpusConfig, IngestReport, Unit};
pub use error::{Error, Result};
pub use input::Origin;
pub use segment::{Segmenter, NO_TYPE};
pub use select::{
    coverage, lazy_greedy, lazy_greedy_within, naive_greedy, naive_greedy_within, type_weights,
    Budget, Greedy, Weighting,
};
