"""Run every benchmark (or the named ones) and write `benchmarks/results/<name>.md` and `.png`.

    python -m benchmarks.run                 # all
    python -m benchmarks.run update train    # some
    python -m benchmarks.run --quick         # fewer repetitions, for a smoke check
    python -m benchmarks.run metabox_parity --report   # redraw a report from its recorded summary

Each benchmark is a module `benchmarks/bench_<name>.py` with `main(out_dir: Path, quick: bool)`, and, when
its report is drawn from a recorded summary (`<name>.json` beside it), `redraw(out_dir, quick)`.
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


def _module(name: str):
    return importlib.import_module(f"benchmarks.bench_{name}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {available()})")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke check)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--report", action="store_true",
                        help="redraw the named reports from their recorded summaries, running nothing")
    args = parser.parse_args(argv)
    names = args.names or available()
    unknown = sorted(set(names) - set(available()))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; available: {available()}")
    if args.report:
        without = [name for name in names if not hasattr(_module(name), "redraw")]
        if without:
            parser.error(f"--report: {without} keep no summary to redraw from (rerun them)")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        module = _module(name)
        (module.redraw if args.report else module.main)(args.out, args.quick)
        print(f"== {name} done in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
