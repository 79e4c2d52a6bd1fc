//! `ParquetText` and `TextBatch`: the core's Parquet text reader.

use pyo3::prelude::*;
use pyo3_arrow::PyArray as ArrowArray;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use zipcal_core as core;

use crate::errors::err;

/// A Parquet file opened by the core: its schema, and batches of one string column
/// as Arrow string views (see `zipcal_core::parquet`). Iterating yields objects
/// exporting `__arrow_c_array__`; each batch is decoded with the GIL released.
#[pyclass(frozen, module = "zipcal._core")]
pub(crate) struct ParquetText {
    file: core::input::parquet::ParquetFile,
    batches: Mutex<Option<core::input::parquet::ParquetText>>,
}

#[pymethods]
impl ParquetText {
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let file = py
            .detach(|| core::input::parquet::ParquetFile::open(&path))
            .map_err(|e| err(py, e))?;
        Ok(ParquetText {
            file,
            batches: Mutex::new(None),
        })
    }

    /// The file's Arrow schema (an object exporting `__arrow_c_schema__`).
    fn schema(&self) -> pyo3_arrow::PySchema {
        pyo3_arrow::PySchema::new(self.file.schema())
    }

    /// Start reading `column` in batches of `batch_rows` rows, from `row_groups`
    /// (all when None), the first batch of `first_rows` rows when that is fewer (0:
    /// `batch_rows`); returns the object to iterate.
    #[pyo3(signature = (column, batch_rows, row_groups=None, first_rows=0))]
    fn read<'py>(
        slf: Bound<'py, Self>,
        column: &str,
        batch_rows: usize,
        row_groups: Option<Vec<usize>>,
        first_rows: usize,
    ) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let this = slf.get();
        let text = py
            .detach(|| {
                this.file
                    .text_from(column, batch_rows, row_groups, first_rows)
            })
            .map_err(|e| err(py, e))?;
        *this.lock() = Some(text);
        Ok(slf)
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<TextBatch>> {
        let next = py.detach(|| match self.lock().as_mut() {
            Some(batches) => batches.next_batch(),
            None => Err(core::Error::InvalidArgument(
                "call read(column, batch_rows) before iterating".into(),
            )),
        });
        match next {
            Ok(batch) => Ok(batch.map(|inner| TextBatch { inner })),
            Err(e) => Err(err(py, e)),
        }
    }
}

/// A batch of a Parquet text column read by [`ParquetText`]: an Arrow array (it
/// exports `__arrow_c_array__`) whose strings the Parquet decoder checked as UTF-8.
/// `Corpus.add_arrow` takes it without checking them again; Python code cannot make
/// one.
#[pyclass(frozen, module = "zipcal._core")]
pub(crate) struct TextBatch {
    pub(crate) inner: core::input::parquet::TextBatch,
}

#[pymethods]
impl TextBatch {
    fn __len__(&self) -> usize {
        self.inner.array().len()
    }

    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, pyo3::types::PyCapsule>>,
    ) -> PyResult<Bound<'py, pyo3::types::PyTuple>> {
        let array = self.inner.array();
        let field = Arc::new(arrow_schema::Field::new(
            "",
            array.data_type().clone(),
            true,
        ));
        Ok(pyo3_arrow::ffi::to_array_pycapsules(
            py,
            field,
            array.as_ref(),
            requested_schema,
        )?)
    }
}

/// The array argument of `Corpus.add_arrow`: a [`TextBatch`] of the core's Parquet
/// reader, or any Arrow string array.
#[derive(FromPyObject)]
pub(crate) enum ArrowInput {
    Checked(Py<TextBatch>),
    Any(ArrowArray),
}

impl ParquetText {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<core::input::parquet::ParquetText>> {
        self.batches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
