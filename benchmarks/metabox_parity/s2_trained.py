"""Section 2: jppo trained with MetaBox's settings and batching (seeds vmapped, 4800 windows = 14400 learning
steps), evaluated on the test problems against RLEPSO.pkl (paired runs, bootstrap), and how far each policy's
μ and σ moved over t = fes/maxFEs ∈ [0, 1]."""

from __future__ import annotations

import dataclasses

import jax

from benchmarks import metabox_side
from benchmarks.cache import Cache
from benchmarks.metabox_parity.evaluate import evaluate_many, paired_bootstrap
from benchmarks.metabox_parity.policies import (flat, index, mu_sigma, pretrained_params, shape, start_params, unflat,
                                                weights_file)
from benchmarks.metabox_parity.setting import (DIFFICULTY, ENV_ID, QUICK, Scale, log_cost, make_trainer, settings,
                                               study_code, train_config, with_metabox)
from jppo.metabbo import rlepso

CODE = study_code(__file__)
METRIC_KEYS = ("episodic_return", "final_cost", "value_loss", "policy_loss", "approx_kl_metabox", "clip_fraction")
TORCH_INITS = 5  # fresh torch initialisations shown beside RLEPSO.pkl (its kind of start)
MOVEMENT_HEADER = ("policy", "mean μ", "mean abs(μ - 0.5)", "mean σ", "mean σ at t=0 / t=1", "RMS Δμ from start",
                   "RMS Δσ from start")
MOVEMENT_NOTE = ("RLEPSO's state is fes/maxFEs alone, so the actor is a schedule of 35 (μ, σ) pairs; 'start' rows are "
                 "each jppo seed's initial policy (the preset's init 'torch': W, b ~ U(±1/√fan_in) in every layer); "
                 "RLEPSO.pkl's own start is unknown, the MetaBox torch-init rows show where torch's default "
                 "initialisation puts it.")


def train_jppo(cache: Cache, scale: Scale):
    """The section's run: `(trainer, start params [S,...], trained params [S,...], the run's arrays, its entry)`."""
    from jppo.fit import fit

    mbcost = scale.train_metabox_costs
    config = train_config(scale, scale.num_envs, scale.train_windows, metabox_costs=mbcost)

    def run():
        result = fit(config, num_seeds=scale.train_seeds, show_progress=False, trainer=trainer)
        metrics = {k: result.metrics[k] for k in METRIC_KEYS}
        return {**{f"end_{k}": v for k, v in flat(result.state.params).items()}, **metrics,
                "seconds": result.seconds, "compile_seconds": result.compile_seconds,
                "device": f"{jax.devices()[0].platform}: {jax.devices()[0].device_kind}"}

    made_by = settings(scale, "max_fes", "evaluate_fn", "train_seeds", config=dataclasses.asdict(config))
    with jax.enable_x64(mbcost):  # the env's problems too
        trainer = make_trainer(config, scale, metabox_costs=mbcost)
        start = start_params(trainer, config, scale.train_seeds)
        data = cache.arrays("train_jppo", made_by, CODE, run)
    return trainer, start, unflat(data, "end_", start), data, cache.path("train_jppo", made_by, CODE).name


def torch_inits(cache: Cache, policy) -> list:
    """`(μ, σ)` of `TORCH_INITS` fresh torch initialisations of MetaBox's RLEPSO networks (seeds 0, 1, ...)."""
    def compute():
        from jppo.metabbo.metabox_checkpoint import rlepso_params
        from jppo.policy import ActorCritic
        from jppo.learner import make_networks

        out = {}
        for s in range(TORCH_INITS):
            config = train_config(QUICK, 2, 1)
            actor, critic = make_networks(rlepso.RLEPSOEnv(), config, jax.random.key(0))
            rlepso_params(metabox_side.init_weights(s), actor, critic)
            out[f"mu{s}"], out[f"sigma{s}"] = mu_sigma(policy, ActorCritic.split(actor, critic)[1])
        return out

    made_by = {"count": TORCH_INITS}
    if not cache.path("torch_inits", made_by, CODE).exists() and not metabox_side.available():
        return []
    with jax.enable_x64(True):
        data = cache.arrays("torch_inits", made_by, CODE, compute)
    return [(data[f"mu{s}"], data[f"sigma{s}"]) for s in range(TORCH_INITS)]


def collect(cache: Cache, scale: Scale) -> dict | None:
    """The run's time, the test costs of the trained seeds, their starts and RLEPSO.pkl, and every policy's
    shape; None at train_windows 0."""
    if scale.train_windows == 0:
        return None
    trainer, start, end, data, entry = train_jppo(cache, scale)
    policy, seeds = trainer.policy, scale.train_seeds
    weights = weights_file(cache, scale)
    pkl = None
    if weights is not None:
        with jax.enable_x64(True):
            _, _, pkl = pretrained_params(weights)
    summary = {"run": {"seconds": float(data["seconds"]), "compile_seconds": float(data["compile_seconds"]),
                       "device": str(data["device"]) if "device" in data else None}, "eval": None, "shapes": []}
    if scale.train_runs:
        methods = ([("RLEPSO.pkl", pkl)] if pkl is not None else []) + \
            [(f"jppo seed {s}", index(end, s)) for s in range(seeds)] + [("jppo start", index(start, 0))]
        sources = {"methods": [name for name, _ in methods], "train": entry,
                   "weights": weights.name if weights is not None else None}
        ev = evaluate_many(cache, "eval_trained", sources, CODE, policy, [p for _, p in methods],
                           dataclasses.replace(scale, runs=scale.train_runs))
        summary["eval"] = {"methods": sources["methods"], "final": ev["final"], "seconds": float(ev["seconds"])}
    shapes = summary["shapes"]
    for s in range(seeds):
        mu0, s0 = mu_sigma(policy, index(start, s))
        mu1, s1 = mu_sigma(policy, index(end, s))
        shapes += [{"row": f"jppo seed {s} start", "curve": f"jppo seed {s} start", **shape(mu0, s0)},
                   {"row": f"jppo seed {s} trained", "curve": f"jppo seed {s}", **shape(mu1, s1, mu0, s0)}]
    if pkl is not None:
        with jax.enable_x64(True):
            mu, sg = mu_sigma(policy, pkl)
        shapes.append({"row": "RLEPSO.pkl (MetaBox, 14400 steps)", "curve": "RLEPSO.pkl", **shape(mu, sg)})
        for s, (mu0, s0) in enumerate(torch_inits(cache, policy) if with_metabox(scale) else []):
            shapes.append({"row": f"MetaBox torch init {s} (RLEPSO.pkl's kind of start)", "curve": f"torch init {s}",
                           **shape(mu0, s0)})
    return summary


def render(s2: dict, scale: Scale, fids: list) -> list:
    """The section's tables: `(heading, header, rows, notes)`."""
    run = s2["run"]
    lines = [f"jppo: `train_config` = preset {ENV_ID} with lr 1e-5, bootstrap_terminal, batching 'single', difficulty "
             f"'{DIFFICULTY}', {scale.num_envs} envs, {scale.train_windows} windows ({scale.train_windows * 3} learning "
             f"steps), {scale.train_seeds} seeds vmapped, "
             f"{'float64, MetaBox cost arithmetic (metabox_costs)' if scale.train_metabox_costs else 'float32'}: "
             f"{run['seconds']:.0f} s (compile {run['compile_seconds']:.0f} s)"
             f"{' on ' + run['device'] if run['device'] is not None else ''}."]
    header, rows = ("-",), []
    if s2["eval"] is not None:
        more, (header, rows) = eval_table(s2["eval"], scale, fids)
        lines += more
    else:
        lines.append("Test evaluation of the trained seeds not run at this scale (train_runs 0).")
    move = [movement_row(sh) for sh in s2["shapes"]]
    return [("2. jppo trained with MetaBox's settings vs RLEPSO.pkl (mean log10 final test cost, paired runs)",
             header, rows, lines),
            ("2. How far each policy moved (actor over t = fes/maxFEs ∈ [0, 1], 35 dims)", MOVEMENT_HEADER, move,
             [MOVEMENT_NOTE])]


def eval_table(ev: dict, scale: Scale, fids: list):
    """The trained seeds, their starts and RLEPSO.pkl on the test problems (paired runs): lines and a table."""
    names = ev["methods"]
    logs = {name: log_cost(final) for name, final in zip(names, ev["final"])}
    header = ("problem", *names)
    rows = [(f"F{f}", *[f"{logs[name][p].mean():.3f}" for name in names]) for p, f in enumerate(fids)]
    rows.append(("**mean over problems**", *[f"**{logs[name].mean(axis=1).mean():.3f}**" for name in names]))
    lines = [f"Test: {scale.train_runs} paired runs per problem, float64, {ev['seconds']:.0f} s."]
    for s in range(scale.train_seeds):
        name = f"jppo seed {s}"
        if "RLEPSO.pkl" in logs:
            wins = int((logs[name].mean(1) < logs["RLEPSO.pkl"].mean(1)).sum())
            lines.append(f"{name} vs RLEPSO.pkl: lower mean log10 cost on {wins} of {len(fids)} problems; "
                         f"P(jppo better) = {paired_bootstrap(logs[name], logs['RLEPSO.pkl']):.2f}.")
        wins0 = int((logs[name].mean(1) < logs["jppo start"].mean(1)).sum())
        lines.append(f"{name} vs jppo's start: lower on {wins0} of {len(fids)}; P(trained better) = "
                     f"{paired_bootstrap(logs[name], logs['jppo start']):.2f}.")
    lines.append("'jppo start' is seed 0's initial policy (torch's initialisation, as MetaBox's agents start; each "
                 "seed starts at its own schedule: see the movement table).")
    return lines, (header, rows)


def movement_row(sh: dict) -> tuple:
    return (sh["row"], f"{sh['mu']:.3f}", f"{sh['mu_dev']:.3f}", f"{sh['sigma']:.3f}",
            f"{sh['sigma_t0']:.3f} / {sh['sigma_t1']:.3f}",
            "-" if sh["rms_dmu"] is None else f"{sh['rms_dmu']:.3f}",
            "-" if sh["rms_dsigma"] is None else f"{sh['rms_dsigma']:.3f}")


def panels(axes, s2: dict | None):
    """The figure's μ and σ panels: every policy's schedule, mean over the 35 dims, against t."""
    t = metabox_side.SNAPSHOT_T
    for ax, (key, label) in zip(axes, (("mu_t", "μ"), ("sigma_t", "σ"))):
        for sh in s2["shapes"] if s2 else []:
            name = sh["curve"]
            style = dict(color="black", lw=2) if name == "RLEPSO.pkl" else \
                dict(color="grey", lw=0.6) if name.startswith("torch init") else \
                dict(ls="--", lw=1) if name.endswith("start") else dict(lw=1.5)
            ax.plot(t, sh[key], label=name if not name.startswith("torch init 1") else None, **style)
        ax.set_title(f"2. actor's mean {label} over the 35 dims vs fes/maxFEs", fontsize=9)
        ax.set_xlabel("fes / maxFEs", fontsize=8)
        ax.legend(fontsize=6)
