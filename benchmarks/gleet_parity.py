"""MetaBox's shipped GLEET (model/bbob-10D/difficult/GLEET.pkl) in MetaBox and in jppo, side by side.

    JPPO_METABOX_SRC=…/src/metaevobox python -m benchmarks.gleet_parity [--runs 51] [--out FILE]
        # runs both sides, writes FILE's .json (what the report shows), then FILE from it; MetaBox's runs
        # are cached per problem under benchmarks/.cache/gleet_parity/ (benchmarks.cache)
    python -m benchmarks.gleet_parity --report [--out FILE]   # FILE again from its .json, running nothing

(run where `import metaevobox` works beside jppo). On each of the 16 test problems of bbob-10D's
difficult split, R runs:

* MetaBox: its own `GLEET_Optimizer` (numpy) on its own `bbob_numpy` problems (instance seed 3849) in a
  `PBO_Env`, driven by the unpickled torch agent's `rollout_episode(env, seed)`, Tester conventions:
  float64, seeds 1..R, `torch.manual_seed(seed)` and `np.random.seed(seed)` before each run.
* jppo: the same weights converted (`compat.convert_checkpoint`) and loaded into jppo's GLEET networks
  (`metabox_checkpoint.gleet_params`), run by jppo's GLEET env on jppo's BBOB (float32, the default),
  R runs per problem from jax keys.

The two sides draw different random numbers, so they agree in distribution, not run by run. Per problem:
m = mean over runs of log10 max(final cost, 1e-8), SE = s / √R; agreement when
|m_MetaBox - m_jppo| ≤ 3 √(SE_MetaBox² + SE_jppo²).
"""


from __future__ import annotations

import argparse
import os
import time
import types
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from benchmarks import cache as caches
from benchmarks import report
from compat import convert_checkpoint
from jppo.metabbo import bbob, gleet
from jppo.metabbo import report as metabbo_report
from jppo.metabbo.metabox_checkpoint import gleet_params, read_weights
from jppo.metabbo.networks import gleet_networks
from references import metabox_source

DIM, MAX_FES = 10, 20000
PKL = Path("model") / "bbob-10D" / "difficult" / "GLEET.pkl"
METABOX_CODE = caches.Code(("benchmarks/gleet_parity.py", "references/metabox_source.py", "compat/convert_checkpoint.py"),
                           ("metaevobox", "torch", "numpy"))
RESULTS = Path(__file__).parent / "results"


def metabox_problems(module, dim: int) -> dict:
    """MetaBox's bbob problems F1..F24 as `get_datasets` draws them (instance seed 3849, in order)."""
    np.random.seed(bbob.INSTANCE_SEED)
    problems = {}
    for fid in range(1, 25):
        shift = 0.8 * (np.random.random(dim) * 10 - 5)
        rotation, bias = module.rotate_gen(dim), np.random.randint(1, 26) * 100
        problems[fid] = getattr(module, f"F{fid}")(dim=dim, shift=shift, rotate=rotation, bias=bias, lb=-5, ub=5)
    return problems


def metabox_final_costs(agent, fids, runs: int, cache: caches.Cache) -> tuple[np.ndarray, list]:
    """`([problems, runs] final costs, [problems] seconds)` of MetaBox's agent on its numpy GLEET optimizer
    (Tester conventions). Each problem's runs are one cache entry: MetaBox's side takes about an hour, and a
    stopped run resumes at the next problem."""
    out, seconds = np.zeros((len(fids), runs)), []
    for p, fid in enumerate(fids):
        made_by = {"fid": int(fid), "runs": runs, "dim": DIM, "max_fes": MAX_FES, "instance_seed": bbob.INSTANCE_SEED,
                   "pkl": str(PKL)}
        entry = cache.arrays(f"gleet_metabox_F{fid}", made_by, METABOX_CODE, lambda: _metabox_runs(agent, int(fid), runs))
        out[p] = entry["final"]
        seconds.append(float(entry["seconds"]))
    return out, seconds


def _metabox_runs(agent, fid: int, runs: int) -> dict:
    import torch

    from metaevobox.environment.basic_environment import PBO_Env

    torch.set_default_dtype(torch.float64)
    optimizer_class, module = metabox_source.gleet_optimizer_class(), metabox_source.bbob_numpy()
    problem = metabox_problems(module, DIM)[fid]
    config = types.SimpleNamespace(maxFEs=MAX_FES, n_logpoint=50, log_interval=MAX_FES // 50, full_meta_data=False,
                                   device="cpu", dim=DIM)
    final, start = np.zeros(runs), time.perf_counter()
    for r in range(runs):
        seed = r + 1
        torch.manual_seed(seed)
        np.random.seed(seed)
        final[r] = agent.rollout_episode(PBO_Env(problem, optimizer_class(config)), seed)["cost"][-1]
    seconds = time.perf_counter() - start
    print(f"MetaBox F{fid}: {runs} runs done in {seconds:.0f} s", flush=True)
    return {"final": final, "seconds": seconds}


def jppo_final_costs(weights, runs: int, seed: int = 0) -> np.ndarray:
    """[problems, runs] final costs of the converted weights in jppo's GLEET env."""
    env, params, _ = gleet.suite("gleet-bbob10d", "test", "difficult")
    actor, critic = gleet_networks(rngs=nnx.Rngs(0))
    gleet_params(weights, actor, critic)

    def policy(key, obs):
        return actor.distribution(obs[None])[0].sample(key)[0]

    final, _ = metabbo_report.run_method(env, params, policy, jax.random.key(seed), runs)
    return final


def record(fids, runs: int, theirs: np.ndarray, metabox_seconds: list, mine: np.ndarray, jppo_seconds: float) -> dict:
    """What the report shows: per problem each side's m and SE, and z = |Δm| / combined SE; the times."""
    m_t, se_t = metabbo_report.log_cost_stats(theirs)
    m_m, se_m = metabbo_report.log_cost_stats(mine)
    z = np.abs(m_t - m_m) / np.maximum(np.sqrt(se_t**2 + se_m**2), 1e-12)
    return {"runs": runs, "fids": [int(f) for f in fids],
            "metabox": {"mean": m_t, "se": se_t, "seconds": metabox_seconds},
            "jppo": {"mean": m_m, "se": se_m, "seconds": jppo_seconds}, "z": z, "machine": report.machine()}


def table(rec: dict) -> tuple[str, int]:
    (m_t, se_t), (m_m, se_m) = [(np.asarray(rec[side]["mean"]), np.asarray(rec[side]["se"])) for side in ("metabox", "jppo")]
    z = np.asarray(rec["z"])
    lines = ["| problem | MetaBox (numpy + torch) | jppo (JAX env) | difference / combined SE | within 3 SE |",
             "|---|---|---|---|---|"]
    for p, fid in enumerate(rec["fids"]):
        lines.append(f"| F{fid} | {m_t[p]:.3f} ± {se_t[p]:.3f} | {m_m[p]:.3f} ± {se_m[p]:.3f} | {z[p]:.2f} | "
                     f"{'yes' if z[p] <= 3 else '**no**'} |")
    lines.append(f"| **mean over problems** | **{m_t.mean():.3f}** | **{m_m.mean():.3f}** | | |")
    return "\n".join(lines) + "\n", int((z <= 3).sum())


def markdown(rec: dict) -> str:
    runs, fids = rec["runs"], rec["fids"]
    timed = [s for s in rec["metabox"]["seconds"] if s is not None]
    t_metabox = (f"MetaBox {sum(timed) / (len(timed) * runs):.2f} s per episode, one after another (over the "
                 f"{len(timed)} problems whose time the cache holds)" if timed else
                 "MetaBox's time per episode not recorded (its runs were read back from an older cache)")
    text, agree = table(rec)
    return (f"# MetaBox's shipped GLEET in MetaBox and in jppo (bbob-10D, difficult split, test problems)\n\n"
            f"`JPPO_METABOX_SRC=… python -m benchmarks.gleet_parity --runs {runs}`: {__doc__.split(chr(10) + chr(10), 2)[2]}\n"
            f"Mean log10 final cost ± SE over {runs} runs per problem. **Agreement within 3 SE on {agree} of "
            f"{len(fids)} problems.**\n\n{text}\n"
            f"Wall time: jppo {rec['jppo']['seconds']:.0f} s (all {len(fids)}×{runs} runs one vmapped program, "
            f"compilation included); {t_metabox}.\n\n{rec['machine']}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=51)
    parser.add_argument("--out", type=Path, default=RESULTS / "gleet_parity.md")
    parser.add_argument("--report", action="store_true", help="redraw --out from the .json beside it, running nothing")
    parser.add_argument("--weights", type=Path, default=None, help="GLEET.npz (default: convert the shipped GLEET.pkl)")
    parser.add_argument("--cache", type=Path, default=caches.root() / "gleet_parity",
                        help="where MetaBox's per-problem final costs are kept between runs")
    parser.add_argument("--metabox-only", type=int, nargs="+", metavar="FID", default=None,
                        help="only fill the cache with MetaBox's runs on these problems (to split the work over processes)")
    args = parser.parse_args(argv)
    summary = args.out.with_suffix(".json")
    if args.report:
        args.out.write_text(markdown(report.read_summary(summary)))
        return
    src = os.environ.get(metabox_source.ENV)
    if not src:
        parser.error(metabox_source.SKIP_REASON)
    pkl = Path(src) / PKL
    agent = convert_checkpoint.load_agent(str(pkl))
    _, fids = bbob.bbob_suite(DIM, "difficult", "test")
    cache = caches.Cache(args.cache)
    if args.metabox_only:
        unknown = sorted(set(args.metabox_only) - set(int(f) for f in fids))
        if unknown:
            parser.error(f"--metabox-only: {unknown} are not test problems of the difficult split {list(fids)}")
        metabox_final_costs(agent, args.metabox_only, args.runs, cache)
        return
    npz = args.weights or args.out.with_suffix(".npz")
    if args.weights is None:
        convert_checkpoint.convert(str(pkl), npz)
    weights = read_weights(npz)
    start = time.perf_counter()
    mine = jppo_final_costs(weights, args.runs)
    t_jppo = time.perf_counter() - start
    theirs, seconds = metabox_final_costs(agent, list(fids), args.runs, cache)
    report.write_summary(summary, {**record(fids, args.runs, theirs, seconds, mine, t_jppo),
                                   "caches": {"dir": caches.shown(cache.directory), "entries": cache.used}})
    args.out.write_text(markdown(report.read_summary(summary)))
    if args.weights is None:
        npz.unlink()
    print(args.out.read_text())


if __name__ == "__main__":
    main()
