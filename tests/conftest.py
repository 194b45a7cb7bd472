import os
from pathlib import Path

# Tests run on the CPU, also on machines that have an accelerator.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# One persistent compilation cache for the whole run: the pytest-xdist workers and the
# subprocesses tests start compile many of the same programs (the same small trainers and
# networks), and compiling is most of what the suite costs. Keyed by the program, so a stale
# entry is never used; a clean clone starts empty.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".pytest_cache" / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
