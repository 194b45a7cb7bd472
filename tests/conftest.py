import os

# Tests run on the CPU, also on machines that have an accelerator.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
