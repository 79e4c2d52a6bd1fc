//! Core errors as the exception classes of `zipcal.errors`: one Rust type per
//! class (imported from the Python module), one match arm per core error.

use pyo3::prelude::*;
use zipcal_core as core;

pyo3::import_exception!(zipcal.errors, InvalidArgumentError);
pyo3::import_exception!(zipcal.errors, TokenizerError);
pyo3::import_exception!(zipcal.errors, InputError);
pyo3::import_exception!(zipcal.errors, NotEnoughCandidatesError);
pyo3::import_exception!(zipcal.errors, CapacityError);

/// The Python exception of a core error (`py` is kept for the call sites' shape:
/// every binding holds the GIL when it maps an error).
pub(crate) fn err(_py: Python<'_>, e: core::Error) -> PyErr {
    let message = e.to_string();
    match e {
        core::Error::InvalidArgument(_) => InvalidArgumentError::new_err(message),
        core::Error::Tokenizer { .. } => TokenizerError::new_err(message),
        core::Error::InvalidInput(_) => InputError::new_err(message),
        core::Error::NotEnoughCandidates { .. } => NotEnoughCandidatesError::new_err(message),
        core::Error::Capacity(_) => CapacityError::new_err(message),
    }
}
