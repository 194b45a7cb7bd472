"""benchmarks/cache.py: an entry is found again only under the same label, settings and code."""

import json

import numpy as np
import pytest

from benchmarks import cache as caches


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A stand-in repository with one source file, and the code-version memo emptied around the test."""
    (tmp_path / "src.py").write_text("x = 1\n")
    monkeypatch.setattr(caches, "REPO", tmp_path)
    caches._version.cache_clear()
    yield tmp_path
    caches._version.cache_clear()


def test_an_entry_is_computed_once_and_says_what_made_it(repo):
    cache, code, calls = caches.Cache(repo / "c"), caches.Code(("src.py",), ("numpy",)), []

    def compute():
        calls.append(1)
        return {"a": np.arange(3)}

    first = cache.arrays("run", {"seed": 0}, code, compute)
    again = cache.arrays("run", {"seed": 0}, code, compute)
    assert len(calls) == 1 and np.array_equal(first["a"], again["a"])
    (entry,) = (repo / "c").glob("run-*.npz")
    made_by = json.loads(entry.with_suffix(".json").read_text())
    assert made_by["settings"] == {"seed": 0} and made_by["code"]["sources"] == ["src.py"]
    assert cache.used == [entry.name]


def test_the_key_follows_settings_label_and_source_bytes(repo):
    cache, code = caches.Cache(repo / "c"), caches.Code(("src.py",))
    key = cache.path("run", {"seed": 0}, code)
    assert cache.path("run", {"seed": 1}, code) != key and cache.path("other", {"seed": 0}, code) != key
    (repo / "src.py").write_text("x = 2\n")
    caches._version.cache_clear()  # a new process
    assert cache.path("run", {"seed": 0}, code) != key


def test_every_declared_source_exists():
    """A study's code version hashes these paths; a moved file must be named anew, not skipped."""
    from benchmarks import gleet_parity
    from benchmarks.metabox_parity import s1_pretrained, s2_cause, s2_trained, s3_curves, s5_whole_budget, setting

    codes = [setting.METABOX_CODE, gleet_parity.METABOX_CODE] + [
        m.CODE for m in (s1_pretrained, s2_trained, s2_cause, s3_curves, s5_whole_budget)]
    for code in codes:
        for source in code.sources:
            assert (caches.REPO / source).exists(), source
