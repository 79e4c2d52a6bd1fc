//! `Segmenter`: how text becomes types (words mode or a `tokenizer.json`).

use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::sync::Arc;
use zipcal_core as core;

use crate::errors::err;

/// How text becomes types: words mode or a `tokenizer.json`.
#[pyclass(frozen, module = "zipcal._core")]
pub(crate) struct Segmenter {
    pub(crate) inner: Arc<core::Segmenter>,
}

impl Segmenter {
    /// Type ids of `text` computed by `push` (a [`core::segment::TokenizerTypes`] method), the
    /// GIL released; `what` names the calling method in the error of words mode.
    fn types_by<'py>(
        &self,
        py: Python<'py>,
        text: &str,
        what: &str,
        push: fn(&core::segment::TokenizerTypes, &str, &mut Vec<u32>) -> core::Result<()>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let t = self.inner.tokenizer().ok_or_else(|| {
            PyValueError::new_err(format!(
                "{what} needs a tokenizer (words mode has no fixed types)"
            ))
        })?;
        let mut out = Vec::new();
        py.detach(|| push(t, text, &mut out))
            .map_err(|e| err(py, e))?;
        Ok(out.into_pyarray(py))
    }
}

#[pymethods]
impl Segmenter {
    /// Tokenizer-free mode: lowercased Unicode (UAX #29) words.
    #[staticmethod]
    fn words() -> Self {
        Segmenter {
            inner: Arc::new(core::Segmenter::Words),
        }
    }

    /// Load a `tokenizer.json` file.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: &str) -> PyResult<Self> {
        let seg = py
            .detach(|| core::Segmenter::from_tokenizer_file(path))
            .map_err(|e| err(py, e))?;
        Ok(Segmenter {
            inner: Arc::new(seg),
        })
    }

    /// Load a tokenizer from the JSON text of a `tokenizer.json`.
    #[staticmethod]
    #[pyo3(signature = (json, name = "<tokenizer>"))]
    fn from_json(py: Python<'_>, json: &str, name: &str) -> PyResult<Self> {
        let seg = py
            .detach(|| core::Segmenter::from_tokenizer_json(json, name))
            .map_err(|e| err(py, e))?;
        Ok(Segmenter {
            inner: Arc::new(seg),
        })
    }

    #[getter]
    fn is_words(&self) -> bool {
        self.inner.is_words()
    }

    /// Whether chunk-level caching is exact (and used) for this tokenizer.
    #[getter]
    fn chunkable(&self) -> bool {
        self.inner.tokenizer().is_none_or(|t| t.chunkable())
    }

    /// Whether ASCII chunks take the byte-level BPE fast path (GPT-2-family tokenizers).
    #[getter]
    fn fast_path(&self) -> bool {
        self.inner.tokenizer().is_some_and(|t| t.has_fast_path())
    }

    /// Type ids of `text` as ingestion computes them for new chunks: chunk by chunk
    /// (when chunkable), each through the fast path when it applies, without the cache.
    fn types_chunked<'py>(
        &self,
        py: Python<'py>,
        text: &str,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        self.types_by(
            py,
            text,
            "types_chunked",
            core::segment::TokenizerTypes::push_types_chunked,
        )
    }

    /// Type names of a tokenizer (index = type id); empty in words mode.
    fn type_names(&self) -> Vec<String> {
        self.inner
            .tokenizer()
            .map(|t| t.type_names().to_vec())
            .unwrap_or_default()
    }

    /// `token id -> type id` table (`2**32 - 1` = no type); empty in words mode.
    fn token_types<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.inner
            .tokenizer()
            .map(|t| t.token_type().to_vec())
            .unwrap_or_default()
            .into_pyarray(py)
    }

    /// Type ids of `text` from encoding it whole (no chunk cache).
    fn types_plain<'py>(&self, py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyArray1<u32>>> {
        self.types_by(
            py,
            text,
            "types_plain",
            core::segment::TokenizerTypes::push_types_plain,
        )
    }

    /// Token ids of each text (special tokens added by the post-processor if asked).
    #[pyo3(signature = (texts, add_special_tokens = true))]
    fn encode_batch<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
        add_special_tokens: bool,
    ) -> PyResult<Vec<Bound<'py, PyArray1<i64>>>> {
        let t = self
            .inner
            .tokenizer()
            .ok_or_else(|| PyValueError::new_err("encode_batch needs a tokenizer"))?;
        let ids: Result<Vec<Vec<i64>>, String> = py.detach(|| {
            use rayon_free::par_map;
            par_map(&texts, |s| {
                t.tokenizer()
                    .encode_fast(s.as_str(), add_special_tokens)
                    .map(|e| e.get_ids().iter().map(|&i| i64::from(i)).collect())
                    .map_err(|e| e.to_string())
            })
        });
        let ids = ids.map_err(|m| {
            err(
                py,
                core::Error::InvalidInput(format!("tokenizer failed: {m}")),
            )
        })?;
        Ok(ids.into_iter().map(|v| v.into_pyarray(py)).collect())
    }

    /// Byte spans (start, end) of the tokens of `text` in `text`, without special tokens.
    fn token_spans(&self, py: Python<'_>, text: &str) -> PyResult<Vec<(usize, usize)>> {
        let t = self
            .inner
            .tokenizer()
            .ok_or_else(|| PyValueError::new_err("token_spans needs a tokenizer"))?;
        token_offsets(py, t, text)
    }

    /// Byte span (start, end) in `text` of tokens `lo..hi` (words in words mode); None
    /// when the range is empty.
    fn window_span(
        &self,
        py: Python<'_>,
        text: &str,
        lo: usize,
        hi: usize,
    ) -> PyResult<Option<(usize, usize)>> {
        if lo >= hi {
            return Ok(None);
        }
        match self.inner.tokenizer() {
            None => Ok(py.detach(|| {
                let mut spans = core::text::words_indices(text).skip(lo).take(hi - lo);
                let first = spans.next()?;
                let last = spans.last().unwrap_or(first);
                Some((first.0, last.1))
            })),
            Some(t) => {
                let offsets = token_offsets(py, t, text)?;
                let hi = hi.min(offsets.len());
                Ok((lo < hi).then(|| (offsets[lo].0, offsets[hi - 1].1)))
            }
        }
    }

    /// Id of a token string, if it is in the vocabulary.
    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner
            .tokenizer()
            .and_then(|t| t.tokenizer().token_to_id(token))
    }

    /// Vocabulary size including added tokens (0 in words mode).
    fn vocab_size(&self) -> usize {
        self.inner.tokenizer().map_or(0, |t| t.token_type().len())
    }
}

/// Byte offsets of the tokens of `text` (whole-text encoding, no special tokens).
fn token_offsets(
    py: Python<'_>,
    t: &core::segment::TokenizerTypes,
    text: &str,
) -> PyResult<Vec<(usize, usize)>> {
    let enc = py
        .detach(|| t.tokenizer().encode(text, false))
        .map_err(|e| {
            err(
                py,
                core::Error::InvalidInput(format!("tokenizer failed: {e}")),
            )
        })?;
    Ok(enc.get_offsets().to_vec())
}

mod rayon_free {
    /// Map over a slice on the zipcal pool, keeping order, stopping at the first error.
    pub fn par_map<T: Sync, R: Send, E: Send>(
        items: &[T],
        f: impl Fn(&T) -> Result<R, E> + Sync + Send,
    ) -> Result<Vec<R>, E> {
        zipcal_core::threads::install(|| {
            use rayon::prelude::*;
            items.par_iter().map(&f).collect()
        })
    }
}
