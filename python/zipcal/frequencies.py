"""Statistics of type frequencies (plain functions over count arrays): tokens,
types, type-token ratio, Zipf exponent, rank-frequency plots."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np


def zipf_exponent(counts: np.ndarray) -> Optional[float]:
    """Zipf exponent ``s`` of a frequency vector: the least-squares slope of
    log(frequency) on log(rank), negated (frequency ~ rank**-s). None with < 2 types."""
    c = np.asarray(counts)
    if c.dtype.kind in "ui":
        return _zipf_exponent_of_integers(c)
    f = np.sort(c.astype(np.float64)[c > 0])[::-1]
    if len(f) < 2:
        return None
    # The slope in closed form, on centred values, without BLAS: np.polyfit (and
    # np.dot) go through OpenBLAS, whose threads then spin for a while beside ours.
    x = _centred_log_ranks(len(f))
    slope = float((x * (np.log(f) - np.log(f).mean())).sum() / (x * x).sum())
    return -slope


def _centred_log_ranks(n: int) -> np.ndarray:
    x = np.log(np.arange(1, n + 1, dtype=np.float64))
    x -= x.mean()
    return x


# Integer counts below this are grouped by value instead of sorted.
_GROUPED_COUNTS = 1 << 16


def _zipf_exponent_of_integers(c: np.ndarray) -> Optional[float]:
    """:func:`zipf_exponent` of integer counts without sorting them all: most counts
    are small, and equal counts hold a run of consecutive ranks, so the small ones
    are grouped by value (``bincount``) and each group contributes its log-frequency
    times the sum of its centred log-ranks (a difference of prefix sums). Only the
    few counts of ``_GROUPED_COUNTS`` or more are sorted."""
    c = c[c > 0]
    n = len(c)
    if n < 2:
        return None
    large = c >= _GROUPED_COUNTS
    big = np.sort(c[large].astype(np.float64))[::-1]
    hist = np.bincount(c[~large].astype(np.int64), minlength=1)
    small = np.flatnonzero(hist)[::-1]
    values = np.concatenate([big, small.astype(np.float64)])
    runs = np.concatenate([np.ones(len(big), dtype=np.int64), hist[small]])
    ends = np.cumsum(runs)
    x = _centred_log_ranks(n)
    prefix = np.concatenate([[0.0], np.cumsum(x)])
    y = np.log(values)
    y_mean = float((runs * y).sum()) / n
    # sum over ranks of x * (y - mean(y)) = sum over runs of (y - mean(y)) * (sum of x in the run)
    numerator = float(((y - y_mean) * (prefix[ends] - prefix[ends - runs])).sum())
    return -numerator / float((x * x).sum())


def frequency_summary(counts: np.ndarray) -> Dict[str, Any]:
    counts = np.asarray(counts)
    tokens = int(counts.sum())
    types = int((counts > 0).sum())
    return {
        "tokens": tokens,
        "types": types,
        "type_token_ratio": (types / tokens) if tokens else None,
        "zipf_exponent": zipf_exponent(counts),
    }


def plot_rank_frequency(series: Sequence[Tuple[str, np.ndarray]], path: str) -> None:
    """Write a log-log rank-frequency plot of ``(label, type counts)`` series to
    ``path`` (PNG)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from .errors import MissingDependencyError

        raise MissingDependencyError("--plot needs matplotlib: pip install 'zipcal[plot]'") from None
    from .files import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, counts in series:
        f = np.sort(np.asarray(counts, dtype=np.float64)[np.asarray(counts) > 0])[::-1]
        if len(f) == 0:
            continue
        s = zipf_exponent(counts)
        ax.loglog(np.arange(1, len(f) + 1), f / f.sum(), label=f"{label}, s={s:.2f}" if s else label)
    ax.set_xlabel("rank")
    ax.set_ylabel("relative frequency")
    ax.set_title("Rank-frequency of types")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
