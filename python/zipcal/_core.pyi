"""Rust core of zipcal (compiled extension). Heavy work runs without the GIL."""

from typing import Any, Dict, List, Optional, Sequence, Tuple, final

import numpy as np
import numpy.typing as npt

__all__ = [
    "NO_TYPE",
    "Corpus",
    "ParquetText",
    "Segmenter",
    "TextBatch",
    "chunks",
    "get_num_threads",
    "normalize_type",
    "segment_words",
    "set_num_threads",
    "word_spans",
    "__version__",
]

NO_TYPE: int
"""Type id of tokens without a type (special or whitespace-only tokens): 2**32 - 1."""
__version__: str

@final
class Segmenter:
    """How text becomes types: tokenizer-free words or a ``tokenizer.json``."""

    @staticmethod
    def words() -> Segmenter:
        """Lowercased Unicode (UAX #29) words."""
    @staticmethod
    def from_file(path: str) -> Segmenter:
        """Load a ``tokenizer.json`` file (raises TokenizerError)."""
    @staticmethod
    def from_json(json: str, name: str = "<tokenizer>") -> Segmenter:
        """Load a tokenizer from the text of a ``tokenizer.json``."""
    @property
    def is_words(self) -> bool: ...
    @property
    def chunkable(self) -> bool:
        """Whether exact chunk-level caching is used for this tokenizer."""
    @property
    def fast_path(self) -> bool:
        """Whether ASCII chunks take the byte-level BPE fast path (GPT-2-family tokenizers)."""
    def types_chunked(self, text: str) -> npt.NDArray[np.uint32]:
        """Type ids of ``text`` computed chunk by chunk as ingestion does, without the cache."""
    def type_names(self) -> List[str]:
        """Type strings of a tokenizer, index = type id (empty in words mode)."""
    def token_types(self) -> npt.NDArray[np.uint32]:
        """``token id -> type id`` table (NO_TYPE = no type)."""
    def types_plain(self, text: str) -> npt.NDArray[np.uint32]:
        """Type ids of ``text`` from encoding it whole, without the chunk cache."""
    def encode_batch(self, texts: List[str], add_special_tokens: bool = True) -> List[npt.NDArray[np.int64]]:
        """Token ids of each text (in parallel)."""
    def token_spans(self, text: str) -> List[Tuple[int, int]]:
        """Byte spans of the tokens of ``text``."""
    def window_span(self, text: str, lo: int, hi: int) -> Optional[Tuple[int, int]]:
        """Byte span of tokens (words in words mode) ``lo..hi`` of ``text``; None if empty."""
    def token_to_id(self, token: str) -> Optional[int]: ...
    def vocab_size(self) -> int: ...

@final
class TextBatch:
    """A batch of a Parquet text column read by :class:`ParquetText`: Arrow string views
    (exports ``__arrow_c_array__``) whose text the Parquet decoder checked as UTF-8.
    :meth:`Corpus.add_arrow` takes it without checking the text again."""

    def __len__(self) -> int: ...
    def __arrow_c_array__(self, requested_schema: Any = None) -> Tuple[Any, Any]: ...

@final
class ParquetText:
    """A Parquet file opened by the core: its schema, and batches of one string column as
    :class:`TextBatch` es (Arrow string views). A column not annotated as UTF-8 text in
    the Parquet schema is refused."""

    def __new__(cls, path: str) -> "ParquetText": ...
    def schema(self) -> Any:
        """The file's Arrow schema (exports ``__arrow_c_schema__``)."""
    def read(
        self, column: str, batch_rows: int, row_groups: Optional[List[int]] = None, first_rows: int = 0
    ) -> "ParquetText":
        """Start reading ``column`` (a first batch of ``first_rows`` rows when that is fewer
        than ``batch_rows``); returns the object to iterate."""
    def __iter__(self) -> "ParquetText": ...
    def __next__(self) -> TextBatch: ...

@final
class Corpus:
    """A corpus ingested batch by batch: candidate type sets and pool type counts."""

    def __new__(
        cls,
        segmenter: Segmenter,
        unit: str = "doc",
        seq_len: int = 0,
        min_tokens: int = 1,
        cache_capacity: int = 4000000,
        task_bytes: int = ...,
        max_candidates: Optional[int] = None,
    ) -> Corpus: ...
    def set_max_candidates(self, max_candidates: Optional[int]) -> None:
        """Change the candidate cap (None = keep all)."""
    def finish(self) -> None:
        """Finish ingestion: apply the candidate cap exactly."""
    @property
    def evicted_bound(self) -> Optional[int]:
        """Largest type-set size among evicted candidates (None: nothing evicted)."""
    def certifies(self, gains: List[int], sizes: List[int]) -> bool:
        """Whether picks with these gains and set sizes provably equal greedy on the whole corpus."""
    def add_arrow(
        self,
        array: Any,
        first_row: int,
        source: str = "<arrow>",
        source_first_row: int = 0,
        column: str = "text",
        replace: bool = False,
    ) -> Dict[str, int]:
        """Ingest an Arrow string array (``__arrow_c_array__``) zero-copy; returns batch counters.
        Invalid UTF-8 raises InputError naming source, row and column, or is replaced and
        counted with ``replace=True``. A :class:`TextBatch` is taken as checked."""
    def add_texts(self, texts: Sequence[Optional[str]], first_row: int) -> Dict[str, int]:
        """Ingest Python strings (None = null row)."""
    def report(self) -> Dict[str, int]:
        """Counters over everything ingested (rows, null_rows, empty_rows, short_candidates,
        candidates, tokens, bytes)."""
    def shard_parts(self) -> Dict[str, Any]:
        """This corpus as a shard of a larger one: numpy arrays ``offsets``, ``types``,
        ``rows``, ``windows``, ``tokens``, ``counts``; ``names`` (words mode: each type's
        text; None with a tokenizer); ``report``; ``evicted_bound``."""
    def absorb(self, parts: Dict[str, Any], row_offset: int) -> None:
        """Merge a shard from :meth:`shard_parts` of a corpus with the same segmenter and
        settings, moving its rows by ``row_offset``. Shards must come in row order."""
    def __len__(self) -> int: ...
    @property
    def num_types(self) -> int: ...
    @property
    def cache_len(self) -> int: ...
    def rows(self) -> npt.NDArray[np.uint64]: ...
    def windows(self) -> npt.NDArray[np.uint32]: ...
    def tokens(self) -> npt.NDArray[np.uint64]: ...
    def set_sizes(self) -> npt.NDArray[np.uint64]: ...
    def type_sets(self) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32]]: ...
    def candidate_types(self, i: int) -> npt.NDArray[np.uint32]: ...
    def counts(self) -> npt.NDArray[np.uint64]: ...
    def type_name(self, id: int) -> Optional[str]: ...
    def type_names(self) -> List[str]: ...
    def type_sequence(self, text: str) -> npt.NDArray[np.uint32]:
        """Type ids of one text through the ingestion path (unseen words get ids >= num_types)."""
    def type_sequences(self, texts: List[str]) -> List[npt.NDArray[np.uint32]]:
        """``type_sequence`` of each text, computed in parallel."""
    def weights(self, weighting: str) -> npt.NDArray[np.uint64]: ...
    def greedy(
        self,
        n: int,
        weighting: str = "uniform",
        naive: bool = False,
        costs: Optional[npt.NDArray[np.uint64]] = None,
        budget: Optional[int] = None,
        exclude: Optional[npt.NDArray[np.uint32]] = None,
    ) -> Tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64], int, int]:
        """Exact greedy coverage: (indices, gains, covered types, gain evaluations).
        With ``costs`` (one per candidate) and ``budget``, picking stops as soon as the
        picks' costs reach the budget (``n`` is then an upper bound). Types in
        ``exclude`` weigh nothing."""
    def coverage(self, indices: List[int], weighting: str = "uniform") -> Tuple[int, int]:
        """(distinct types, total weight) covered by the given candidates."""

def segment_words(text: str) -> List[str]: ...
def word_spans(text: str) -> List[Tuple[int, int]]: ...
def normalize_type(text: str) -> Optional[str]: ...
def chunks(text: str) -> List[str]: ...
def set_num_threads(n: int) -> int:
    """Set worker threads (0 = default); returns the previous setting."""

def get_num_threads() -> int: ...
