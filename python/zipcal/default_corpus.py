"""The embedded default corpus: the Python documentation's topic pages.

Every Python installation ships ``pydoc_data.topics`` (the "topics" section of the
official Python documentation, PSF license): about 80 pages of English prose and
code, split here into their ~2,600 paragraphs. It lets ``zipcal select`` run with
no input, offline, on real text.
"""

from __future__ import annotations

from typing import List

DESCRIPTION = (
    "the Python documentation topics shipped with every Python (pydoc_data.topics), one document per paragraph"
)


def default_corpus() -> List[str]:
    """The paragraphs of ``pydoc_data.topics``, in a fixed order."""
    from pydoc_data.topics import topics

    docs: List[str] = []
    for key in sorted(topics):
        for para in topics[key].split("\n\n"):
            para = para.strip("\n")
            if para.strip():
                docs.append(para)
    return docs
