"""MetaBox's shipped GLEET (model/bbob-10D/difficult/GLEET.pkl) in MetaBox and in jppo, side by side.

    JPPO_METABOX_SRC=…/src/metaevobox python -m benchmarks.gleet_parity [--runs 51] [--out FILE]

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

from benchmarks import report
from compat import convert_checkpoint
from jppo.metabbo import bbob, gleet
from jppo.metabbo import report as metabbo_report
from jppo.metabbo.metabox_checkpoint import gleet_params, read_weights
from jppo.metabbo.networks import gleet_networks
from references import metabox_source

DIM, MAX_FES = 10, 20000


def metabox_problems(module, dim: int) -> dict:
    """MetaBox's bbob problems F1..F24 as `get_datasets` draws them (instance seed 3849, in order)."""
    np.random.seed(bbob.INSTANCE_SEED)
    problems = {}
    for fid in range(1, 25):
        shift = 0.8 * (np.random.random(dim) * 10 - 5)
        rotation, bias = module.rotate_gen(dim), np.random.randint(1, 26) * 100
        problems[fid] = getattr(module, f"F{fid}")(dim=dim, shift=shift, rotate=rotation, bias=bias, lb=-5, ub=5)
    return problems


def metabox_final_costs(agent, fids, runs: int, cache: Path | None = None) -> tuple[np.ndarray, list]:
    """`([problems, runs] final costs, [problems] seconds or None)` of MetaBox's agent on its numpy GLEET
    optimizer (Tester conventions).

    With `cache`, each problem's runs are kept in `cache/metabox_F{fid}_runs{runs}.npy` (and their wall time
    in a `.seconds` file beside it) and read back on the next call (MetaBox's side takes about an hour; a
    stopped run resumes at the next problem)."""
    import torch

    from metaevobox.environment.basic_environment import PBO_Env

    torch.set_default_dtype(torch.float64)
    optimizer_class, module = metabox_source.gleet_optimizer_class(), metabox_source.bbob_numpy()
    problems = metabox_problems(module, DIM)
    config = types.SimpleNamespace(maxFEs=MAX_FES, n_logpoint=50, log_interval=MAX_FES // 50, full_meta_data=False,
                                   device="cpu", dim=DIM)
    out, seconds = np.zeros((len(fids), runs)), []
    for p, fid in enumerate(fids):
        path = cache / f"metabox_F{fid}_runs{runs}.npy" if cache else None
        if path is not None and path.exists():
            out[p] = np.load(path)
            timing = path.with_suffix(".seconds")
            seconds.append(float(timing.read_text()) if timing.exists() else None)
            continue
        start = time.perf_counter()
        for r in range(runs):
            seed = r + 1
            torch.manual_seed(seed)
            np.random.seed(seed)
            env = PBO_Env(problems[fid], optimizer_class(config))
            out[p, r] = agent.rollout_episode(env, seed)["cost"][-1]
        seconds.append(time.perf_counter() - start)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, out[p])
            path.with_suffix(".seconds").write_text(f"{seconds[-1]:.1f}\n")
            print(f"MetaBox F{fid}: {runs} runs done in {seconds[-1]:.0f} s", flush=True)
    return out, seconds


def jppo_final_costs(weights, runs: int, seed: int = 0) -> np.ndarray:
    """[problems, runs] final costs of the converted weights in jppo's GLEET env."""
    env, params, _ = gleet.suite("gleet-bbob10d", "test", "difficult")
    actor, critic = gleet_networks(rngs=nnx.Rngs(0))
    gleet_params(weights, actor, critic)

    def policy(key, obs):
        return actor.distribution(obs[None])[0].sample(key)[0]

    final, _ = metabbo_report.run_method(env, params, policy, jax.random.key(seed), runs)
    return final


def table(fids, theirs: np.ndarray, mine: np.ndarray) -> tuple[str, int]:
    m_t, se_t = metabbo_report.log_cost_stats(theirs)
    m_m, se_m = metabbo_report.log_cost_stats(mine)
    z = np.abs(m_t - m_m) / np.maximum(np.sqrt(se_t**2 + se_m**2), 1e-12)
    lines = ["| problem | MetaBox (numpy + torch) | jppo (JAX env) | difference / combined SE | within 3 SE |",
             "|---|---|---|---|---|"]
    for p, fid in enumerate(fids):
        lines.append(f"| F{fid} | {m_t[p]:.3f} ± {se_t[p]:.3f} | {m_m[p]:.3f} ± {se_m[p]:.3f} | {z[p]:.2f} | "
                     f"{'yes' if z[p] <= 3 else '**no**'} |")
    lines.append(f"| **mean over problems** | **{m_t.mean():.3f}** | **{m_m.mean():.3f}** | | |")
    return "\n".join(lines) + "\n", int((z <= 3).sum())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=51)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "gleet_parity.md")
    parser.add_argument("--weights", type=Path, default=None, help="GLEET.npz (default: convert the shipped GLEET.pkl)")
    parser.add_argument("--cache", type=Path, default=Path(__file__).parent / "results" / "gleet_parity",
                        help="where MetaBox's per-problem final costs are kept between runs")
    parser.add_argument("--metabox-only", type=int, nargs="+", metavar="FID", default=None,
                        help="only fill the cache with MetaBox's runs on these problems (to split the work over processes)")
    args = parser.parse_args(argv)
    src = os.environ.get(metabox_source.ENV)
    if not src:
        parser.error(metabox_source.SKIP_REASON)
    pkl = Path(src) / "model" / "bbob-10D" / "difficult" / "GLEET.pkl"
    agent = convert_checkpoint.load_agent(str(pkl))
    _, fids = bbob.bbob_suite(DIM, "difficult", "test")
    if args.metabox_only:
        unknown = sorted(set(args.metabox_only) - set(int(f) for f in fids))
        if unknown:
            parser.error(f"--metabox-only: {unknown} are not test problems of the difficult split {list(fids)}")
        metabox_final_costs(agent, args.metabox_only, args.runs, args.cache)
        return
    npz = args.weights or args.out.with_suffix(".npz")
    if args.weights is None:
        convert_checkpoint.convert(str(pkl), npz)
    weights = read_weights(npz)
    start = time.perf_counter()
    mine = jppo_final_costs(weights, args.runs)
    t_jppo = time.perf_counter() - start
    theirs, seconds = metabox_final_costs(agent, list(fids), args.runs, args.cache)
    timed = [s for s in seconds if s is not None]
    t_metabox = (f"MetaBox {sum(timed) / (len(timed) * args.runs):.2f} s per episode, one after another (over the "
                 f"{len(timed)} problems whose time the cache holds)" if timed else
                 "MetaBox's time per episode not recorded (its runs were read back from an older cache)")
    text, agree = table(list(fids), theirs, mine)
    doc = (f"# MetaBox's shipped GLEET in MetaBox and in jppo (bbob-10D, difficult split, test problems)\n\n"
           f"`JPPO_METABOX_SRC=… python -m benchmarks.gleet_parity --runs {args.runs}`: {__doc__.split(chr(10) + chr(10), 2)[2]}\n"
           f"Mean log10 final cost ± SE over {args.runs} runs per problem. **Agreement within 3 SE on {agree} of "
           f"{len(fids)} problems.**\n\n{text}\n"
           f"Wall time: jppo {t_jppo:.0f} s (all {len(fids)}×{args.runs} runs one vmapped program, compilation "
           f"included); {t_metabox}.\n\n{report.machine()}\n")
    args.out.write_text(doc)
    if args.weights is None:
        npz.unlink()
    print(doc)


if __name__ == "__main__":
    main()
