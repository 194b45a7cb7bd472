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

# The suite's programs are small and run briefly; compiling them is what costs. LLVM's optimisation
# passes are most of XLA:CPU's compile time (a BBOB-suite program: ~5x faster to compile without
# them), and the test programs lose little run time. Subprocesses inherit the flag.
_FLAG = "--xla_backend_optimization_level=0"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()
