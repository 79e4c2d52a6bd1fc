"""The quality report's per-strategy count of cells won against random: direction
(lower perplexity and higher accuracy are wins), significance, and only paired seeds."""

from __future__ import annotations

from zipcal.experiments import quality
from zipcal.experiments.quality import MC_AVERAGE


def _cell(ppl_wiki, ppl_code, acc):
    return {
        "ppl": {"wikitext2-test": ppl_wiki, "heldout-python-code": ppl_code},
        "acc": {"heldout-lastword": acc, MC_AVERAGE: acc},
    }


def _summary(cells, strategies=("random", "ours"), methods=("wanda-50",), seeds=(0, 1, 2, 3)):
    cfg = quality.QualityConfig(strategies=list(strategies), methods=list(methods), seeds=list(seeds))
    data = {"cells": cells, "selections": {}}
    return quality.summarize(data, cfg)


def test_wins_count_direction_and_significance():
    cells = {}
    for sd in range(4):
        cells[f"random|wanda-50|{sd}"] = _cell(50.0 + sd, 15.0, 0.50 + 0.01 * sd)
        # clearly lower WikiText-2 perplexity every seed (significant win), clearly
        # higher code perplexity (significant loss), accuracy up on average but noisy
        cells[f"ours|wanda-50|{sd}"] = _cell(
            49.0 + sd + 0.01 * (sd % 2), 16.0 + 0.01 * sd, 0.50 + 0.01 * sd + (0.03, -0.01)[sd % 2]
        )
    wins = _summary(cells)["wins"]
    assert set(wins) == {"ours"}
    w = wins["ours"]
    assert w["cells"] == 3  # two perplexities and the accuracy average (the task is not counted twice)
    assert (w["better"], w["worse"]) == (2, 1)
    assert (w["significantly_better"], w["significantly_worse"]) == (1, 1)


def test_wins_use_only_seeds_paired_with_random_and_render():
    cells = {f"random|wanda-50|{sd}": _cell(50.0, 15.0, 0.5) for sd in (0, 1)}
    cells.update({f"ours|wanda-50|{sd}": _cell(51.0, 14.0, 0.5) for sd in (2, 3)})
    s = _summary(cells)
    assert s["wins"]["ours"]["cells"] == 0  # no seed in common: nothing to compare
    cells.update({"ours|wanda-50|0": _cell(49.0, 16.0, 0.5)})
    s = _summary(cells)
    w = s["wins"]["ours"]
    assert (w["cells"], w["better"], w["worse"]) == (3, 1, 1)  # equal accuracy is neither


def test_report_has_the_wins_table(tmp_path):
    cells = {}
    for sd in range(3):
        cells[f"random|wanda-50|{sd}"] = _cell(50.0 + sd, 15.0 + sd, 0.5)
        cells[f"ours|wanda-50|{sd}"] = _cell(49.0 + sd, 15.5 + sd, 0.52)
    cfg = quality.QualityConfig(strategies=["random", "ours"], methods=["wanda-50"], seeds=[0, 1, 2])
    data = {
        "cells": cells,
        "selections": {},
        "pool": {"documents": {}, "skipped_sources": []},
        "environment": {},
    }
    data["summary"] = quality.summarize(data, cfg)
    quality.write_markdown(tmp_path / "report.md", data, cfg)
    text = (tmp_path / "report.md").read_text()
    assert "## Against random, cell by cell" in text
    assert "| ours | 3 | 2 (2) | 1 (1) |" in text
