"""BIG-bench task extraction for the quality experiment: conversion, atomic and
idempotent extraction from an sdist, the installed task files, and running the
module standalone (as scripts/env.sh does before the package is built)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.bigbench import fake_sdist

from zipcal.eval import read_tasks
from zipcal.experiments import bigbench

MODULE_FILE = Path(bigbench.__file__)

TOY_TASK = {
    "name": "toy",
    "task_prefix": "Answer the question.",
    "example_input_prefix": "\nQuestion: ",
    "examples": [
        {"input": "How many legs does a dog have?", "target_scores": {"four": 1, "two": 0, "six": 0}},
        {"input": "How many legs does a dog have?", "target_scores": {"four": 1, "two": 0, "six": 0}},  # duplicate
        {"input": "Is the sky green?", "target_scores": {"no": 1.0, "yes": 0.0}},
        {"input": "Ambiguous?", "target_scores": {"a": 1, "b": 1, "c": 0}},  # no unique best: dropped
        {"input": "Free text", "target": "anything"},  # not multiple choice: dropped
    ]
    + [
        {"input": f"Pick {k}.", "target_scores": {str(k): 1, str(k + 1): 0, str(k + 2): 0, str(k + 3): 0}}
        for k in range(20)
    ],
}


def test_convert_task_format_and_labels():
    items = bigbench.convert_task(TOY_TASK, "toy")
    assert len(items) == 22  # duplicate, tie and free-text examples dropped
    assert read_tasks(items) == items
    for it in items:
        assert not it["context"][0].isspace() and it["context"].endswith("A:")
        assert it["context"].startswith("Answer the question.\nQuestion: ")
        assert "choice:" not in it["context"]  # cloze form: the choices are not listed
    # BIG-bench's own form lists them (append_choices_to_input defaults to true)
    listed = bigbench.convert_task(TOY_TASK, "toy", append_choices=None)
    assert [it["choices"] for it in listed] == [it["choices"] for it in items]
    for it in listed:
        assert it["context"].endswith("\n  choice: " + "\n  choice: ".join(it["choices"]) + "\nA:")
    by_input = {it["context"].split("Question: ")[1].split("\n")[0]: it for it in items}
    dog = by_input["How many legs does a dog have?"]
    assert dog["choices"][dog["label"]] == "four"
    picks = [it for q, it in by_input.items() if q.startswith("Pick ")]
    assert all(
        it["choices"][it["label"]] == q.split()[1].rstrip(".") for q, it in by_input.items() if q.startswith("Pick ")
    )
    # choices are shuffled (the correct one is listed first in the file) and examples too
    assert len({it["label"] for it in picks}) > 1
    assert [it["id"] for it in items] != sorted((it["id"] for it in items), key=lambda s: int(s.split("/")[1]))
    # deterministic
    assert bigbench.convert_task(TOY_TASK, "toy") == items


def test_convert_respects_task_prefixes():
    task = {
        "example_input_prefix": "\n",
        "example_output_prefix": "\nAnswer: ",
        "examples": [{"input": "Fact: x. Q: y?", "target_scores": {"yes": 1, "no": 0}}],
    }
    (it,) = bigbench.convert_task(task, "t")
    assert it["context"] == "Fact: x. Q: y?\nAnswer:"


def test_extract_atomic_idempotent_and_missing(tmp_path, monkeypatch):
    sdist = fake_sdist(tmp_path / "fake.tar.gz", {"toy": TOY_TASK, "toy2": TOY_TASK})
    dest = tmp_path / "bb"
    with pytest.raises(bigbench.BigBenchError, match="python -m zipcal.experiments.bigbench extract"):
        bigbench.task_files(["toy"], dest)
    with pytest.raises(bigbench.BigBenchError, match="SHA-256"):
        bigbench.extract(dest, tasks=["toy"], sdist=sdist)  # not the PyPI file
    paths = bigbench.extract(dest, tasks=["toy", "toy2"], sdist=sdist, expected_sha256=None)
    assert set(paths) == {"toy", "toy2"}
    assert read_tasks(paths["toy"]) == bigbench.convert_task(TOY_TASK, "toy")
    assert sorted(p.name for p in dest.iterdir()) == ["manifest.json", "toy.jsonl", "toy2.jsonl"]  # no temp files left
    man = json.loads((dest / "manifest.json").read_text())
    assert man["tasks"]["toy"] == {"format": bigbench.FORMAT_VERSION, "examples": 22, "choices": [2, 3, 4]}
    assert bigbench.task_files(["toy", "toy2"], dest) == paths
    # already there: nothing is read, not even the (now absent) sdist
    mtime = paths["toy"].stat().st_mtime_ns
    sdist.unlink()
    monkeypatch.setattr(bigbench, "download_sdist", lambda *a, **k: pytest.fail("downloaded although present"))
    assert bigbench.extract(dest, tasks=["toy", "toy2"]) == paths
    assert paths["toy"].stat().st_mtime_ns == mtime
    # a file of an older conversion format counts as missing
    man["tasks"]["toy"]["format"] = 0
    (dest / "manifest.json").write_text(json.dumps(man))
    assert bigbench.missing_tasks(["toy", "toy2"], dest) == ["toy"]
    # ZIPCAL_BIGBENCH_DIR moves the default folder
    monkeypatch.setenv("ZIPCAL_BIGBENCH_DIR", str(dest))
    assert bigbench.default_dir() == dest and bigbench.task_path("toy2") == paths["toy2"]


def test_unknown_task_in_sdist(tmp_path):
    sdist = fake_sdist(tmp_path / "fake.tar.gz", {"toy": TOY_TASK})
    with pytest.raises(bigbench.BigBenchError, match="nope"):
        bigbench.extract(tmp_path / "bb", tasks=["toy", "nope"], sdist=sdist, expected_sha256=None)
    assert not (tmp_path / "bb" / "toy.jsonl").exists()  # nothing half-written


def test_runs_standalone_without_zipcal(tmp_path):
    """scripts/env.sh runs the file by path before zipcal is built: it must not need the package."""
    sdist = fake_sdist(tmp_path / "fake.tar.gz", {"toy": TOY_TASK})
    bigbench.extract(tmp_path / "bb", tasks=["toy"], sdist=sdist, expected_sha256=None)
    code = (
        "import runpy, sys\n"
        "sys.modules['zipcal'] = None  # any import of the package fails\n"
        f"sys.argv = ['bigbench.py', 'extract', '--quiet', '--tasks', 'toy', '--dest', {str(tmp_path / 'bb')!r}]\n"
        f"runpy.run_path({str(MODULE_FILE)!r}, run_name='__main__')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [sys.executable, str(MODULE_FILE), "extract", "--tasks", "toy", "--dest", str(tmp_path / "bb")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0 and "toy.jsonl" in proc.stdout, proc.stderr
