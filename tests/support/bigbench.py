"""BIG-bench-shaped multiple-choice tasks built in the test tree: a tar.gz with the
sdist's layout, and toy tasks under the names of the quality experiment's tasks, so
that the harness runs end to end whether or not the real task files are installed."""

from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path
from typing import Any, Dict, Iterable

_SUBJECTS = ["the cat", "a river", "my neighbour", "the old clock", "Zoë's bicycle", "the committee", "a storm"]
_VERBS = ["crosses", "forgets", "paints", "repairs", "follows", "questions", "celebrates"]
_OBJECTS = ["the bridge", "an umbrella", "the façade", "seven letters", "the garden", "a quiet song", "the map"]


def fake_sdist(path: Path, tasks: Dict[str, Dict[str, Any]]) -> Path:
    """A tar.gz with the sdist's layout: bigbench-1.0.0/bigbench/benchmark_tasks/<task>/task.json."""
    with tarfile.open(path, "w:gz") as tar:
        members = {f"bigbench-1.0.0/bigbench/benchmark_tasks/{n}/task.json": json.dumps(t) for n, t in tasks.items()}
        members["bigbench-1.0.0/bigbench/benchmark_tasks/other/README.md"] = "not a task"
        for name, text in members.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def toy_task(name: str, examples: int = 60, seed: int = 0) -> Dict[str, Any]:
    """A multiple-choice task in BIG-bench's JSON format: sentences of varied length and
    2 to 5 choices of one or several words (some non-ASCII), one correct per example."""
    rng = random.Random(f"{name}/{seed}")
    out = []
    for _ in range(examples):
        words = [
            f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}" for _ in range(rng.randint(1, 4))
        ]
        k = rng.randint(2, 5)
        choices = rng.sample(_OBJECTS + _SUBJECTS, k)
        out.append(
            {
                "input": ". ".join(words).capitalize() + ". What comes next?",
                "target_scores": {c: int(i == 0) for i, c in enumerate(choices)},
            }
        )
    return {"name": name, "task_prefix": f"Task {name}.", "examples": out}


def install_toy_tasks(dest: Path, names: Iterable[str]) -> Path:
    """Extract toy tasks named ``names`` into ``dest`` with the real extraction code."""
    from zipcal.experiments import bigbench

    names = list(names)
    dest.mkdir(parents=True, exist_ok=True)
    sdist = fake_sdist(dest.parent / f"{dest.name}-sdist.tar.gz", {n: toy_task(n) for n in names})
    bigbench.extract(dest, tasks=names, sdist=sdist, expected_sha256=None)
    return dest
