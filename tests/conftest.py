import os
from pathlib import Path

# Tests run on the CPU, also on machines that have an accelerator.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# One persistent compilation cache for the whole run, kept out of ~/.cache: the pytest-xdist
# workers, the subprocesses tests start and `jppo train` (JPPO_COMPILE_CACHE) compile many of the
# same programs (the same small trainers and networks), and compiling is most of what the suite
# costs. Entries are keyed by the program, so a stale one is never used; a clean clone starts empty.
_CACHE = str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "jax")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JPPO_COMPILE_CACHE", _CACHE)
