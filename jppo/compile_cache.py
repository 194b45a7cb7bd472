"""JAX's persistent compilation cache, so that a second identical run loads its programs from disk.

    enable()                    # $JPPO_COMPILE_CACHE, else $XDG_CACHE_HOME/jppo/jax (~/.cache/jppo/jax)
    enable("/scratch/cache")    # a directory of your choice

Every program is cached, however small or quick to compile. A directory that cannot be written
gives a warning and the run goes on uncached.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import jax


def default_dir() -> Path:
    if os.environ.get("JPPO_COMPILE_CACHE"):
        return Path(os.environ["JPPO_COMPILE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jppo" / "jax"


def _writable(directory: Path) -> str | None:
    """None if files can be created in `directory` (made if missing), else the reason."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".jppo-probe-"):
            pass
    except OSError as err:
        return err.strerror or str(err)
    return None


def enable(directory: str | Path | None = None) -> Path | None:
    """Turn the cache on in `directory` (default `default_dir()`); returns it, or None (with a
    warning) when it cannot be written."""
    directory = Path(directory).expanduser() if directory is not None else default_dir()
    problem = _writable(directory)
    if problem is not None:
        warnings.warn(f"compilation cache {directory} is not writable ({problem}); running without it",
                      stacklevel=2)
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return directory


def disable() -> None:
    jax.config.update("jax_compilation_cache_dir", None)
