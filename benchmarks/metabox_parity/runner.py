"""Runs the study into a summary, and draws the report (markdown and figure) from the summary alone.

    python -m benchmarks.run metabox_parity            # run: hours at full scale, resumes from its caches
    python -m benchmarks.run metabox_parity --report   # redraw results/metabox_parity.{md,png} from its .json

A run writes `<out>/metabox_parity.json` (the numbers and curves the report shows) and then the report from
that file; its heavy runs are cached under `benchmarks/.cache/metabox_parity/` (`benchmarks.cache`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import jax

from benchmarks import cache as caches
from benchmarks import report
from benchmarks.metabox_parity import s1_pretrained, s2_cause, s2_trained, s3_curves, s4_wallclock, s5_whole_budget
from benchmarks.metabox_parity.figure import figure
from benchmarks.metabox_parity.setting import FULL, QUICK, REPORTED, Scale, scale_from_env, test_suite

NAME = "metabox_parity"
TITLE = "MetaBox parity: RLEPSO on bbob-10D (difficult split)"


def collect(scale: Scale, cache: caches.Cache) -> dict:
    """Every section's summary, in the report's order, with the scale, the machine and the cache entries used."""
    summary = {"scale": {name: getattr(scale, name) for name in REPORTED}, "fids": test_suite(scale)[2],
               "s1": s1_pretrained.collect(cache, scale), "s2": s2_trained.collect(cache, scale),
               "cause": s2_cause.collect(cache, scale), "s3": s3_curves.collect(cache, scale),
               "s5": s5_whole_budget.collect(cache, scale)}
    summary["machine"] = report.machine()
    summary["caches"] = {"dir": caches.shown(cache.directory), "entries": cache.used}
    return summary


def not_run(heading: str, field: str) -> tuple:
    return heading, ("-",), [], [f"Not run at this scale ({field} 0)."]


def render(summary: dict, out_dir: Path, name: str):
    """`out_dir/name.md` and `.png` from `summary` alone."""
    scale, fids = Scale(**summary["scale"]), summary["fids"]
    s1, s2, s3, s5 = summary["s1"], summary["s2"], summary["s3"], summary["s5"]
    lines1, rows1 = s1_pretrained.render(s1, fids)
    sections = s2_trained.render(s2, scale, fids) if s2 else [
        not_run("2. jppo trained with MetaBox's settings", "train_windows")]
    if summary["cause"]:
        sections.append((s2_cause.HEADING, s2_cause.HEADER, s2_cause.render(summary["cause"]), [s2_cause.NOTE]))
    if s3:
        lines3, tables3 = s3_curves.render(s3, scale)
        sections += [(f"3. {heading}", header, rows, lines3 if i == 0 else [])
                     for i, (heading, header, rows) in enumerate(tables3)]
    else:
        sections.append(not_run("3. Training curves, three ways", "curve_epochs"))
    sections.append((s4_wallclock.HEADING, s4_wallclock.HEADER, s4_wallclock.render(s1, s3), [summary["machine"]]))
    sections += s5_whole_budget.render(s5, scale) if s5 else [
        not_run("5. The whole budget from one start, three ways", "long_seeds")]
    report.write(out_dir, name, title=TITLE, header=s1_pretrained.HEADER, rows=rows1,
                 notes=[*scale_notes(scale), "", f"## {s1_pretrained.HEADING}", *lines1],
                 sections=sections, figure=figure(summary, scale))


def scale_notes(scale: Scale) -> list[str]:
    changed = [f"{name} {getattr(scale, name)} (specified {getattr(FULL, name)})" for name in REPORTED
               if getattr(scale, name) != getattr(FULL, name)]
    return [f"Scale: {', '.join(changed) if changed else 'as specified'} "
            f"(`{', '.join(f'{n}={getattr(scale, n)}' for n in REPORTED)}`)."]


def run(out_dir: Path, scale: Scale, cache_dir: Path, name: str = NAME):
    """Collect at `scale` (reading and filling the caches in `cache_dir`), write `out_dir/name.json`, draw the
    report from it."""
    summary_path = out_dir / f"{name}.json"
    report.write_summary(summary_path, collect(scale, caches.Cache(cache_dir)))
    render(report.read_summary(summary_path), out_dir, name)


def _name(quick: bool) -> str:
    return NAME + ("_quick" if quick else "")


def main(out_dir: Path, quick: bool):
    jax.config.update("jax_compilation_cache_dir", str(Path(tempfile.gettempdir()) / "jppo-parity-xla"))
    run(out_dir, scale_from_env(QUICK if quick else FULL), caches.root() / NAME, _name(quick))


def redraw(out_dir: Path, quick: bool):
    """The report again from `out_dir`'s recorded summary, without running anything."""
    render(report.read_summary(out_dir / f"{_name(quick)}.json"), out_dir, _name(quick))

