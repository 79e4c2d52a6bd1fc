"""The zero-shot tasks built from held-out text: deterministic, well formed, fair."""

from __future__ import annotations

from collections import Counter

import pytest

from zipcal.experiments import tasks
from zipcal.experiments.mixed_corpus import DEFAULT_WIKITEXT_DIR

TEST = DEFAULT_WIKITEXT_DIR / "test.txt"


@pytest.fixture(scope="module")
def built():
    if not TEST.is_file():  # pragma: no cover - the shared data is part of the checkout's set-up
        pytest.fail(f"WikiText-2 test split missing at {TEST}")
    heldout = {
        "wikipedia": [
            "First paragraph of a held-out article. " * 12
            + "It ends here.\n\n"
            + "A second one, quite long enough to count. " * 10
        ]
    }
    return tasks.build_tasks(TEST, heldout, examples=300), heldout


def test_tasks_are_deterministic(built):
    items, heldout = built
    again = tasks.build_tasks(TEST, heldout, examples=300)
    assert again == items
    # the first k of a larger build are the k of a smaller one: a fair sample
    small = tasks.build_tasks(TEST, heldout, examples=50)
    assert {t: [it["id"] for it in v] for t, v in small.items()} == {
        t: [it["id"] for it in v[:50]] for t, v in items.items()
    }


def test_items_are_well_formed(built):
    items, _ = built
    assert set(items) == set(tasks.TASKS)
    passages = tasks.wikitext_passages(TEST)
    assert len(passages) > 300 and not any("<unk>" in p or " @-@ " in p or " , " in p for p in passages)
    for name, task in items.items():
        assert len(task) == 300, name
        assert len({it["id"] for it in task}) == len(task)
        for it in task:
            assert len(it["choices"]) == 4 and len(set(it["choices"])) == 4
            assert 0 <= it["label"] < 4 and it["context"].strip()
        # the correct choice is spread over the positions
        positions = Counter(it["label"] for it in task)
        assert max(positions.values()) < 0.4 * len(task), (name, positions)
    sources = {p: "wikitext" for p in passages}
    for it in items["heldout-lastword"]:
        word = it["choices"][it["label"]]
        if it["source"] == "wikitext":
            # the context and its last word are the start of a real passage
            assert any(p.startswith(it["context"] + " " + word) for p in sources), it["id"]
        # distractors come from the passage itself, so only its sense tells them apart
        assert all(c in it["context"] for c in it["choices"] if c != word)
    for it in items["heldout-continuation"]:
        if it["source"] == "wikitext":
            true = it["context"] + " " + it["choices"][it["label"]]
            assert any(p.startswith(true) for p in sources), it["id"]


def test_held_out_prose_is_used(built):
    items, heldout = built
    # the toy held-out article is long enough to be a passage of either task
    assert any(it["source"] == "wikipedia" for t in items.values() for it in t) or len(heldout["wikipedia"][0]) < 100
    with pytest.raises(ValueError, match="unknown built task"):
        tasks.build_tasks(TEST, None, examples=5, tasks=["nope"])
