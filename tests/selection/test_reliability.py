"""Interrupts and very large inputs: no partial outputs, prompt exit, no crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import zipcal


def _write_corpus(path: Path, mb: int) -> None:
    words = [f"w{i}" for i in range(5000)]
    line = " ".join(words[:200])
    with open(path, "w", encoding="utf-8") as f:
        i = 0
        while f.tell() < mb << 20:
            f.write(f"{line} x{i} y{i % 977}\n")
            i += 1


@pytest.mark.timeout(120)
def test_sigint_during_selection_exits_130_and_keeps_previous_output(tmp_path):
    corpus = tmp_path / "big.txt"
    _write_corpus(corpus, 250)
    out = tmp_path / "calib.parquet"
    out.write_bytes(b"previous output")
    env = dict(os.environ, ZIPCAL_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "zipcal", "select", str(corpus), "-q", "-n", "8", "-o", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    time.sleep(1.5)
    assert proc.poll() is None, "selection finished before the interrupt; make the corpus larger"
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    stopped_after = time.monotonic() - sent
    assert proc.returncode == 130, err.decode()[-500:]
    assert "interrupted" in err.decode()
    assert b"Traceback" not in err
    assert stopped_after < 10, f"took {stopped_after:.1f} s to stop"
    assert out.read_bytes() == b"previous output"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.timeout(300)
def test_a_200_mb_single_document_is_handled(tmp_path):
    doc = tmp_path / "one.txt"
    _write_corpus(doc, 200)
    # one document: the whole file as one paragraph-free line
    data = doc.read_bytes().replace(b"\n", b" ")
    doc.write_bytes(data)
    head = data[: 1 << 16].decode("utf-8").split()[:2048]
    del data
    # unit="doc": the one candidate is the document's first seq_len (2048) words
    sel = zipcal.select(str(doc), n=1, unit="doc", min_tokens=1)
    assert len(sel) == 1 and sel.token_counts[0] == 2048
    assert sel.stats["types_covered"] == sel.stats["types_available"] == len(set(head))
    # window candidates from the same document: all of it is read and cut into windows
    win = zipcal.select(str(doc), n=4, unit="window", seq_len=4096, min_tokens=1)
    assert len(win) == 4 and all(t <= 4096 for t in win.token_counts)
    assert win.stats["pool_tokens"] > 30_000_000
    assert len(win.pool) == -(-win.stats["pool_tokens"] // 4096)


def test_output_folder_is_created_and_no_temp_files_remain(tmp_path):
    out = tmp_path / "new" / "dir" / "calib.jsonl"
    sel = zipcal.select(["alpha beta gamma delta", "epsilon zeta eta theta"], n=1, min_tokens=1)
    sel.save(out)
    assert out.is_file()
    assert [p for p in out.parent.iterdir() if p.name.endswith(".tmp")] == []
