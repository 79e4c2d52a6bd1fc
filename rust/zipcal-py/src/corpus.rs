//! `Corpus`: a corpus being ingested batch by batch, and greedy selection on it.

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use zipcal_core as core;

use crate::errors::err;
use crate::parquet_text::ArrowInput;
use crate::segmenter::Segmenter;

/// A corpus being ingested batch by batch.
#[pyclass(module = "zipcal._core")]
pub(crate) struct Corpus {
    inner: core::Corpus,
}

fn report_dict<'py>(py: Python<'py>, r: &core::IngestReport) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("rows", r.rows)?;
    d.set_item("null_rows", r.null_rows)?;
    d.set_item("empty_rows", r.empty_rows)?;
    d.set_item("short_candidates", r.short_candidates)?;
    d.set_item("candidates", r.candidates)?;
    d.set_item("evicted_candidates", r.evicted_candidates)?;
    d.set_item("invalid_utf8_rows", r.invalid_utf8_rows)?;
    d.set_item("tokens", r.tokens)?;
    d.set_item("bytes", r.bytes)?;
    Ok(d)
}

/// What `Corpus.greedy` returns: (indices, gains, covered_types, evaluations).
type GreedyResult<'py> = (
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray1<u64>>,
    u64,
    u64,
);

#[pymethods]
impl Corpus {
    /// `unit` is "doc" or "window" (windows of `seq_len` tokens).
    #[new]
    #[pyo3(signature = (segmenter, unit = "doc", seq_len = 0, min_tokens = 1, cache_capacity = 4_000_000, task_bytes = core::corpus::DEFAULT_TASK_BYTES, max_candidates = None))]
    // One argument per Python keyword argument.
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        segmenter: &Segmenter,
        unit: &str,
        seq_len: usize,
        min_tokens: usize,
        cache_capacity: usize,
        task_bytes: usize,
        max_candidates: Option<usize>,
    ) -> PyResult<Self> {
        let unit = match unit {
            // A document's first `seq_len` tokens: what a truncated row of it feeds
            // (the whole document when no length is given).
            "doc" if seq_len == 0 => core::Unit::Doc,
            "doc" => core::Unit::Prefix(seq_len),
            "window" => core::Unit::Window(seq_len),
            other => {
                return Err(err(
                    py,
                    core::Error::InvalidArgument(format!(
                        "unknown unit {other:?} (expected \"doc\" or \"window\")"
                    )),
                ))
            }
        };
        let config = core::CorpusConfig {
            unit,
            min_tokens,
            cache_capacity,
            task_bytes: task_bytes.max(1),
            max_candidates,
        };
        let inner = core::Corpus::new(segmenter.inner.clone(), config).map_err(|e| err(py, e))?;
        Ok(Corpus { inner })
    }

    /// Ingest an Arrow string array (anything with `__arrow_c_array__`), zero-copy.
    /// Returns this batch's counters.
    /// `source`, `source_first_row` and `column` name the data in error messages;
    /// `replace` replaces invalid UTF-8 (counted) instead of raising.
    #[pyo3(signature = (array, first_row, source = "<arrow>", source_first_row = 0, column = "text", replace = false))]
    #[allow(clippy::too_many_arguments)]
    fn add_arrow<'py>(
        &mut self,
        py: Python<'py>,
        array: ArrowInput,
        first_row: u64,
        source: &str,
        source_first_row: u64,
        column: &str,
        replace: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let inner = &mut self.inner;
        let origin = core::Origin {
            source: source.to_string(),
            first_row: source_first_row,
            column: column.to_string(),
        };
        let report = py
            .detach(|| {
                let _retain = crate::alloc::Retain::new();
                match &array {
                    ArrowInput::Checked(batch) => {
                        inner.add_text_batch(&batch.get().inner, first_row)
                    }
                    ArrowInput::Any(a) => {
                        inner.add_arrow(a.array().as_ref(), first_row, &origin, replace)
                    }
                }
            })
            .map_err(|e| err(py, e))?;
        report_dict(py, &report)
    }

    /// Ingest Python strings (None = null row): the slow path for plain iterables.
    fn add_texts<'py>(
        &mut self,
        py: Python<'py>,
        texts: Vec<Option<String>>,
        first_row: u64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let inner = &mut self.inner;
        let report = py
            .detach(|| {
                let _retain = crate::alloc::Retain::new();
                let refs: Vec<Option<&str>> = texts.iter().map(|t| t.as_deref()).collect();
                inner.add_texts(&refs, first_row)
            })
            .map_err(|e| err(py, e))?;
        report_dict(py, &report)
    }

    /// Everything a merge needs from this corpus as a shard of a larger one: a dict of
    /// numpy arrays `offsets` (u64), `types` (u32), `rows`, `windows`, `tokens`, `counts`,
    /// plus `names` (words mode: the text of each type id; None with a tokenizer),
    /// `report` and `evicted_bound`. See :meth:`absorb`.
    fn shard_parts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.inner.candidates();
        let d = PyDict::new(py);
        let offsets: Vec<u64> = c.offsets().into_iter().map(|o| o as u64).collect();
        d.set_item("offsets", offsets.into_pyarray(py))?;
        d.set_item("types", c.flat_types().into_pyarray(py))?;
        d.set_item("rows", c.rows().to_vec().into_pyarray(py))?;
        d.set_item("windows", c.windows().to_vec().into_pyarray(py))?;
        d.set_item("tokens", c.tokens().to_vec().into_pyarray(py))?;
        d.set_item("counts", self.inner.counts().to_vec().into_pyarray(py))?;
        let names: Option<Vec<&str>> = self.inner.segmenter().is_words().then(|| {
            (0..self.inner.num_types() as u32)
                .map(|t| self.inner.type_name(t).unwrap_or(""))
                .collect()
        });
        d.set_item("names", names)?;
        d.set_item("report", report_dict(py, self.inner.report())?)?;
        d.set_item("evicted_bound", self.inner.evicted_bound())?;
        Ok(d)
    }

    /// Merge a shard exported by :meth:`shard_parts` of a corpus with the same segmenter
    /// and settings; its rows move by `row_offset`. Shards must come in row order.
    #[pyo3(signature = (parts, row_offset))]
    fn absorb(
        &mut self,
        py: Python<'_>,
        parts: &Bound<'_, PyDict>,
        row_offset: u64,
    ) -> PyResult<()> {
        fn get<'py>(d: &Bound<'py, PyDict>, k: &str) -> PyResult<Bound<'py, PyAny>> {
            d.get_item(k)?
                .ok_or_else(|| PyValueError::new_err(format!("shard parts lack {k:?}")))
        }
        let offsets: Vec<u64> = get(parts, "offsets")?.extract()?;
        let types: Vec<u32> = get(parts, "types")?.extract()?;
        let rows: Vec<u64> = get(parts, "rows")?.extract()?;
        let windows: Vec<u32> = get(parts, "windows")?.extract()?;
        let tokens: Vec<u64> = get(parts, "tokens")?.extract()?;
        let counts: Vec<u64> = get(parts, "counts")?.extract()?;
        let names: Option<Vec<String>> = get(parts, "names")?.extract()?;
        let evicted_bound: Option<u64> = get(parts, "evicted_bound")?.extract()?;
        let rep = get(parts, "report")?;
        let field = |k: &str| -> PyResult<u64> { get(rep.cast::<PyDict>()?, k)?.extract() };
        let report = core::IngestReport {
            rows: field("rows")?,
            null_rows: field("null_rows")?,
            empty_rows: field("empty_rows")?,
            short_candidates: field("short_candidates")?,
            candidates: field("candidates")?,
            evicted_candidates: field("evicted_candidates")?,
            invalid_utf8_rows: field("invalid_utf8_rows")?,
            tokens: field("tokens")?,
            bytes: field("bytes")?,
        };
        let inner = &mut self.inner;
        py.detach(|| {
            let _retain = crate::alloc::Retain::new();
            let num_types = names.as_ref().map_or(counts.len(), Vec::len);
            let offsets: Vec<usize> = offsets.into_iter().map(|o| o as usize).collect();
            let shard =
                core::Candidates::from_parts(offsets, types, rows, windows, tokens, num_types)?;
            let refs: Option<Vec<&str>> = names
                .as_ref()
                .map(|v| v.iter().map(String::as_str).collect());
            inner.absorb(
                shard,
                &counts,
                refs.as_deref(),
                row_offset,
                &report,
                evicted_bound,
            )
        })
        .map_err(|e| err(py, e))
    }

    /// Counters over everything ingested.
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        report_dict(py, self.inner.report())
    }

    /// Change the candidate cap (None = keep all); compacts at once if needed.
    #[pyo3(signature = (max_candidates))]
    fn set_max_candidates(&mut self, max_candidates: Option<usize>) {
        self.inner.set_max_candidates(max_candidates)
    }

    /// Finish ingestion (applies the candidate cap exactly).
    fn finish(&mut self) {
        self.inner.finish()
    }

    /// Largest type-set size among evicted candidates (None: nothing evicted).
    #[getter]
    fn evicted_bound(&self) -> Option<u64> {
        self.inner.evicted_bound()
    }

    /// Whether picks (gains, set sizes) provably equal greedy on the whole corpus.
    fn certifies(&self, gains: Vec<u64>, sizes: Vec<u64>) -> bool {
        let picks: Vec<(u64, u64)> = gains.into_iter().zip(sizes).collect();
        self.inner.certifies(&picks)
    }

    fn __len__(&self) -> usize {
        self.inner.candidates().len()
    }

    #[getter]
    fn num_types(&self) -> usize {
        self.inner.num_types()
    }

    #[getter]
    fn cache_len(&self) -> usize {
        self.inner.cache_len()
    }

    /// Source row of each candidate.
    fn rows<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.inner.candidates().rows().to_vec().into_pyarray(py)
    }

    /// Window index of each candidate (0 for documents).
    fn windows<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.inner.candidates().windows().to_vec().into_pyarray(py)
    }

    /// Token count of each candidate.
    fn tokens<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.inner.candidates().tokens().to_vec().into_pyarray(py)
    }

    /// Number of distinct types of each candidate.
    fn set_sizes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        let c = self.inner.candidates();
        (0..c.len())
            .map(|i| c.set(i).len() as u64)
            .collect::<Vec<_>>()
            .into_pyarray(py)
    }

    /// The type sets of all candidates as CSR arrays `(offsets, types)`: candidate
    /// `i` holds `types[offsets[i]..offsets[i + 1]]` (sorted, distinct).
    #[allow(clippy::type_complexity)]
    fn type_sets<'py>(
        &self,
        py: Python<'py>,
    ) -> (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray1<u32>>) {
        let c = self.inner.candidates();
        let mut offsets = Vec::with_capacity(c.len() + 1);
        offsets.push(0u64);
        let mut flat: Vec<u32> = Vec::new();
        for i in 0..c.len() {
            flat.extend_from_slice(c.set(i));
            offsets.push(flat.len() as u64);
        }
        (offsets.into_pyarray(py), flat.into_pyarray(py))
    }

    /// Distinct type ids of candidate `i`.
    fn candidate_types<'py>(
        &self,
        py: Python<'py>,
        i: usize,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let c = self.inner.candidates();
        if i >= c.len() {
            return Err(err(
                py,
                core::Error::InvalidArgument(format!(
                    "candidate {i} out of range ({} candidates)",
                    c.len()
                )),
            ));
        }
        Ok(c.set(i).to_vec().into_pyarray(py))
    }

    /// Token occurrences of each type over all candidates.
    fn counts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.inner.counts().to_vec().into_pyarray(py)
    }

    /// Text of type `id`.
    fn type_name(&self, id: u32) -> Option<String> {
        self.inner.type_name(id).map(str::to_string)
    }

    /// Type names, index = type id.
    fn type_names(&self) -> Vec<String> {
        (0..self.inner.num_types() as u32)
            .map(|t| self.inner.type_name(t).unwrap_or_default().to_string())
            .collect()
    }

    /// Type ids of one text through the ingestion path (ids past `num_types` for unseen words).
    fn type_sequence<'py>(
        &self,
        py: Python<'py>,
        text: &str,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let inner = &self.inner;
        let seq = py
            .detach(|| inner.type_sequence(text))
            .map_err(|e| err(py, e))?;
        Ok(seq.into_pyarray(py))
    }

    /// `type_sequence` of each text, computed in parallel.
    fn type_sequences<'py>(
        &self,
        py: Python<'py>,
        texts: Vec<String>,
    ) -> PyResult<Vec<Bound<'py, PyArray1<u32>>>> {
        let inner = &self.inner;
        let seqs = py
            .detach(|| {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                inner.type_sequences(&refs)
            })
            .map_err(|e| err(py, e))?;
        Ok(seqs.into_iter().map(|s| s.into_pyarray(py)).collect())
    }

    /// Integer type weights ("uniform" or "zipf").
    fn weights<'py>(
        &self,
        py: Python<'py>,
        weighting: &str,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let w = core::Weighting::parse(weighting).map_err(|e| err(py, e))?;
        Ok(core::type_weights(self.inner.counts(), w).into_pyarray(py))
    }

    /// Exact (lazy) greedy coverage selection of `n` candidates.
    /// Returns (indices, gains, covered_types, evaluations).
    /// With `costs` (one per candidate) and `budget`, picking stops as soon as the
    /// picks' costs reach the budget (`n` is then an upper bound).
    /// Types in `exclude` weigh nothing (for example the tokens of a chat template).
    #[pyo3(signature = (n, weighting = "uniform", naive = false, costs = None, budget = None, exclude = None))]
    #[allow(clippy::too_many_arguments)]
    fn greedy<'py>(
        &self,
        py: Python<'py>,
        n: i64,
        weighting: &str,
        naive: bool,
        costs: Option<PyReadonlyArray1<'py, u64>>,
        budget: Option<u64>,
        exclude: Option<PyReadonlyArray1<'py, u32>>,
    ) -> PyResult<GreedyResult<'py>> {
        if n <= 0 {
            return Err(err(
                py,
                core::Error::InvalidArgument(format!("n must be > 0, got {n}")),
            ));
        }
        let w = core::Weighting::parse(weighting).map_err(|e| err(py, e))?;
        let costs: Option<Vec<u64>> = costs.map(|c| c.as_array().to_vec());
        let limit = match (&costs, budget) {
            (Some(c), Some(tokens)) => Some(core::Budget { costs: c, tokens }),
            (None, None) => None,
            _ => {
                return Err(err(
                    py,
                    core::Error::InvalidArgument("costs and budget go together".into()),
                ))
            }
        };
        let exclude: Vec<u32> = exclude.map(|e| e.as_array().to_vec()).unwrap_or_default();
        let types = self.inner.counts().len();
        if let Some(&t) = exclude.iter().find(|&&t| t as usize >= types) {
            return Err(err(
                py,
                core::Error::InvalidArgument(format!(
                    "excluded type id {t} is not a type of this corpus ({types} types)"
                )),
            ));
        }
        let inner = &self.inner;
        let g = py
            .detach(|| {
                let mut weights = core::type_weights(inner.counts(), w);
                for &t in &exclude {
                    weights[t as usize] = 0;
                }
                if naive {
                    core::naive_greedy_within(inner.candidates(), &weights, n as usize, limit)
                } else {
                    core::lazy_greedy_within(inner.candidates(), &weights, n as usize, limit)
                }
            })
            .map_err(|e| err(py, e))?;
        let order: Vec<u64> = g.order.iter().map(|&i| i as u64).collect();
        Ok((
            order.into_pyarray(py),
            g.gains.into_pyarray(py),
            g.covered_types,
            g.evaluations,
        ))
    }

    /// (distinct types, total weight) covered by the candidates `indices`.
    #[pyo3(signature = (indices, weighting = "uniform"))]
    fn coverage(
        &self,
        py: Python<'_>,
        indices: Vec<usize>,
        weighting: &str,
    ) -> PyResult<(u64, u64)> {
        let w = core::Weighting::parse(weighting).map_err(|e| err(py, e))?;
        let weights = core::type_weights(self.inner.counts(), w);
        core::coverage(self.inner.candidates(), &weights, &indices).map_err(|e| err(py, e))
    }
}
