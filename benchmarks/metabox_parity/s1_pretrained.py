"""Section 1: MetaBox's pretrained RLEPSO.pkl on the test problems in jppo's env (the converted weights) and in
MetaBox's (its numpy `RLEPSO_Optimizer` and torch agent under its Tester's rules): mean log10 final cost ± SE
per problem, and whether the two agree within 3 standard errors."""

from __future__ import annotations

import functools
import math
import time

import jax
import numpy as np

from benchmarks import metabox_side
from benchmarks.cache import Cache
from benchmarks.metabox_parity.policies import pretrained_params, sampler, weights_file
from benchmarks.metabox_parity.setting import METABOX_CODE, Scale, log_cost, mean_se, settings, study_code, test_suite
from jppo.metabbo import report as mreport

CODE = study_code(__file__)
HEADING = "1. MetaBox's pretrained RLEPSO.pkl, jppo's env vs MetaBox's"
HEADER = ("test problem", "jppo env: mean log10 cost ± SE", "MetaBox env: mean log10 cost ± SE", "z (Δ / SE)",
          "within 3 SE")


def jppo_test_costs(policy, params, scale: Scale, seed: int = 0):
    """`(final costs [P, runs], seconds)` of `params` on the test problems in jppo's env (float64, as
    MetaBox), run r of every policy from the same key (paired runs)."""
    env, suite, _ = test_suite(scale)
    start = time.perf_counter()
    final, _ = mreport.run_method(env, suite, functools.partial(sampler(policy), params), jax.random.key(seed),
                                  scale.runs)
    return final, time.perf_counter() - start


def collect(cache: Cache, scale: Scale) -> dict | None:
    """Both sides' final costs [P, runs] and seconds (jppo: in all; MetaBox: per episode); None without MetaBox."""
    weights = weights_file(cache, scale)
    if weights is None:
        return None
    with jax.enable_x64(True):
        _, policy, params = pretrained_params(weights)
        jp = cache.arrays("pretrained_jppo", settings(scale, "runs", "max_fes", "problems", "evaluate_fn",
                                                      weights=weights.name, seed=0), CODE,
                          lambda: dict(zip(("final", "seconds"), jppo_test_costs(policy, params, scale))))
    mb = cache.arrays("pretrained_metabox", settings(scale, "runs", "max_fes", "problems"), METABOX_CODE,
                      lambda: metabox_side.pretrained_final_costs(scale.runs, scale.problems, scale.max_fes))
    return {"jppo": {"final": jp["final"], "seconds": float(jp["seconds"])},
            "metabox": {"final": mb["final"], "seconds": float(mb["seconds"])}}


def render(s1: dict | None, fids: list) -> tuple[list[str], list]:
    """`(markdown lines, table rows)`."""
    if s1 is None:
        return [f"Skipped: MetaBox's RLEPSO.pkl needs metaevobox and torch ({metabox_side.__name__}); "
                f"run this benchmark in a venv where both import."], []
    jp, mb = s1["jppo"], s1["metabox"]
    lines, rows, _ = agreement(fids, log_cost(jp["final"]), log_cost(mb["final"]))
    return lines + [
        f"jppo: {np.shape(jp['final'])[1]} runs per problem in one vmapped program, {jp['seconds']:.0f} s in all "
        f"(compilation included); MetaBox: {mb['seconds'] * 1e3:.0f} ms per episode, one after another.",
    ], rows


def agreement(fids, jp_log, mb_log):
    """Markdown lines and table rows of mean log10 final cost ± SE per problem, and which problems differ by
    more than 3 SE of the difference."""
    rows, disagree, zs = [], [], []
    for p, f in enumerate(fids):
        (mj, sj), (mm, sm) = mean_se(jp_log[p]), mean_se(mb_log[p])
        se = math.hypot(sj, sm)
        z = (mj - mm) / se if se > 0 else (0.0 if mj == mm else math.inf)
        ok = abs(z) <= 3
        zs.append(z)
        if not ok:
            disagree.append(f"F{f}")
        rows.append((f"F{f}", f"{mj:.3f} ± {sj:.3f}", f"{mm:.3f} ± {sm:.3f}", f"{z:+.2f}", "yes" if ok else "**no**"))
    worst = int(np.argmax(np.abs(zs)))
    lines = [f"**{len(fids) - len(disagree)} of {len(fids)} problems agree within 3 standard errors**"
             + (f"; not: {', '.join(disagree)}." if disagree else ".")
             + f" Largest |z|: F{fids[worst]} ({zs[worst]:+.2f}); jppo's mean is the lower on "
             f"{sum(z < 0 for z in zs)} of {len(fids)}; Σz/√P = {sum(zs) / math.sqrt(len(zs)):+.2f} (a shift common "
             f"to every problem would show here; N(0, 1) if there is none).",
             "z = (jppo mean - MetaBox mean) / √(SE_jppo² + SE_MetaBox²); SE = sd / √runs of log10(max(cost, 1e-8)). "
             "The two sides draw different random numbers (jppo: JAX keys; MetaBox: seeds 1..51 for numpy's and "
             "torch's generators, as its Tester), so the comparison is between distributions, not run by run."]
    return lines, rows, disagree


def panel(ax, s1: dict | None, fids: list):
    """The figure's first panel: both sides' means ± 3 SE per problem."""
    if s1:
        x = np.arange(len(fids))
        for name, off in (("jppo", -0.15), ("metabox", 0.15)):
            m, se = mean_se(log_cost(s1[name]["final"]))
            ax.errorbar(x + off, m, yerr=3 * se, fmt="o", ms=3, capsize=2, label=f"{name} env (±3 SE)")
        ax.set_xticks(x, [f"F{f}" for f in fids], fontsize=7)
        ax.legend(fontsize=7)
    ax.set_title("1. RLEPSO.pkl: mean log10 final cost", fontsize=9)
