import os
import subprocess
import sys
from pathlib import Path

import pytest

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
# them), and XLA's older loop emitters compile faster than its MLIR fusion emitters (the whole suite
# from an empty cache, `pytest -n 2` on 2 cores: 651 s -> 434 s); the test programs lose little run time.
# Subprocesses inherit the flags. Tests marked `xla_defaults` run under XLA's default emitters (as can a
# test's own subprocess: `xla_flags_with_default_emitters`).
_EMITTERS = "xla_cpu_use_fusion_emitters"
_DEFAULTS_ENV = "JPPO_TEST_XLA_DEFAULT_EMITTERS"


def _xla_flags(**settings) -> str:
    """XLA_FLAGS with `--name=value` added for each setting it does not have yet; a None value removes the flag."""
    name = lambda word: word.lstrip("-").split("=")[0]  # noqa: E731
    words = [w for w in os.environ.get("XLA_FLAGS", "").split() if settings.get(name(w), "") is not None]
    present = {name(w) for w in words}
    return " ".join(words + [f"--{k}={v}" for k, v in settings.items() if v is not None and k not in present])


def _xla_knows(**setting) -> bool:
    """Whether this jaxlib accepts the flag (XLA aborts on flags it does not know)."""
    probe = subprocess.run([sys.executable, "-c", "import jax; jax.devices()"], capture_output=True,
                           env={**os.environ, "XLA_FLAGS": _xla_flags(**setting)})
    return probe.returncode == 0


def xla_flags_with_default_emitters() -> str:
    """This process's XLA_FLAGS less the emitter setting: for a subprocess that compiles as users do."""
    return _xla_flags(**{_EMITTERS: None})


@pytest.fixture
def xla_flags_default_emitters() -> str:
    """`xla_flags_with_default_emitters()`, for tests that start such a subprocess."""
    return xla_flags_with_default_emitters()


if os.environ.get(_DEFAULTS_ENV):
    os.environ["XLA_FLAGS"] = xla_flags_with_default_emitters()
elif "PYTEST_XDIST_WORKER" not in os.environ:  # the workers inherit the controller's flags
    emitters = "false" if _xla_knows(**{_EMITTERS: "false"}) else None
    os.environ["XLA_FLAGS"] = _xla_flags(xla_backend_optimization_level="0", **{_EMITTERS: emitters})


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if pyfuncitem.get_closest_marker("xla_defaults") is None or os.environ.get(_DEFAULTS_ENV):
        return None
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist",
                           pyfuncitem.nodeid], capture_output=True, text=True,
                          cwd=pyfuncitem.config.rootpath, env={**os.environ, _DEFAULTS_ENV: "1"})
    assert proc.returncode == 0, f"{pyfuncitem.nodeid} under XLA's default emitters:\n{proc.stdout[-5000:]}"
    return True


def pytest_collection_modifyitems(items):
    """The long tests first, so that two workers do not end on one of them while the other idles."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture
def torch_float64():
    """torch's default dtype float64 for the test, as MetaBox's Config() sets it (torch imported here:
    it is a test extra)."""
    import torch

    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(saved)
