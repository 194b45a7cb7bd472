import atexit
import os
import shutil
import tempfile

# Tests run on the CPU, also on machines that have an accelerator.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# `jppo train` turns on JAX's persistent compilation cache: tests keep theirs out of ~/.cache.
if "JPPO_COMPILE_CACHE" not in os.environ:
    os.environ["JPPO_COMPILE_CACHE"] = tempfile.mkdtemp(prefix="jppo-test-compile-cache-")
    atexit.register(shutil.rmtree, os.environ["JPPO_COMPILE_CACHE"], True)
