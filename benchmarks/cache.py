"""Caches of heavy benchmark runs, keyed by what made them.

An entry is `<dir>/<label>-<key>.<suffix>`, with `<label>-<key>.json` beside it saying what made it. The key
hashes the label, the settings of the run (a JSON-able dict) and the code version: the bytes of the source
files that compute it and the versions of the libraries they call. Change a setting or one byte of those
sources, and the key changes: the run is done again, never read back from an older entry. The label only
tells a reader what the entry is.

Caches live in `benchmarks/.cache/` (ignored by git; `JPPO_BENCH_CACHE` moves it). The record a study
commits is its report and the summary the report is drawn from, in `benchmarks/results/`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def root() -> Path:
    """The directory all benchmark caches live under."""
    return Path(os.environ.get("JPPO_BENCH_CACHE", REPO / "benchmarks" / ".cache"))


def shown(directory: Path) -> str:
    """`directory` as a report names it: relative to the repository when inside it."""
    directory = Path(directory).resolve()
    return directory.relative_to(REPO).as_posix() if directory.is_relative_to(REPO) else str(directory)


@functools.cache
def _version(sources: tuple[str, ...], packages: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        path = REPO / source
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(REPO).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    for package in packages:
        try:
            digest.update(f"{package}=={metadata.version(package)}\0".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package} absent\0".encode())
    return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class Code:
    """What computes an entry: source paths relative to the repository (files, or directories whose .py files
    all count) and the distributions whose installed versions count."""

    sources: tuple[str, ...]
    packages: tuple[str, ...] = ()

    def version(self) -> str:
        """A hash of the sources' bytes and the packages' versions, taken once per process (the code that runs
        is the code that was there when it started)."""
        return _version(self.sources, self.packages)


class Cache:
    """One study's entries in `directory`; `used` names the entries it served, in order."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.used: list[str] = []

    def path(self, label: str, settings: dict, code: Code, suffix: str = ".npz") -> Path:
        made_by = _made_by(label, settings, code)
        key = hashlib.sha256(json.dumps(made_by, sort_keys=True).encode()).hexdigest()[:12]
        return self.directory / f"{label}-{key}{suffix}"

    def file(self, label: str, settings: dict, code: Code, make: Callable[[Path], None], suffix: str = ".npz") -> Path:
        """The entry's path, made once by `make(path)` (written under a temporary name, then renamed, so a
        stopped run never leaves half an entry)."""
        path = self.path(label, settings, code, suffix)
        if not path.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
            make(tmp)
            path.with_suffix(".json").write_text(json.dumps(_made_by(label, settings, code), indent=1, sort_keys=True) + "\n")
            tmp.replace(path)
        if path.name not in self.used:
            self.used.append(path.name)
        return path

    def arrays(self, label: str, settings: dict, code: Code, compute: Callable[[], dict]) -> dict:
        """`compute()` (a dict of arrays) saved once as an .npz entry, read back on every call."""
        path = self.file(label, settings, code, lambda tmp: np.savez(tmp, **{k: np.asarray(v) for k, v in compute().items()}))
        with np.load(path) as data:
            return {k: data[k] for k in data.files}


def _made_by(label: str, settings: dict, code: Code) -> dict:
    return {"label": label, "settings": json.loads(json.dumps(settings, sort_keys=True, default=str)),
            "code": {"sources": list(code.sources), "packages": list(code.packages), "version": code.version()}}
