"""MetaBox's venv: metaevobox 2.0.2 importable beside jppo, for the tests that compare against MetaBox's own code.

metaevobox cannot be an extra of jppo: through tianshou 1.1.0 it requires gymnasium<0.29 and numpy<2, while
jppo requires gymnasium>=1.0 and, through jax, numpy>=2 (pip: ResolutionImpossible). It imports and runs
with numpy 2 when installed with --no-deps together with the packages it imports (`PACKAGES`, found by
importing it until nothing was missing). So it lives in a second venv layered over the project's: the
project's packages (jax, torch, numpy, ...) come from `.venv` through a .pth file, and nothing in `.venv`
changes. The tests that need it carry the `metabox` marker; in the project's venv they skip.

Run with the project's venv (after `pip install -e '.[test]'`), from the repository root:

    .venv/bin/python -m references.metabox_venv               # create .venv-metabox (reused while PACKAGES is unchanged)
    .venv/bin/python -m references.metabox_venv --test        # create it if needed, then `pytest -m metabox` in it
    .venv/bin/python -m references.metabox_venv --test -- -k gleet -x    # extra pytest arguments after `--`
    .venv/bin/python -m references.metabox_venv --print       # the shell commands it runs, to do it by hand

`--test` sets JPPO_METABOX_SRC to the installed package's folder (metaevobox/, which holds MetaBox's
pretrained checkpoints under model/), so the tests that load MetaBox's source file by file
(references/metabox_source.py) and those that `import metaevobox` both run. In that run a `metabox` test
that skips is a failure (this module is loaded as a pytest plugin), and a pip failure (no network, a
package gone from PyPI) stops with an error: the step never passes by skipping.

By hand, in the venv: `.venv-metabox/bin/python -m pytest -p references.metabox_venv -m metabox`, or
`cd <scratch dir> && PYTHONPATH=<repo> <repo>/.venv-metabox/bin/python -m references.metabox_dropin`
(references/metabox_dropin.py).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv-metabox"
MARKER = "metabox"
SRC_ENV = "JPPO_METABOX_SRC"
PLUGIN = "references.metabox_venv"  # this module, as `-p` names it (`__name__` is __main__ under -m)

# Installed with --no-deps, so pip checks nothing between them: every version is exact (pydantic with
# pydantic_core, numba with llvmlite, ...). The rest of what they need (numpy, scipy, torch, matplotlib,
# ray, tensorboardX, gymnasium, ...) is the project's, from .venv.
PACKAGES = (
    "metaevobox==2.0.2",  # an sdist of 87 MB; it ships MetaBox's pretrained agents under metaevobox/model/
    # imported by `import metaevobox` (its __init__ imports the Trainer, Tester and every optimizer and problem)
    "tianshou==1.1.0", "deepdiff==7.0.1", "ordered-set==4.1.0", "sensai-utils==1.6.0", "overrides==7.7.0",
    "pettingzoo==1.27.0", "gym==0.26.2", "gym-notices==0.1.0", "GPUtil==1.4.0", "xgboost-cpu==3.0.0",
    "scikit-learn==1.9.1", "joblib==1.6.0", "threadpoolctl==3.8.0", "narwhals==2.29.0", "pandas==3.1.1",
    "h5py==3.16.0", "numba==0.68.1", "llvmlite==0.50.0", "tensorboard==2.21.0", "cma==4.5.0", "deap==1.4.4",
    "moocore==0.3.2", "cffi==2.1.1", "platformdirs==4.14.9", "pypop7==0.0.82", "cmaes==0.11.1",
    "openai==3.60.0", "pydantic==2.14.4", "pydantic_core==2.50.5", "typing-inspection==0.4.5",
    "annotated-types==0.8.0", "httpx2==2.16.2", "sniffio==1.3.1", "anyio==4.16.0",
)
STAMP = "jppo-metabox-packages.txt"  # in the venv: what it was built from


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _project_site_dirs() -> list[str]:
    if sys.prefix == sys.base_prefix:
        raise SystemExit("references.metabox_venv: run it with the project's venv (.venv/bin/python -m "
                         "references.metabox_venv), whose packages MetaBox's venv is layered over")
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def _pth_text() -> str:
    # addsitedir, not a bare path: the project's own .pth files (the editable jppo) are read too. Appended
    # after this venv's site-packages, so MetaBox's packages come first and the project's fill in the rest.
    return "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in _project_site_dirs()) + "\n"


def _stamp_text() -> str:
    return "\n".join([*PACKAGES, _pth_text()])


def _pip_command(venv: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "--python", str(venv_python(venv)), "install", "--no-deps",
            "--no-input", "--disable-pip-version-check", "-q", *PACKAGES]


def _site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def commands(venv: Path = VENV) -> str:
    """The shell commands `create` runs (for the docs, or to build the venv by hand)."""
    return "\n".join([
        shlex.join([sys.executable, "-m", "venv", "--without-pip", str(venv)]),
        f"echo {shlex.quote(_pth_text().strip())} > {shlex.quote(str(_site_packages(venv) / 'zz_jppo.pth'))}",
        shlex.join(_pip_command(venv)),
    ])


def create(venv: Path = VENV, force: bool = False) -> Path:
    """MetaBox's venv at `venv`, built unless it exists from the same PACKAGES over the same project venv."""
    stamp = venv / STAMP
    if not force and stamp.is_file() and stamp.read_text() == _stamp_text() and venv_python(venv).exists():
        print(f"metabox venv: {venv} is up to date", flush=True)
        return venv
    if venv.exists():
        if not (venv / "pyvenv.cfg").is_file():
            raise SystemExit(f"references.metabox_venv: {venv} exists and is not a venv; not touching it")
        shutil.rmtree(venv)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages = _site_packages(venv)
    if not site_packages.is_dir():
        raise SystemExit(f"references.metabox_venv: {site_packages} missing after `python -m venv`")
    (site_packages / "zz_jppo.pth").write_text(_pth_text())
    print(f"metabox venv: installing {len(PACKAGES)} packages with --no-deps into {venv} ...", flush=True)
    pip = subprocess.run(_pip_command(venv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if pip.returncode != 0:
        # the machine's pip configuration may add indexes that warn on every package: show what failed
        lines = [line for line in pip.stdout.splitlines() if "is ignored: it is neither a file nor a directory" not in line]
        print("\n".join(lines[-60:]), file=sys.stderr)
        raise SystemExit(f"references.metabox_venv: pip could not install MetaBox's packages (exit {pip.returncode}; "
                         "is PyPI reachable?). The `metabox` tests did not run.")
    stamp.write_text(_stamp_text())
    print(f"metabox venv: ready in {time.perf_counter() - start:.0f} s", flush=True)
    return venv


def metabox_folder(python: Path | str) -> str:
    """The installed metaevobox package's folder, as `python` finds it (without running its heavy __init__)."""
    out = subprocess.run([str(python), "-c", "import importlib.util as u; s = u.find_spec('metaevobox'); "
                          "print(s.submodule_search_locations[0] if s else '')"],
                         capture_output=True, text=True, check=True).stdout.strip()
    if not out:
        raise SystemExit(f"references.metabox_venv: metaevobox is not importable by {python}")
    return out


def test(venv: Path = VENV, pytest_args: list[str] = ()) -> int:
    """`pytest -m metabox` in MetaBox's venv, from the repository root; its exit status."""
    python = venv_python(venv)
    env = dict(os.environ, **{SRC_ENV: metabox_folder(python)})
    # two workers, as the main suite (a `-n` among pytest_args comes later and wins)
    command = [str(python), "-m", "pytest", "-p", PLUGIN, "-m", MARKER, "-n", "2", *pytest_args]
    print(f"metabox venv: {SRC_ENV}={env[SRC_ENV]}\n  {shlex.join(command)}", flush=True)
    start = time.perf_counter()
    status = subprocess.run(command, cwd=REPO, env=env).returncode
    print(f"metabox venv: the `{MARKER}` tests took {time.perf_counter() - start:.0f} s (exit {status})", flush=True)
    return status


# --------------------------------------------------------------------------- as a pytest plugin (-p references.metabox_venv)


def pytest_configure(config):
    import importlib.util

    spec = importlib.util.find_spec("metaevobox")
    if spec is None:
        raise SystemExit(f"-p {PLUGIN}: metaevobox is not importable by {sys.executable} (MetaBox's venv: "
                         f"python -m {PLUGIN})")
    os.environ.setdefault(SRC_ENV, spec.submodule_search_locations[0])


if "pytest" in sys.modules:  # loaded as a plugin
    import pytest

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        """In MetaBox's venv, a `metabox` test that skips has checked nothing: a failure."""
        outcome = yield
        report = outcome.get_result()
        if report.skipped and item.get_closest_marker(MARKER) is not None and not hasattr(report, "wasxfail"):
            reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            report.outcome = "failed"
            report.longrepr = f"skipped in MetaBox's venv, where it must run: {reason}"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    pytest_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog=f"python -m {PLUGIN}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=Path(os.environ.get("JPPO_METABOX_VENV", VENV)),
                        help=f"where (default {VENV.name} in the repository, or $JPPO_METABOX_VENV)")
    parser.add_argument("--test", action="store_true", help=f"then run the tests marked `{MARKER}` in it")
    parser.add_argument("--force", action="store_true", help="rebuild it even when it is up to date")
    parser.add_argument("--print", action="store_true", help="print the shell commands that build it, and stop")
    args = parser.parse_args(argv)
    if args.print:
        print(commands(args.venv.resolve()))
        return 0
    venv = create(args.venv.resolve(), force=args.force)
    return test(venv, pytest_args) if args.test else 0


if __name__ == "__main__":
    sys.exit(main())
