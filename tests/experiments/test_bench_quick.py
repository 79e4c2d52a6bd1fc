"""The quality harness end to end, on a tiny random Llama: every cell computed,
finite (perplexities, and multiple-choice accuracies on the tasks built from held-out
text; BIG-bench's path on toy tasks in its format), reproducible, resumable; the speed
harness reports ratios to ZipCal."""

from __future__ import annotations

import argparse
import json
import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from zipcal import experiments as bench  # noqa: E402
from zipcal.experiments import quality  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def toy_bigbench(tmp_path_factory):
    """Toy multiple-choice tasks under BIG-bench's task names, installed by the real
    extraction code into a folder of their own (the harness reads $ZIPCAL_BIGBENCH_DIR)."""
    from support.bigbench import install_toy_tasks

    from zipcal.experiments import bigbench

    dest = install_toy_tasks(tmp_path_factory.mktemp("bigbench") / "tasks", bigbench.TASKS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZIPCAL_BIGBENCH_DIR", str(dest))
        yield dest


# The --quick grid, shrunk further so that the test runs it twice in about a minute.
MC_EXAMPLES = 2  # examples per task
SMALLER = [
    "--pool-size",
    "24",
    "-n",
    "4",
    "--seq-len",
    "32",
    "--eval-seq-len",
    "32",
    "--eval-tokens",
    "128",
    "--heldout-tokens",
    "64",
    "--mc-examples",
    str(MC_EXAMPLES),
    "--max-per-source",
    "40",
]


def _run(argv):
    parser = argparse.ArgumentParser(prog="zipcal")
    sub = parser.add_subparsers(dest="command")
    bench.register(sub)
    args = parser.parse_args(argv)
    assert args.func(args) == 0


def _numbers(data):
    return {k: (c["ppl"], c["acc"]) for k, c in data["cells"].items()}


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    from zipcal.experiments.mixed_corpus import DEFAULT_WIKITEXT_DIR

    if not (DEFAULT_WIKITEXT_DIR / "test.txt").is_file():
        pytest.skip("WikiText-2 test split not available")
    outs = []
    for name in ("a", "b"):
        out = tmp_path_factory.mktemp(name)
        _run(["bench", "quality", "--quick", "--tiny-model", "--out", str(out)] + SMALLER)
        outs.append(out)
    return outs


def test_quick_grid_complete_and_finite(quick_runs):
    data = json.loads((quick_runs[0] / "results.json").read_text())
    cfg = quality.quick_config()
    expected = {f"{s}|{m}|{sd}" for s in cfg.strategies for m in cfg.methods for sd in cfg.seeds}
    assert set(data["cells"]) == expected
    # every strategy (zipcal-mix included), two methods, two seeds
    assert set(cfg.strategies) == set(quality.STRATEGIES) and "zipcal-mix" in cfg.strategies
    assert len(expected) == len(quality.STRATEGIES) * 2 * 2
    for key, cell in data["cells"].items():
        assert "wikitext2-test" in cell["ppl"], key
        assert len(cell["ppl"]) >= 2, key  # WikiText-2 test + at least one held-out source
        assert all(math.isfinite(v) and v > 1 for v in cell["ppl"].values()), key
        assert set(cell["acc"]) == set(cfg.mc_tasks) | {"average"}, key
        assert all(math.isfinite(v) and 0 <= v <= 1 for v in cell["acc"].values()), key
        assert all(0 <= v <= 1 for v in cell["acc_norm"].values()), key
    assert set(data["dense"]["acc"]) == set(cfg.mc_tasks) | {"average"}
    assert all(0 <= v <= 1 for v in data["dense"]["acc"].values())
    assert {t: m["examples"] for t, m in data["mc"].items()} == {t: MC_EXAMPLES for t in cfg.mc_tasks}
    assert data["settings"]["mc_examples"] == MC_EXAMPLES and data["settings"]["mc_tasks"] == list(cfg.mc_tasks)
    for strategy in cfg.strategies:
        assert data["summary"]["selection_cost"][strategy]["select_seconds"]["mean"] > 0
    for strategy in quality.MODEL_STRATEGIES:
        assert data["summary"]["selection_cost"][strategy]["tokens_through_model"]["mean"] > 0
    assert data["summary"]["selection_cost"]["random"]["tokens_through_model"]["mean"] == 0
    # paired comparison against random exists for every other strategy
    row = data["summary"]["table"]["zipcal|wanda-50"]["wikitext2-test"]
    assert row["n"] == 2 and row["vs_random"]["n"] == 2 and row["vs_random"]["p_sign"] is not None
    acc = data["summary"]["acc_table"]["zipcal|wanda-50"]["average"]
    assert acc["n"] == 2 and acc["vs_random"]["n"] == 2 and 0 <= acc["mean"] <= 1
    assert data["summary"]["acc_metrics"] == list(cfg.mc_tasks) + ["average"]
    md = (quick_runs[0] / "report.md").read_text()
    assert "| zipcal |" in md and "Differs from the default grid" in md
    wins = data["summary"]["wins"]
    assert set(wins) == set(cfg.strategies) - {"random"}
    # every perplexity and the accuracy average, per method, paired on both seeds
    n_cells = len(cfg.methods) * (len(data["summary"]["metrics"]) + 1)
    assert all(w["cells"] == n_cells and w["better"] + w["worse"] <= n_cells for w in wins.values())
    assert f"| zipcal | {n_cells} | {wins['zipcal']['better']} (" in md
    assert "multiple-choice accuracy" in md and "| dense (uncompressed) |" in md
    assert all(t in md for t in cfg.mc_tasks)
    assert (quick_runs[0] / "quality_vs_time.png").stat().st_size > 1000


def test_quick_grid_reproducible(quick_runs):
    a = json.loads((quick_runs[0] / "results.json").read_text())
    b = json.loads((quick_runs[1] / "results.json").read_text())
    assert _numbers(a) == _numbers(b)
    assert a["dense"]["ppl"] == b["dense"]["ppl"]
    # seeds matter: the random strategy's two seeds pick different calibration data
    assert a["cells"]["random|wanda-50|0"]["ppl"] != a["cells"]["random|wanda-50|1"]["ppl"]


def test_report_only_uses_the_recorded_configuration(quick_runs):
    out = quick_runs[1]
    before = (out / "report.md").read_text()
    (out / "report.md").unlink()
    _run(["bench", "quality", "--report-only", "--out", str(out)])  # no other option
    assert (out / "report.md").read_text() == before


def test_quick_grid_resumes(quick_runs):
    out = quick_runs[0]
    data = json.loads((out / "results.json").read_text())
    victim = "cola|wanda-50|1"
    kept = {k: v for k, v in data["cells"].items() if k != victim}
    marker = -1.0
    kept["random|wanda-50|0"]["compress_seconds"] = marker  # untouched by a resume
    data["cells"] = kept
    (out / "results.json").write_text(json.dumps(data))
    _run(["bench", "quality", "--quick", "--tiny-model", "--out", str(out)] + SMALLER)
    again = json.loads((out / "results.json").read_text())
    assert victim in again["cells"]
    assert again["cells"]["random|wanda-50|0"]["compress_seconds"] == marker
    # a different budget refuses to mix into the same results
    with pytest.raises(ValueError, match="different settings"):
        _run(
            ["bench", "quality", "--quick", "--tiny-model", "--out", str(out)]
            + SMALLER[:-2]
            + ["--max-per-source", "41"]
        )
    with pytest.raises(ValueError, match="mc_examples"):
        _run(["bench", "quality", "--quick", "--tiny-model", "--out", str(out)] + SMALLER + ["--mc-examples", "3"])


def test_missing_task_files_name_the_install_command(tmp_path):
    from zipcal.experiments.bigbench import BigBenchError

    with pytest.raises(BigBenchError, match="python -m zipcal.experiments.bigbench extract"):
        _run(
            [
                "bench",
                "quality",
                "--quick",
                "--tiny-model",
                "--out",
                str(tmp_path / "out"),
                "--bigbench-dir",
                str(tmp_path / "empty"),
                "--mc-tasks",
                "heldout-lastword,social_iqa",
            ]
            + SMALLER
        )


def test_batched_choice_scores_match_eval(tmp_path):
    """The harness's batched scorer gives zipcal.eval.choice_loglikelihoods' numbers."""
    from zipcal.eval import choice_loglikelihoods, read_tasks
    from zipcal.experiments.bigbench import task_files
    from zipcal.experiments.tasks import build_tasks

    model, tok = quality.tiny_llama(0)
    items = [it for path in task_files().values() for it in read_tasks(path)[:3]]
    built = build_tasks(quality.DEFAULT_WIKITEXT_DIR / "test.txt", examples=2)
    items += [it for task in built.values() for it in task]
    items.append({"context": "", "choices": ["a", " b c"], "label": 0})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many tiny forward passes: threads only add synchronisation
    try:
        got = quality.mc_loglikelihoods(model, tok, items, max_batch_tokens=300)
        want = [choice_loglikelihoods(model, tok, it["context"], it["choices"]) for it in items]
    finally:
        torch.set_num_threads(threads)
    for ll, ref in zip(got, want):
        assert ll == pytest.approx(ref, rel=1e-4, abs=1e-3)


def test_paired_statistics():
    from zipcal.experiments.significance import paired_test, t_two_sided_p

    assert abs(t_two_sided_p(2.0, 5) - 0.10194) < 1e-4
    assert abs(t_two_sided_p(12.706, 1) - 0.05) < 1e-3
    r = paired_test([1.0, 2.0, 3.0, 4.0], [0.0, 0.5, 1.0, 1.0])
    assert r["mean_diff"] == pytest.approx(1.875)
    assert r["p_sign"] == pytest.approx(0.125)


def test_speed_reports_ratios(tmp_path):
    _run(
        [
            "bench",
            "speed",
            "--tiny-model",
            "--pool-size",
            "24",
            "-n",
            "4",
            "--seq-len",
            "32",
            "--repeats",
            "2",
            "--strategies",
            "zipcal,random,perplexity",
            "--out",
            str(tmp_path),
        ]
    )
    data = json.loads((tmp_path / "speed.json").read_text())
    st = data["strategies"]
    assert st["zipcal"]["ratio_vs_zipcal_select"] == pytest.approx(1.0)
    assert st["perplexity"]["ratio_vs_zipcal_select"] > 0 and st["perplexity"]["tokens_through_model"]["mean"] > 0
    assert len(st["perplexity"]["runs"]) == 2
    assert "ratio vs zipcal" in (tmp_path / "speed.md").read_text()


def test_time_limit_then_merge_from_another_machine(tmp_path):
    """A run that may not start any cell leaves them for later; a second run (think:
    a GPU) computes them elsewhere; --merge brings its cells, with their hardware,
    into the first folder; a save adopts cells another run wrote meanwhile."""
    from zipcal.experiments.mixed_corpus import DEFAULT_WIKITEXT_DIR

    if not (DEFAULT_WIKITEXT_DIR / "test.txt").is_file():
        pytest.skip("WikiText-2 test split not available")
    small = ["--quick", "--tiny-model", "--strategies", "random", "--methods", "wanda-50", "--seeds", "2"] + SMALLER
    here, there = tmp_path / "here", tmp_path / "there"
    _run(["bench", "quality", "--out", str(here), "--time-limit", "0"] + small)
    first = json.loads((here / "results.json").read_text())
    assert first["cells"] == {} and first["dense"] is not None
    _run(["bench", "quality", "--out", str(there)] + small)
    theirs = json.loads((there / "results.json").read_text())
    assert set(theirs["cells"]) == {"random|wanda-50|0", "random|wanda-50|1"}
    theirs["cells"]["random|wanda-50|1"]["hardware"] = "NVIDIA H100 80GB HBM3"
    (there / "results.json").write_text(json.dumps(theirs))
    _run(["bench", "quality", "--out", str(here), "--merge", str(there / "results.json")] + small)
    merged = json.loads((here / "results.json").read_text())
    assert merged["cells"] == theirs["cells"]
    assert merged["summary"]["table"]["random|wanda-50"]["wikitext2-test"]["n"] == 2
    assert "NVIDIA H100 80GB HBM3" in (here / "report.md").read_text()
    # a save adopts a cell that another writer put in the file after this run loaded it
    cfg = quality.config_from_args(argparse.Namespace(**{**vars(_args(small)), "out": str(here)}))
    data = json.loads((here / "results.json").read_text())
    on_disk = json.loads((here / "results.json").read_text())
    on_disk["cells"]["random|wanda-50|5"] = dict(on_disk["cells"]["random|wanda-50|0"], seed=5)
    (here / "results.json").write_text(json.dumps(on_disk))
    quality._commit(here, data, cfg)
    assert "random|wanda-50|5" in json.loads((here / "results.json").read_text())["cells"]
    # results of other settings are refused
    other = dict(theirs, settings=dict(theirs["settings"], n=5))
    (there / "results.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="different settings"):
        _run(["bench", "quality", "--out", str(here), "--merge", str(there / "results.json")] + small)


def _args(argv):
    parser = argparse.ArgumentParser(prog="zipcal")
    sub = parser.add_subparsers(dest="command")
    bench.register(sub)
    return parser.parse_args(["bench", "quality"] + argv)
