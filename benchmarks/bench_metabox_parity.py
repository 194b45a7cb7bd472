"""Same settings, same science? jppo's RLEPSO against MetaBox's own, on MetaBox's difficult bbob-10D split.

MetaBox's shipped RLEPSO (metaevobox 2.0.2, model/bbob-10D/difficult/RLEPSO.pkl) trained on F1, F2, F3, F5,
F15, F16, F17, F21 for 14400 learning steps (30 epochs of 8 batch episodes × 16 envs, 'single' batching,
lr 1e-5). Sections:

1. The pretrained policy on the 16 test problems, 51 runs each: jppo's env (converted weights,
   `jppo.metabbo.report.run_method`) vs MetaBox's numpy `RLEPSO_Optimizer` and torch agent under its
   Tester's rules (`benchmarks.metabox_side`): mean log10 final cost ± standard error, agreement within 3 SE.
2. jppo trained with MetaBox's settings and batching (3 seeds, 4800 windows = 14400 learning steps),
   evaluated on the same test problems against RLEPSO.pkl (paired runs, bootstrap), and how far each
   policy's μ and σ moved over fes/maxFEs ∈ [0, 1]; update sizes per window to explain the difference.
3. Training curves three ways on the same split: jppo's compiled trainer, compat's PPO_Agent under
   MetaBox's Trainer on MetaBox's numpy env, MetaBox's torch RLEPSO as shipped.
4. Wall-clock of each way.
5. The whole budget (30 epochs × 16 envs, RLEPSO.pkl's) from one start, three ways: each way's final policy
   on the test problems next to RLEPSO.pkl and the start (paired runs), and how far μ and σ moved; this is
   where MetaBox's re-evaluation at the window's last state shows over a long run, if it does.

Heavy results are cached as .npz under `<out>/metabox_parity/` (`-quick` for --quick), so a rerun
resumes and rebuilds the markdown. MetaBox's parts need metaevobox and torch importable (the
`/work/mbvenv`-style venv of references/metabox_dropin.py); without them they are skipped with a line.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import metabox_side, report
from jppo.metabbo import report as mreport
from jppo.metabbo import rlepso

ENV_ID, DIFFICULTY = "rlepso-bbob10d", "difficult"
COST_FLOOR = mreport.COST_FLOOR


@dataclasses.dataclass(frozen=True)
class Scale:
    runs: int  # test runs per problem (MetaBox's Tester: 51)
    max_fes: int  # evaluations per episode (bbob-10D: 20000)
    train_windows: int  # section 2: windows of the jppo training run (14400 learning steps / K)
    train_seeds: int
    num_envs: int  # section 2 batch (MetaBox's train_batch_size)
    curve_epochs: int  # section 3: epochs of 8 batch episodes
    curve_envs: int  # section 3 batch size
    curve_seeds: int
    train_runs: int = 51  # section 2: test runs per problem for the trained seeds (0: not evaluated)
    long_epochs: int = 30  # section 5: the whole budget (30 epochs × 8 batch episodes = 14400 learning steps)
    long_envs: int = 16
    long_seeds: int = 1  # per way (0: section 5 is not run)
    problems: int | None = None  # test problems used (None: all 16)
    evaluate_fn: object = None  # jppo's env: f(problem, x) in place of BBOB (tests: a cheap stand-in)
    metabox: bool = True  # run MetaBox's parts when metaevobox imports
    metabox_costs_way: bool = True  # sections 3 and 5 also run jppo with MetaBox's cost arithmetic
    train_metabox_costs: bool = False  # section 2 trains with MetaBox's cost arithmetic, in float64 as MetaBox


def make_env(scale: Scale, metabox_costs: bool = False) -> rlepso.RLEPSOEnv:
    """RLEPSO's env on jppo's BBOB (or `scale.evaluate_fn`). `metabox_costs`: costs computed as MetaBox computes
    them, eval(x) - eval(x*) with the bias in both (in float64 they are then quantised at the bias's spacing,
    as MetaBox's are), in place of jppo's f(x) - bias evaluated directly."""
    reward = rlepso.SUITES[ENV_ID][2]
    if scale.evaluate_fn is None:
        return rlepso.RLEPSOEnv(reward=reward, metabox_costs=metabox_costs)
    evaluate = (lambda problem, x: scale.evaluate_fn(problem, x) + problem.bias) if metabox_costs else scale.evaluate_fn
    return rlepso.RLEPSOEnv(reward=reward, evaluate_fn=evaluate)


def with_metabox(scale: Scale) -> bool:
    return scale.metabox and metabox_side.available()


FULL = Scale(runs=51, max_fes=20000, train_windows=4800, train_seeds=3, num_envs=16, curve_epochs=7, curve_envs=4,
             curve_seeds=3, train_metabox_costs=True)
QUICK = Scale(runs=3, max_fes=1000, train_windows=4, train_seeds=2, num_envs=2, curve_epochs=1, curve_envs=2,
              curve_seeds=2, train_runs=3, problems=2, long_epochs=1, long_envs=2)


def log_cost(costs) -> np.ndarray:
    return np.log10(np.maximum(np.asarray(costs, float), COST_FLOOR))


def mean_se(x, axis=-1):
    x = np.asarray(x, float)
    return x.mean(axis), x.std(axis, ddof=1) / math.sqrt(x.shape[axis])


def cached(path: Path, compute):
    """`compute()` (a dict of arrays) saved to `path` once; later calls read it back."""
    if path.exists():
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    result = {k: np.asarray(v) for k, v in compute().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **result)
    tmp.replace(path)
    return result


# ---------------------------------------------------------------- the pretrained policy in jppo


def weights_file(cache: Path, scale: Scale) -> Path | None:
    """RLEPSO.pkl converted once (compat.convert_checkpoint) to `cache/RLEPSO.npz`; None without MetaBox."""
    path = cache / "RLEPSO.npz"
    if not scale.metabox:
        return None
    if not path.exists():
        if not metabox_side.available():
            return None
        from compat.convert_checkpoint import convert

        cache.mkdir(parents=True, exist_ok=True)
        convert(metabox_side.pretrained_pkl(), path)
    return path


def test_suite(scale: Scale):
    """`(env, params, fids)`: the difficult split's test problems (the first `scale.problems`)."""
    _, params, fids = rlepso.suite(ENV_ID, "test", DIFFICULTY)
    env = make_env(scale)
    if scale.problems is not None:
        fids = fids[: scale.problems]
        params = params.replace(problem=jax.tree.map(lambda x: x[: scale.problems], params.problem))
    return env, params.replace(max_fes=scale.max_fes), list(fids)


def jppo_policy(config):
    """jppo's RLEPSO actor-critic for `config` (its `ActorCritic`, from the trainer jppo would train with)."""
    from jppo.fit import make_trainer

    return make_trainer(config).policy


def pretrained_params(weights_path: Path):
    """`(config, policy, params)`: MetaBox's RLEPSO weights in jppo's networks."""
    from jppo.metabbo.metabox_checkpoint import metabox_config, read_weights, rlepso_params
    from jppo.policy import ActorCritic
    from jppo.train import make_networks

    weights = read_weights(weights_path)
    config = metabox_config(weights, ENV_ID, difficulty=DIFFICULTY)
    policy = jppo_policy(config)
    actor, critic = make_networks(rlepso.RLEPSOEnv(), config, jax.random.key(0))
    rlepso_params(weights, actor, critic)
    return config, policy, ActorCritic.split(actor, critic)[1]


def sampler(policy, params):
    return lambda key, obs: policy.distribution(params, obs).sample(key)


def jppo_test_costs(policy, params, scale: Scale, seed: int = 0):
    """`(final costs [P, runs], seconds)` of `params` on the test problems in jppo's env (float64, as
    MetaBox), run r of every policy from the same key (paired runs)."""
    env, suite, _ = test_suite(scale)
    start = time.perf_counter()
    final, _ = mreport.run_method(env, suite, sampler(policy, params), jax.random.key(seed), scale.runs)
    return final, time.perf_counter() - start


def section_pretrained(cache: Path, scale: Scale) -> tuple[list, list, dict]:
    """Section 1: `(markdown lines, figure panels, data)`."""
    weights = weights_file(cache, scale)
    if weights is None:
        return [f"Skipped: MetaBox's RLEPSO.pkl needs metaevobox and torch ({metabox_side.__name__}); "
                f"run this benchmark in a venv where both import."], [], {}
    _, _, fids = test_suite(scale)
    with jax.enable_x64(True):
        _, policy, params = pretrained_params(weights)
        jp = cached(cache / f"pretrained_jppo_r{scale.runs}.npz",
                    lambda: dict(zip(("final", "seconds"), jppo_test_costs(policy, params, scale))))
    mb = cached(cache / f"pretrained_metabox_r{scale.runs}.npz", lambda: _metabox_pretrained(scale))
    lines, rows, disagree = _agreement(fids, log_cost(jp["final"]), log_cost(mb["final"]))
    lines = lines + [
        f"jppo: {scale.runs} runs per problem in one vmapped program, {float(jp['seconds']):.0f} s in all "
        f"(compilation included); MetaBox: {float(mb['seconds']) * 1e3:.0f} ms per episode, one after another.",
    ]
    return lines, rows, {"fids": fids, "jppo": jp["final"], "metabox": mb["final"], "disagree": disagree}


def _metabox_pretrained(scale: Scale) -> dict:
    cfg = metabox_side.config()
    _, test = metabox_side.problem_sets(cfg)
    test = test[: scale.problems] if scale.problems is not None else test
    agent = metabox_side.load_pretrained()
    final, history, seconds = metabox_side.rollout_final_costs(agent, test, scale.runs, cfg, scale.max_fes)
    return {"final": final, "history": history, "seconds": seconds, "fids": [metabox_side.fid(p) for p in test]}


def _agreement(fids, jp_log, mb_log):
    """Markdown table rows of mean log10 final cost ± SE per problem, and which differ by > 3 SE of the difference."""
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


# ---------------------------------------------------------------- jppo trained with MetaBox's settings


def train_config(scale: Scale, num_envs: int, windows: int, seed: int = 0, init: str = "torch",
                 metabox_costs: bool = False):
    """The `rlepso-bbob10d` preset with MetaBox's RLEPSO run: lr 1e-5, MetaBox's bootstrap at termination,
    'single' batching on the difficult split, networks started as torch starts them (the preset's init)."""
    from jppo.config import preset

    return preset(ENV_ID, learning_rate=1e-5, bootstrap_terminal=True, num_envs=num_envs, batching="single",
                  difficulty=DIFFICULTY, total_steps=windows * num_envs * 10, seed=seed, init=init,
                  metabox_costs=metabox_costs)


def make_trainer(config, scale: Scale, metabox_costs: bool = False):
    from jppo.nstep import NStepTrainer

    _, params = rlepso.train_suite(ENV_ID, DIFFICULTY)
    return NStepTrainer(config, env=make_env(scale, metabox_costs), env_params=params.replace(max_fes=scale.max_fes))


def _flat(tree) -> dict:
    return {f"leaf{i:03d}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(tree))}


def _unflat(data: dict, prefix: str, template):
    leaves = [data[f"{prefix}leaf{i:03d}"] for i in range(len(jax.tree.leaves(template)))]
    return jax.tree.unflatten(jax.tree.structure(template), leaves)


METRIC_KEYS = ("episodic_return", "final_cost", "value_loss", "policy_loss", "approx_kl_metabox", "clip_fraction")


def train_jppo(cache: Path, scale: Scale):
    """Section 2's run: `(config, trainer, start params [S,...], trained params [S,...], metrics, seconds)`."""
    from jppo.fit import fit

    mbcost = scale.train_metabox_costs
    config = train_config(scale, scale.num_envs, scale.train_windows, metabox_costs=mbcost)
    def run():
        result = fit(config, num_seeds=scale.train_seeds, show_progress=False, trainer=trainer)
        metrics = {k: result.metrics[k] for k in METRIC_KEYS}
        return {**{f"end_{k}": v for k, v in _flat(result.state.params).items()}, **metrics,
                "seconds": result.seconds, "compile_seconds": result.compile_seconds,
                "device": f"{jax.devices()[0].platform}: {jax.devices()[0].device_kind}"}

    with jax.enable_x64(mbcost):  # the env's problems too
        trainer = make_trainer(config, scale, metabox_costs=mbcost)
        start = start_params(trainer, config, scale.train_seeds)
        data = cached(cache / f"train_jppo_torchinit{train_tag(scale)}_w{scale.train_windows}_s{scale.train_seeds}_"
                              f"b{scale.num_envs}.npz", run)
    return config, trainer, start, _unflat(data, "end_", start), data


def train_tag(scale: Scale) -> str:
    """Cache-name tag of section 2's run: '' (exact costs, float32) or '_mbcost64' (MetaBox's costs, float64)."""
    return "_mbcost64" if scale.train_metabox_costs else ""


def start_params(trainer, config, num_seeds: int):
    """[S, ...] the initial params of `fit(config, num_seeds=S)` (seed keys split from config.seed, then
    `NStepTrainer.init`'s split), built eagerly, without compiling the env's reset (equal to the jitted
    init to float rounding)."""
    from jppo.policy import ActorCritic
    from jppo.train import make_networks

    def one(key):
        net_key = jax.random.split(key, 3)[1]
        return ActorCritic.split(*make_networks(trainer.env, config, net_key))[1]

    keys = jax.random.split(jax.random.key(config.seed), num_seeds)
    return jax.tree.map(lambda *xs: jnp.stack(xs), *[one(k) for k in keys])


def _index(tree, i):
    return jax.tree.map(lambda x: x[i], tree)


def _stack(trees, dtype):
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x, dtype) for x in xs]), *trees)


def policy_fn(policy):
    return lambda p, key, obs: policy.distribution(p, obs).sample(key)


def evaluate_many(cache: Path, name: str, policy, params_list, scale: Scale, seed: int = 0):
    """Final costs [M, P, runs] of M parameter sets on the test problems, float64, paired runs, one compile."""

    def run():
        env, suite, _ = test_suite(scale)
        start = time.perf_counter()
        final, _ = mreport.run_policies(env, suite, policy_fn(policy), _stack(params_list, jnp.float64),
                                        jax.random.key(seed), scale.runs)
        return {"final": final, "seconds": time.perf_counter() - start}

    with jax.enable_x64(True):
        return cached(cache / f"{name}.npz", run)


def paired_bootstrap(a_log, b_log, resamples: int = 2000, seed: int = 0) -> float:
    """P(a better than b): the share of bootstrap resamples (runs resampled per problem, the same indices for
    both: runs are paired) in which a's mean log10 cost, averaged over problems, is lower than b's."""
    rng = np.random.default_rng(seed)
    problems, runs = a_log.shape
    idx = rng.integers(0, runs, (resamples, problems, runs))
    diff = np.take_along_axis(a_log[None] - b_log[None], idx, axis=2).mean(axis=(1, 2))
    return float((diff < 0).mean())


def mu_sigma(policy, params, t=None):
    """`(μ [T, 35], σ [T, 35])` of jppo's RLEPSO actor at states fes/maxFEs = t."""
    t = metabox_side.SNAPSHOT_T if t is None else t
    dist = policy.distribution(params, jnp.asarray(t[:, None], jax.tree.leaves(params)[0].dtype))
    return np.asarray(dist.loc), np.asarray(dist.scale)


def rms(x) -> str:
    return f"{float(np.sqrt(np.mean(x ** 2))):.3f}"


def movement_row(name, mu, sigma, mu0=None, sigma0=None):
    return (name, f"{mu.mean():.3f}", f"{np.abs(mu - 0.5).mean():.3f}", f"{sigma.mean():.3f}",
            f"{sigma[0].mean():.3f} / {sigma[-1].mean():.3f}",
            "-" if mu0 is None else rms(mu - mu0), "-" if sigma0 is None else rms(sigma - sigma0))


MOVEMENT_HEADER = ("policy", "mean μ", "mean abs(μ - 0.5)", "mean σ", "mean σ at t=0 / t=1", "RMS Δμ from start",
                   "RMS Δσ from start")


def section_trained(cache: Path, scale: Scale, pretrained: dict):
    """Section 2: `(lines, (header, rows), movement rows, curves for the plot)`, or None at train_windows 0."""
    if scale.train_windows == 0:
        return None
    config, trainer, start, end, data = train_jppo(cache, scale)
    policy, seeds = trainer.policy, scale.train_seeds
    weights = weights_file(cache, scale)
    pkl = None
    if weights is not None:
        with jax.enable_x64(True):
            _, _, pkl = pretrained_params(weights)
    lines = [f"jppo: `train_config` = preset {ENV_ID} with lr 1e-5, bootstrap_terminal, batching 'single', difficulty "
             f"'{DIFFICULTY}', {scale.num_envs} envs, {scale.train_windows} windows ({scale.train_windows * 3} learning "
             f"steps), {seeds} seeds vmapped, "
             f"{'float64, MetaBox cost arithmetic (metabox_costs)' if scale.train_metabox_costs else 'float32'}: "
             f"{float(data['seconds']):.0f} s (compile {float(data['compile_seconds']):.0f} s)"
             f"{' on ' + str(data['device']) if 'device' in data else ''}."]
    table = (("-",), [])
    if scale.train_runs:
        more, table = _trained_eval(cache, scale, policy, start, end, pkl)
        lines += more
    else:
        lines.append("Test evaluation of the trained seeds not run at this scale (train_runs 0).")
    move, curves = [], {}
    for s in range(seeds):
        mu0, s0 = mu_sigma(policy, _index(start, s))
        mu1, s1 = mu_sigma(policy, _index(end, s))
        move += [movement_row(f"jppo seed {s} start", mu0, s0), movement_row(f"jppo seed {s} trained", mu1, s1, mu0, s0)]
        curves[f"jppo seed {s} start"], curves[f"jppo seed {s}"] = (mu0, s0), (mu1, s1)
    if pkl is not None:
        with jax.enable_x64(True):
            mu, sg = mu_sigma(policy, pkl)
        move.append(movement_row("RLEPSO.pkl (MetaBox, 14400 steps)", mu, sg))
        curves["RLEPSO.pkl"] = (mu, sg)
        for s, (mu0, s0) in enumerate(torch_inits(cache, policy, 5) if with_metabox(scale) else []):
            move.append(movement_row(f"MetaBox torch init {s} (RLEPSO.pkl's kind of start)", mu0, s0))
            curves[f"torch init {s}"] = (mu0, s0)
    return lines, table, move, curves


def _trained_eval(cache: Path, scale: Scale, policy, start, end, pkl):
    """The trained seeds, their starts and RLEPSO.pkl on the test problems (paired runs): lines and a table."""
    seeds = scale.train_seeds
    methods = ([("RLEPSO.pkl", pkl)] if pkl is not None else []) + \
        [(f"jppo seed {s}", _index(end, s)) for s in range(seeds)] + [("jppo start", _index(start, 0))]
    name = f"eval_trained_torchinit{train_tag(scale)}_w{scale.train_windows}_s{seeds}_b{scale.num_envs}_r{scale.train_runs}"
    ev = evaluate_many(cache, name, policy, [p for _, p in methods], dataclasses.replace(scale, runs=scale.train_runs))
    logs = {name: log_cost(ev["final"][m]) for m, (name, _) in enumerate(methods)}
    _, _, fids = test_suite(scale)
    header = ("problem", *[name for name, _ in methods])
    rows = [(f"F{f}", *[f"{logs[name][p].mean():.3f}" for name, _ in methods]) for p, f in enumerate(fids)]
    rows.append(("**mean over problems**", *[f"**{logs[name].mean(axis=1).mean():.3f}**" for name, _ in methods]))
    lines = [f"Test: {scale.train_runs} paired runs per problem, float64, {float(ev['seconds']):.0f} s."]
    for s in range(seeds):
        name = f"jppo seed {s}"
        if pkl is not None:
            wins = int((logs[name].mean(1) < logs["RLEPSO.pkl"].mean(1)).sum())
            lines.append(f"{name} vs RLEPSO.pkl: lower mean log10 cost on {wins} of {len(fids)} problems; "
                         f"P(jppo better) = {paired_bootstrap(logs[name], logs['RLEPSO.pkl']):.2f}.")
        wins0 = int((logs[name].mean(1) < logs["jppo start"].mean(1)).sum())
        lines.append(f"{name} vs jppo's start: lower on {wins0} of {len(fids)}; P(trained better) = "
                     f"{paired_bootstrap(logs[name], logs['jppo start']):.2f}.")
    lines.append("'jppo start' is seed 0's initial policy (torch's initialisation, as MetaBox's agents start; each "
                 "seed starts at its own schedule: see the movement table).")
    return lines, (header, rows)


def torch_inits(cache: Path, policy, count: int):
    """μ, σ of `count` fresh torch initialisations of MetaBox's RLEPSO networks (seeds 0..count-1)."""
    def compute():
        from jppo.metabbo.metabox_checkpoint import rlepso_params
        from jppo.train import make_networks

        out = {}
        for s in range(count):
            config = train_config(QUICK, 2, 1)
            actor, critic = make_networks(rlepso.RLEPSOEnv(), config, jax.random.key(0))
            rlepso_params(metabox_side.init_weights(s), actor, critic)
            from jppo.policy import ActorCritic

            out[f"mu{s}"], out[f"sigma{s}"] = mu_sigma(policy, ActorCritic.split(actor, critic)[1])
        return out

    if not (cache / "torch_inits.npz").exists() and not metabox_side.available():
        return []
    with jax.enable_x64(True):
        data = cached(cache / "torch_inits.npz", compute)
    return [(data[f"mu{s}"], data[f"sigma{s}"]) for s in range(count)]


# ---------------------------------------------------------------- training curves, three ways

WAYS = ("jppo", "jppo_mbcost", "compat", "metabox")
JPPO_WAYS = ("jppo", "jppo_mbcost")
WAY_NAMES = {"jppo": "jppo compiled, JAX env", "jppo_mbcost": "jppo compiled, JAX env, MetaBox's cost arithmetic",
             "compat": "compat PPO_Agent, MetaBox's Trainer + numpy env",
             "metabox": "MetaBox's torch RLEPSO as shipped"}


def _initial_params(trainer, config, weights):
    """jppo's params for `weights` (MetaBox's torch init), or None to keep jppo's own init."""
    if weights is None:
        return None
    from jppo.metabbo.metabox_checkpoint import rlepso_params
    from jppo.policy import ActorCritic
    from jppo.train import make_networks

    actor, critic = make_networks(trainer.env, config, jax.random.key(0))
    rlepso_params(weights, actor, critic)
    return ActorCritic.split(actor, critic)[1]


JPPO_DIAGNOSTICS = ("policy_loss", "value_loss", "approx_kl_metabox", "clip_fraction", "entropy")


def jppo_curves(scale: Scale, seed: int, weights=None, metabox_costs: bool = False) -> dict:
    """jppo's compiled trainer (float64, as MetaBox) on the section-3 setting, one window per call: per batch
    episode the mean return, the final costs [B], the problem's fid, seconds, and the actor's μ, σ after it;
    the final params ('end_*'). `metabox_costs`: see `make_env`."""
    from jppo import batching

    episodes = scale.curve_epochs * 8
    config = train_config(scale, scale.curve_envs, windows=episodes * 25, seed=seed)
    trainer = make_trainer(config, scale, metabox_costs)
    state = jax.jit(trainer.init)(jax.random.key(seed))
    params = _initial_params(trainer, config, weights)
    if params is not None:
        params = jax.tree.map(lambda new, old: jnp.asarray(new, old.dtype), params, state.params)
        state = state.replace(params=params, opt_state=trainer.optimizer.init(params))
    fids = rlepso.suite(ENV_ID, "train", DIFFICULTY)[2]
    out = {k: [] for k in ("return", "final_cost", "problem", "seconds", "mu", "sigma", *JPPO_DIAGNOSTICS)}
    for _ in range(episodes):
        tick, windows = time.perf_counter(), []
        while True:
            state, metrics = jax.block_until_ready(trainer.run(state, 1))
            windows.append({k: float(metrics[k][0]) for k in JPPO_DIAGNOSTICS})
            if bool(state.ended):
                break
        for k in JPPO_DIAGNOSTICS:
            out[k].append(np.mean([w[k] for w in windows]))
        out["seconds"].append(time.perf_counter() - tick)
        out["return"].append(float(np.mean(state.episode_return)))
        out["final_cost"].append(np.asarray(state.env_state.gbest_cost))
        index = batching.problems("single", state.schedule, trainer.num_problems, config.num_envs)[0]
        out["problem"].append(fids[int(index)])
        mu, sigma = mu_sigma(trainer.policy, state.params)
        out["mu"].append(mu)
        out["sigma"].append(sigma)
    return {**{k: np.asarray(v) for k, v in out.items()},
            **{f"end_{k}": v for k, v in _flat(state.params).items()}}


def curves(cache: Path, scale: Scale, long: bool = False, ways=WAYS) -> tuple[dict, list[str]]:
    """`({way: [per-seed dicts]}, crash notes)` for the ways that can run here (MetaBox's need metaevobox and
    torch). A MetaBox run that MetaBox's own code ends with an exception is recorded (`*.crash.txt`) and
    replaced by the next seed, at most two extra seeds. `long`: section 5's setting (`scale.long_*`: the
    whole budget), where MetaBox's ragged cost-log crash is mended (`metabox_side.mended_cost_logs`)."""
    have_metabox = with_metabox(scale)
    epochs, envs, seeds = ((scale.long_epochs, scale.long_envs, scale.long_seeds) if long
                           else (scale.curve_epochs, scale.curve_envs, scale.curve_seeds))
    scale = dataclasses.replace(scale, curve_epochs=epochs, curve_envs=envs)
    result, crashes = {}, []
    for way in ways:
        if (way not in JPPO_WAYS and not have_metabox) or (way == "jppo_mbcost" and not scale.metabox_costs_way):
            continue
        runs, seed = [], 0
        while len(runs) < seeds and seed < seeds + (0 if way in JPPO_WAYS else 2):
            path = cache / f"curve_{way}_s{seed}_e{epochs}_b{envs}.npz"
            crash = path.with_suffix(".crash.txt")
            if way in JPPO_WAYS:
                weights = metabox_side.init_weights(seed) if have_metabox else None
                with jax.enable_x64(True):
                    runs.append(cached(path, lambda: jppo_curves(scale, seed, weights, way == "jppo_mbcost")))
            elif not crash.exists():
                try:
                    runs.append(cached(path, lambda: metabox_side.train_curves(
                        way, seed, epochs, envs, cache / "work" / f"{way}{seed}", scale.max_fes, mend_cost_logs=long)))
                except Exception as err:  # only MetaBox's own code may fail here
                    if not metabox_side.raised_in_metabox(err):
                        raise
                    crash.write_text(metabox_side.crash_report(err))
            if crash.exists():
                crashes.append(f"{WAY_NAMES[way]}, seed {seed}: {crash.read_text().strip()}")
            seed += 1
        result[way] = runs
    return result, crashes


def per_epoch(values: np.ndarray, epochs: int) -> np.ndarray:
    """Means over each epoch's 8 batch episodes (one per train problem, so the order does not matter)."""
    return np.asarray(values)[: epochs * 8].reshape(epochs, 8).mean(axis=1)


def epoch_stats(runs: list, key: str, epochs: int):
    """[seeds, epochs] of per-epoch means: 'return', or 'log_cost' (mean log10 final cost over the batch)."""
    get = (lambda r: log_cost(r["final_cost"]).mean(axis=1)) if key == "log_cost" else (lambda r: r[key])
    return np.stack([per_epoch(get(r), epochs) for r in runs])


def section_curves(cache: Path, scale: Scale):
    """Section 3: `(lines, tables, plot data)`."""
    ways, crashes = curves(cache, scale)
    epochs = scale.curve_epochs
    lines = [f"Setting: the difficult split's 8 train problems, MetaBox's 'single' batching ({scale.curve_envs} envs per "
             f"batch episode, all on one problem), {epochs} epochs = {epochs * 8} batch episodes, "
             f"{scale.curve_seeds} seeds; lr 1e-5, MetaBox's bootstrap, float64 in every way. Seed s: MetaBox's "
             f"Trainer seed {metabox_side.metabox_seed(0)} + s, and all three ways start from the same networks, "
             f"torch's initialisation under that seed (compat and jppo load its weights)."]
    if "compat" not in ways:
        lines.append(f"MetaBox's two ways skipped: {metabox_side.__name__} needs metaevobox and torch; jppo starts "
                     f"from its own initialisation.")
    for note in crashes:
        lines.append(f"Crashed inside MetaBox's code, replaced by the next seed: {note}")
    lines.append(RETURN_NOTE)
    tables = []
    for key, label in (("return", "return (±1 reward, mean over the batch)"),
                       ("log_cost", "mean log10 final train cost")):
        stats = {way: epoch_stats(runs, key, epochs) for way, runs in ways.items()}
        header = ("epoch", *[WAY_NAMES[w] for w in stats])
        rows = [(e + 1, *[f"{s[:, e].mean():.3f} ± {s[:, e].std(ddof=1) if len(s) > 1 else 0:.3f}"
                          for s in stats.values()]) for e in range(epochs)]
        tables.append((f"Per epoch: {label}, mean ± sd over seeds", header, rows))
        for way in JPPO_WAYS:
            if "compat" in stats and way in stats:
                a, b = stats[way], stats["compat"]
                spread = np.sqrt(a.std(axis=0, ddof=1) ** 2 + b.std(axis=0, ddof=1) ** 2)
                inside = int((np.abs(a.mean(0) - b.mean(0)) <= spread).sum())
                lines.append(f"{label}: {WAY_NAMES[way]} and compat differ by less than their seed-to-seed spread "
                             f"(√(sd_jppo² + sd_compat²)) in {inside} of {epochs} epochs.")
    move_rows = []
    for way, runs in ways.items():
        mu_end, sig_end = np.stack([r["mu"][-1] for r in runs]), np.stack([r["sigma"][-1] for r in runs])
        mu_first, sig_first = np.stack([r["mu"][0] for r in runs]), np.stack([r["sigma"][0] for r in runs])
        move_rows.append((WAY_NAMES[way], f"{sig_first.mean():.3f}", f"{sig_end.mean():.3f}",
                          f"{np.sqrt(((mu_end - mu_first) ** 2).mean()):.4f}",
                          f"{np.sqrt(((sig_end - sig_first) ** 2).mean()):.4f}"))
    tables.append(per_problem_table(ways))
    tables.append(diagnostics_table(ways))
    tables.append(("How far the actor moved (after the first batch episode → after the last; over t ∈ [0, 1], "
                   "35 dims, seeds)", ("way", "mean σ after episode 1", "mean σ at the end",
                                      "RMS Δμ", "RMS Δσ"), move_rows))
    return lines, tables, ways


def per_problem_table(ways: dict):
    """Mean return and mean log10 final cost per train problem, over every batch episode on it and every seed."""
    def by_problem(runs):
        out = {}
        for r in runs:
            for fid_, ret, cost in zip(r["problem"], r["return"], r["final_cost"]):
                out.setdefault(int(fid_), []).append((float(ret), float(log_cost(cost).mean())))
        return {f: np.asarray(v) for f, v in out.items()}

    stats = {way: by_problem(runs) for way, runs in ways.items()}
    fids = sorted(next(iter(stats.values())))
    rows = [(f"F{f}", *[f"{s[f][:, 0].mean():.1f} / {s[f][:, 1].mean():.2f}" for s in stats.values()]) for f in fids]
    return ("Per train problem: mean return / mean log10 final cost (all batch episodes and seeds)",
            ("problem", *[WAY_NAMES[w] for w in stats]), rows)


RETURN_NOTE = ("Why returns can differ where final costs agree: the ±1 reward counts improvements of c(gbest) however "
               "small. MetaBox's cost is f(x) - f(x*) computed as eval(x) - optimum, eval including the bias "
               "(100-2500), so its costs are quantised at the bias's float64 spacing (1e-14 to 5e-13) and "
               "improvements below that earn -1; jppo's envs evaluate f(x) - bias directly "
               "(`bbob.evaluate(bias=False)`, which keeps float32 costs exact), so a swarm settled in an optimum "
               "keeps earning +1 there (see F1 and F21 in the per-problem table) at the same final cost. The way with MetaBox's cost arithmetic computes them as MetaBox does "
               "(eval(x) - eval(x*), bias in both, float64): it should then agree on returns too.")


DIAGNOSTICS = (("approx KL 0.5·Δlogπ² per learning step", "train/approx_kl", "approx_kl_metabox"),
               ("actor loss", "loss/actor_loss", "policy_loss"), ("critic loss", "loss/critic_loss", "value_loss"),
               ("actor gradient norm (pre-clip)", "grad/actor", None), ("critic gradient norm", "grad/critic", None),
               ("clip fraction", None, "clip_fraction"))


def diagnostics_table(ways: dict):
    """Per-learning-step quantities, means over all batch episodes and seeds (MetaBox's ways: as their agents log
    them to TensorBoard; jppo: its window metrics, averaged over the K epochs)."""
    def cell(runs, key):
        if key is None or key not in runs[0]:
            return "-"
        return f"{np.nanmean(np.concatenate([np.asarray(r[key], float) for r in runs])):.4g}"

    rows = [(label, *[cell(runs, jkey if way in JPPO_WAYS else f"tb:{mkey}" if mkey else None)
                      for way, runs in ways.items()]) for label, mkey, jkey in DIAGNOSTICS]
    return ("Per learning step (means over all batch episodes and seeds)", ("quantity", *[WAY_NAMES[w] for w in ways]),
            rows)


def section_wallclock(ways: dict):
    rows = []
    base = None
    for way, runs in ways.items():
        secs = np.concatenate([r["seconds"][1:] for r in runs])  # jppo's first includes compilation
        med = float(np.median(secs))
        base = med if way == "jppo" else base
        rows.append((f"training episode: {WAY_NAMES[way]}", f"{med:.2f}",
                     f"{med / base:.1f}x" if base else "-", f"{sum(r['seconds'].sum() for r in runs):.0f}"))
    return rows


# ---------------------------------------------------------------- the report


# ---------------------------------------------------------------- section 5: the whole budget from one start

LONG_NOTE = ("Each way trains MetaBox's setting to the end of MetaBox's budget: the difficult split's 8 train problems, "
             "'single' batching, {envs} envs per batch episode, {epochs} epochs = {episodes} batch episodes (RLEPSO.pkl's "
             "budget: 30 epochs × 16 envs, 14400 learning steps), lr 1e-5, float64, from the same networks (torch's initialisation under MetaBox's Trainer "
             "seed 3849 + s). jppo and compat run the corrected loop (stored states); MetaBox's RLEPSO re-evaluates "
             "epochs k ≥ 1 at the window's last state. MetaBox's run would end in its own ValueError (ragged cost logs, "
             "section 3) and is kept alive by `metabox_side.mended_cost_logs`, which only reshapes the cost log it "
             "reads back for its info; training is untouched.")
LONG_HEADER = ("policy", "mean log10 test cost", "lower than RLEPSO.pkl on", "P(better than RLEPSO.pkl)",
               "P(better than start)", "mean σ", "mean abs(μ - 0.5)", "RMS Δμ from start", "RMS Δσ from start",
               "approx KL per step", "s")


def section_long(cache: Path, scale: Scale):
    """Section 5: `(lines, rows, σ-per-episode table, plot data)` or None when not run at this scale."""
    if not scale.long_seeds:
        return None
    from jppo.policy import ActorCritic
    from jppo.train import make_networks

    ways, crashes = curves(cache, scale, long=True)
    seed, epochs, envs = 0, scale.long_epochs, scale.long_envs
    config = train_config(scale, envs, 1, seed=seed)
    trainer = make_trainer(config, scale)
    policy = trainer.policy
    with jax.enable_x64(True):
        template = ActorCritic.split(*make_networks(trainer.env, config, jax.random.split(jax.random.key(seed), 3)[1]))[1]
        have_metabox = with_metabox(scale)
        start = _initial_params(trainer, config, metabox_side.init_weights(seed)) if have_metabox else template
        methods = {"start": start}
        weights = weights_file(cache, scale)
        if weights is not None:
            methods["RLEPSO.pkl"] = pretrained_params(weights)[2]
        for way, runs in ways.items():
            if runs:
                methods[way] = (_unflat(runs[0], "end_", template) if way in JPPO_WAYS else
                                _initial_params(trainer, config, metabox_side.weights_from_flat(runs[0])))
        runs_ = scale.train_runs or scale.runs
        ev = evaluate_many(cache, f"eval_long_e{epochs}_b{envs}_r{runs_}_{'_'.join(methods).replace('.', '')}",
                           policy, list(methods.values()), dataclasses.replace(scale, runs=runs_))
        logs = {name: log_cost(ev["final"][m]) for m, name in enumerate(methods)}
        shapes = {name: mu_sigma(policy, params) for name, params in methods.items()}
    mu0, s0 = shapes["start"]
    rows = []
    for name in methods:
        mu, sg = shapes[name]
        label = WAY_NAMES.get(name, name)
        log = logs[name]
        pkl_cols = ("-", "-")
        if "RLEPSO.pkl" in logs and name != "RLEPSO.pkl":
            wins = int((log.mean(1) < logs["RLEPSO.pkl"].mean(1)).sum())
            pkl_cols = (f"{wins} of {log.shape[0]}", f"{paired_bootstrap(log, logs['RLEPSO.pkl']):.2f}")
        run = ways[name][0] if name in ways else None  # methods holds the ways that have a run
        kl, secs = "-", "-"
        if run is not None:
            kl_key = "approx_kl_metabox" if name in JPPO_WAYS else "tb:train/approx_kl"
            kl, secs = f"{np.nanmean(run[kl_key]):.2e}", f"{run['seconds'].sum():.0f}"
        moved = name not in ("start", "RLEPSO.pkl")
        rows.append((label, f"{log.mean():.3f}", *pkl_cols,
                     "-" if name == "start" else f"{paired_bootstrap(log, logs['start']):.2f}",
                     f"{sg.mean():.3f}", f"{np.abs(mu - 0.5).mean():.3f}", rms(mu - mu0) if moved else "-",
                     rms(sg - s0) if moved else "-", kl, secs))
    marks = sorted({1, *range(5, epochs + 1, 5), epochs})
    sigma_rows = [(WAY_NAMES[way], *[f"{r[0]['sigma'][e * 8 - 1].mean():.3f}" for e in marks])
                  for way, r in ways.items() if r]
    cost_rows = [(WAY_NAMES[way], *[f"{v:.2f}" for v in epoch_stats(r, 'log_cost', epochs)[0][[e - 1 for e in marks]]])
                 for way, r in ways.items() if r]
    lines = [LONG_NOTE.format(envs=envs, epochs=epochs, episodes=epochs * 8),
             f"Test: the {logs['start'].shape[0]} test problems, {runs_} paired runs each, in jppo's env (float64); "
             f"'start' is the common initial policy; P from the paired bootstrap over runs.",
             *[f"Crashed inside MetaBox's code: {c}" for c in crashes]]
    if not have_metabox:
        lines.append("MetaBox's two ways skipped: metaevobox or torch does not import here (JPPO_METABOX_SRC).")
    plot = {"ways": {w: r[0] for w, r in ways.items() if r}, "shapes": shapes, "logs": logs}
    return lines, rows, (("way", *[f"σ after epoch {e}" for e in marks]), sigma_rows), \
        (("way", *[f"train log10 cost, epoch {e}" for e in marks]), cost_rows), plot


def figure(pretrained: dict, move_curves: dict, ways: dict, scale: Scale, long: dict | None = None):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(16, 12.5))
    ax = axes[0][0]
    if pretrained:
        x = np.arange(len(pretrained["fids"]))
        for k, (name, off) in enumerate((("jppo", -0.15), ("metabox", 0.15))):
            m, se = mean_se(log_cost(pretrained[name]))
            ax.errorbar(x + off, m, yerr=3 * se, fmt="o", ms=3, capsize=2, label=f"{name} env (±3 SE)")
        ax.set_xticks(x, [f"F{f}" for f in pretrained["fids"]], fontsize=7)
        ax.legend(fontsize=7)
    ax.set_title("1. RLEPSO.pkl: mean log10 final cost", fontsize=9)
    t = metabox_side.SNAPSHOT_T
    for col, (k, label) in enumerate(((0, "μ"), (1, "σ")), start=1):
        ax = axes[0][col]
        for name, pair in move_curves.items():
            style = dict(color="black", lw=2) if name == "RLEPSO.pkl" else \
                dict(color="grey", lw=0.6) if name.startswith("torch init") else \
                dict(ls="--", lw=1) if name.endswith("start") else dict(lw=1.5)
            ax.plot(t, pair[k].mean(axis=1), label=name if not name.startswith("torch init 1") else None, **style)
        ax.set_title(f"2. actor's mean {label} over the 35 dims vs fes/maxFEs", fontsize=9)
        ax.set_xlabel("fes / maxFEs", fontsize=8)
        ax.legend(fontsize=6)
    for col, (key, label) in enumerate((("return", "return"), ("log_cost", "mean log10 final cost"))):
        ax = axes[1][col]
        for way, runs in ways.items():
            stats = epoch_stats(runs, key, scale.curve_epochs)
            e = np.arange(1, scale.curve_epochs + 1)
            ax.errorbar(e, stats.mean(0), yerr=stats.std(0, ddof=1) if len(stats) > 1 else None, capsize=2,
                        label=WAY_NAMES[way])
        ax.set_title(f"3. per-epoch {label} (mean ± sd over seeds)", fontsize=9)
        ax.set_xlabel("epoch (8 batch episodes)", fontsize=8)
        ax.legend(fontsize=6)
    ax = axes[1][2]
    for way, runs in ways.items():
        for i, r in enumerate(runs):
            ax.plot(np.arange(1, len(r["sigma"]) + 1), r["sigma"].mean(axis=(1, 2)), color=f"C{WAYS.index(way)}",
                    label=WAY_NAMES[way] if i == 0 else None, lw=1)
    ax.set_title("3. actor's mean σ after each batch episode", fontsize=9)
    ax.set_xlabel("batch episode", fontsize=8)
    ax.legend(fontsize=6)
    if long is not None:
        ax = axes[2][0]
        for way, r in long["ways"].items():
            ax.plot(np.arange(1, len(r["sigma"]) + 1), r["sigma"].mean(axis=(1, 2)), color=f"C{WAYS.index(way)}",
                    label=WAY_NAMES[way], lw=1)
        if "RLEPSO.pkl" in long["shapes"]:
            ax.axhline(long["shapes"]["RLEPSO.pkl"][1].mean(), color="black", lw=2, label="RLEPSO.pkl")
        ax.set_title("5. whole budget: actor's mean σ after each batch episode", fontsize=9)
        ax.set_xlabel("batch episode", fontsize=8)
        ax.legend(fontsize=6)
        ax = axes[2][1]
        for k, name in enumerate(long["shapes"]):
            style = dict(color="black", lw=2) if name == "RLEPSO.pkl" else dict(color="grey", ls="--") \
                if name == "start" else dict(color=f"C{WAYS.index(name)}", lw=1.5)
            ax.plot(t, long["shapes"][name][1].mean(axis=1), label=WAY_NAMES.get(name, name), **style)
        ax.set_title("5. whole budget: mean σ vs fes/maxFEs at the end", fontsize=9)
        ax.set_xlabel("fes / maxFEs", fontsize=8)
        ax.legend(fontsize=6)
        ax = axes[2][2]
        names = list(long["logs"])
        m = [long["logs"][n].mean() for n in names]
        ax.bar(range(len(names)), m, color=["grey" if n == "start" else "black" if n == "RLEPSO.pkl" else
                                             f"C{WAYS.index(n)}" for n in names])
        ax.set_xticks(range(len(names)), [n if n not in WAYS else n + " end" for n in names], fontsize=7)
        ax.set_title("5. mean log10 final test cost (lower is better)", fontsize=9)
    for ax in axes.ravel():
        ax.tick_params(labelsize=7)
        if not ax.has_data():
            ax.text(0.5, 0.5, "not run at this scale", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig


def run(out_dir: Path, scale: Scale, cache: Path, name: str = "metabox_parity"):
    cache.mkdir(parents=True, exist_ok=True)
    lines1, rows1, pretrained = section_pretrained(cache, scale)
    sections, move_curves, ways = [], {}, {}
    trained = section_trained(cache, scale, pretrained)
    if trained is None:
        sections.append(("2. jppo trained with MetaBox's settings", ("-",), [], ["Not run at this scale (train_windows 0)."]))
    else:
        lines2, (header2, rows2), move, move_curves = trained
        sections += [("2. jppo trained with MetaBox's settings vs RLEPSO.pkl (mean log10 final test cost, paired runs)",
                      header2, rows2, lines2),
                     ("2. How far each policy moved (actor over t = fes/maxFEs ∈ [0, 1], 35 dims)", MOVEMENT_HEADER,
                      move, [MOVEMENT_NOTE])]
    loop_rows = loop_comparison(cache, scale)
    if loop_rows:
        sections.append(("2. Cause: MetaBox's loop vs the corrected one, one training episode from the same start",
                         LOOP_HEADER, loop_rows, [LOOP_NOTE]))
    if scale.curve_epochs:
        lines3, tables3, ways = section_curves(cache, scale)
        sections += [(f"3. {heading}", header, rows, lines3 if i == 0 else [])
                     for i, (heading, header, rows) in enumerate(tables3)]
    else:
        sections.append(("3. Training curves, three ways", ("-",), [], ["Not run at this scale (curve_epochs 0)."]))
    clock = section_wallclock(ways)
    if pretrained:
        jp_s = float(np.load(cache / f"pretrained_jppo_r{scale.runs}.npz")["seconds"])
        mb_s = float(np.load(cache / f"pretrained_metabox_r{scale.runs}.npz")["seconds"])
        n = pretrained["jppo"].size
        clock += [(f"test episode, RLEPSO.pkl: jppo, {n} episodes vmapped (compile included)", f"{jp_s / n:.3f}", "-",
                   f"{jp_s:.0f}"),
                  ("test episode, RLEPSO.pkl: MetaBox's rollout_episode, one after another", f"{mb_s:.3f}", "-",
                   f"{mb_s * n:.0f}")]
    sections.append(("4. Wall-clock", ("what", "s per episode (median)", "vs jppo", "s in all"), clock,
                     [report.machine()]))
    long = section_long(cache, scale)
    if long is None:
        sections.append(("5. The whole budget from one start, three ways", ("-",), [], ["Not run at this scale (long_seeds 0)."]))
    else:
        lines5, rows5, (sigma_header, sigma_rows), (cost_header, cost_rows), long = long
        sections += [("5. The whole budget from one start, three ways: test costs and how far each moved", LONG_HEADER,
                      rows5, lines5),
                     ("5. Mean σ of the actor (over t ∈ [0, 1] and the 35 dims) during training", sigma_header,
                      sigma_rows, []),
                     ("5. Mean log10 final train cost per epoch", cost_header, cost_rows, [])]
    report.write(out_dir, name,
                 title="MetaBox parity: RLEPSO on bbob-10D (difficult split)",
                 header=("test problem", "jppo env: mean log10 cost ± SE", "MetaBox env: mean log10 cost ± SE",
                         "z (Δ / SE)", "within 3 SE"), rows=rows1,
                 notes=[*scale_notes(scale), "", "## 1. MetaBox's pretrained RLEPSO.pkl, jppo's env vs MetaBox's",
                        *lines1],
                 sections=sections, figure=figure(pretrained, move_curves, ways, scale, long))


MOVEMENT_NOTE = ("RLEPSO's state is fes/maxFEs alone, so the actor is a schedule of 35 (μ, σ) pairs; 'start' rows are "
                 "each jppo seed's initial policy (the preset's init 'torch': W, b ~ U(±1/√fan_in) in every layer); "
                 "RLEPSO.pkl's own start is unknown, the MetaBox torch-init rows show where torch's default "
                 "initialisation puts it.")
LOOP_NOTE = ("Every row: torch, float64, Adam lr 1e-5, the networks of torch's init (Trainer seed 3849; the last row: jppo's "
             "init 'orthogonal', its policy head scaled by 0.01, instead), MetaBox's batch "
             "of 16 copies of the problem on MetaBox's numpy RLEPSO_Optimizer with the same seeds, one batch episode "
             "(20 windows × K = 3 = 60 learning steps; `references/torch_ppo.torch_train_episode`). Only the epochs k ≥ 1 "
             "differ between the first two rows: MetaBox's RLEPSO.train_episode evaluates the stored actions and the "
             "critic at the state after the window, compat and jppo at the stored states.")


def scale_notes(scale: Scale) -> list[str]:
    fields = [f.name for f in dataclasses.fields(Scale) if f.name not in ("evaluate_fn", "metabox")]
    changed = [f"{name} {getattr(scale, name)} (specified {getattr(FULL, name)})" for name in fields
               if getattr(scale, name) != getattr(FULL, name)]
    return [f"Scale: {', '.join(changed) if changed else 'as specified'} (`{', '.join(f'{n}={getattr(scale, n)}' for n in fields)}`)."]


def scale_from_env(scale: Scale) -> Scale:
    """`scale` with the overrides in JPPO_PARITY_SCALE ("train_windows=960,curve_epochs=2": what a loaded
    machine can afford; the report says the scale it ran at)."""
    spec = os.environ.get("JPPO_PARITY_SCALE", "")
    pairs = [item.split("=") for item in spec.split(",") if item]
    return dataclasses.replace(scale, **{k.strip(): int(v) for k, v in pairs})


def main(out_dir: Path, quick: bool):
    jax.config.update("jax_compilation_cache_dir", str(Path(tempfile.gettempdir()) / "jppo-parity-xla"))
    scale = scale_from_env(QUICK if quick else FULL)
    name = "metabox_parity" + ("_quick" if quick else "")
    run(out_dir, scale, out_dir / ("metabox_parity" + ("-quick" if quick else "")), name)


# ---------------------------------------------------------------- the cause: MetaBox's re-evaluation at the last state

LOOP_PROBLEMS = (1,)  # train problems the loop comparison runs on (F1: sphere)


def jppo_init_weights(seed: int = 0):
    """A jppo initialisation of RLEPSO's networks (`make_networks`, as `NStepTrainer.init` builds them from key
    `seed`) in MetaBox's state_dict layout, so torch can start from it."""
    from jppo.metabbo.metabox_checkpoint import RLEPSO_LAYOUT, MetaBoxWeights
    from jppo.train import make_networks

    config = train_config(QUICK, 2, 1, init="orthogonal")
    net_key = jax.random.split(jax.random.key(seed), 3)[1]  # NStepTrainer.init's split
    actor, critic = make_networks(rlepso.RLEPSOEnv(), config, net_key)
    modules = {"actor": actor, "critic": critic}
    networks = {net: {} for net in RLEPSO_LAYOUT}
    for net, parts in RLEPSO_LAYOUT.items():
        for attr, prefix in parts.items():
            for i, layer in enumerate(getattr(modules[net], attr).layers):
                networks[net][f"{prefix}.net.layer{i}-linear.weight"] = np.asarray(layer.kernel[...], float).T
                networks[net][f"{prefix}.net.layer{i}-linear.bias"] = np.asarray(layer.bias[...], float)
    return MetaBoxWeights("RLEPSO", networks, {}, 0)


def loop_comparison(cache: Path, scale: Scale, seed: int = 0):
    """MetaBox's loop vs the corrected one on the same window data source (see metabox_side.loop_movement):
    rows per (problem, loop), or [] without MetaBox."""
    if not with_metabox(scale):
        return []
    rows = []
    variants = ((True, "", "MetaBox's (k ≥ 1 at the last state), torch's init"),
                (False, "", "corrected (stored states), torch's init"),
                (False, "_jppoinit", "corrected (stored states), init 'orthogonal' (head ×0.01)"))
    for fid in LOOP_PROBLEMS:
        for flag, tag, name in variants:
            path = cache / f"loop_{'last' if flag else 'stored'}{tag}_s{seed}_F{fid}_b{scale.num_envs}.npz"
            weights = jppo_init_weights(seed) if tag else None
            r = cached(path, lambda: metabox_side.loop_movement(seed, fid, scale.num_envs, flag, max_fes=scale.max_fes,
                                                                weights=weights))
            later = r["epoch"] >= 1
            rows.append((f"F{fid}", name, f"{r['sigma0'].mean():.4f}", f"{r['clip_fraction'][later].mean():.3f}", f"{r['approx_kl'][later].mean():.4f}",
                         f"{r['grad_actor'].mean():.3g}",
                         f"{np.sqrt(((r['mu1'] - r['mu0']) ** 2).mean()):.2e}",
                         f"{np.sqrt(((r['sigma1'] - r['sigma0']) ** 2).mean()):.2e}",
                         f"{r['sigma1'].mean() - r['sigma0'].mean():+.2e}", f"{float(r['seconds']):.0f}"))
    return rows


LOOP_HEADER = ("problem", "loop, start", "mean σ at start", "clip fraction, epochs k ≥ 1", "approx KL, k ≥ 1", "actor grad norm",
               "RMS Δμ after 1 episode", "RMS Δσ", "Δ mean σ", "s")
