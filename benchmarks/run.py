"""Run every benchmark (or the named ones) and write `benchmarks/results/<name>.md` and `.png`.

    python -m benchmarks.run                 # all
    python -m benchmarks.run update train    # some
    python -m benchmarks.run --quick         # fewer repetitions, for a smoke check

Each benchmark is a module `benchmarks/bench_<name>.py` with `main(out_dir: Path, quick: bool)`.
Benchmarks compare implementations side by side in one run and report ratios.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import time
from pathlib import Path

import benchmarks

RESULTS = Path(__file__).parent / "results"


def available() -> list[str]:
    return sorted(m.name[len("bench_") :] for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {available()})")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke check)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available()}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.bench_{name}").main(args.out, args.quick)
        print(f"== {name} done in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
