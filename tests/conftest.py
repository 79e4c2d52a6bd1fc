"""Shared fixtures of the selection-engine tests."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import List

import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
WIKITEXT_VALID = (REPO_ROOT / ".." / "shared" / "data" / "wikitext-2" / "valid.txt").resolve()

if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

# Tests never reach a model hub: hub names resolve from the local cache only. The hub
# tests that exercise network errors turn this off themselves (against local servers).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Keep Hypothesis' cache out of the working tree.
try:
    from hypothesis.configuration import set_hypothesis_home_dir

    set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "zipcal-tests-hypothesis")
except ImportError:  # pragma: no cover
    pass


def wikitext_path() -> Path:
    if not WIKITEXT_VALID.is_file():
        pytest.skip(f"WikiText-2 validation text not found at {WIKITEXT_VALID}")
    return WIKITEXT_VALID


@pytest.fixture(scope="session")
def wikitext_valid() -> Path:
    return wikitext_path()


@pytest.fixture(scope="session")
def wikitext_lines(wikitext_valid: Path) -> List[str]:
    """Non-empty lines of WikiText-2 valid (as the line splitter sees them)."""
    return [l for l in wikitext_valid.read_text(encoding="utf-8").split("\n") if l.strip()]


SAMPLE_DOCS: List[str] = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "A lazy afternoon: the dog sleeps, the fox waits, and nobody jumps at all.",
    "Die Füße des Bären sind groß; er läuft über die Straße nach München.",
    "Le garçon a mangé une crème brûlée à l'hôtel près de la forêt.",
    "Москва — столица России, а Санкт-Петербург стоит на Неве.",
    "東京は日本の首都です。大阪は関西の中心です。",
    "def f(x):\n    return x ** 2  # square it\n\nprint(f(3))",
    "Numbers 3.14, 2,000 and 1e-9 appear in tables; so do e-mail a.b@c.d and URLs.",
    "Emoji 👍🏽 and 👩‍👩‍👧 families, flags 🇺🇸 🇫🇷, and combining e\u0301 accents.",
    "Double  spaces,\ttabs\tand\nnew lines\n\n in one document.",
    "The river bank was lazy and brown; foxes and dogs rarely meet there.",
    "Statistics of words follow Zipf's law: few types are frequent, most are rare.",
    "Calibration data for pruning should cover many different tokens and words.",
    "ΣΊΣΥΦΟΣ και ΟΔΥΣΣΕΥΣ: Greek capitals lowercase to final sigma forms.",
    "İstanbul ve Ankara; ŞEHİR isimleri büyük harfle yazılır.",
    "Straße STRASSE straße: German sharp s and its capital forms differ.",
]


@pytest.fixture(scope="session")
def sample_docs() -> List[str]:
    return list(SAMPLE_DOCS)
