"""Section 5: the whole budget (30 epochs × 16 envs, RLEPSO.pkl's) from one start, each way of section 3: each
way's final policy on the test problems next to RLEPSO.pkl and the start (paired runs), and how far μ and σ
moved; this is where MetaBox's re-evaluation at the window's last state shows over a long run, if it does."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from benchmarks import metabox_side
from benchmarks.cache import Cache
from benchmarks.metabox_parity.evaluate import evaluate_many, paired_bootstrap
from benchmarks.metabox_parity.policies import initial_params, mu_sigma, pretrained_params, shape, unflat, weights_file
from benchmarks.metabox_parity.s3_curves import JPPO_WAYS, WAY_NAMES, WAYS, curves, per_epoch, run_summary
from benchmarks.metabox_parity.setting import Scale, log_cost, make_trainer, study_code, train_config, with_metabox

CODE = study_code(__file__)
NOTE = ("Each way trains MetaBox's setting to the end of MetaBox's budget: the difficult split's 8 train problems, "
        "'single' batching, {envs} envs per batch episode, {epochs} epochs = {episodes} batch episodes (RLEPSO.pkl's "
        "budget: 30 epochs × 16 envs, 14400 learning steps), lr 1e-5, float64, from the same networks (torch's initialisation under MetaBox's Trainer "
        "seed 3849 + s). jppo and compat run the corrected loop (stored states); MetaBox's RLEPSO re-evaluates "
        "epochs k ≥ 1 at the window's last state. MetaBox's run would end in its own ValueError (ragged cost logs, "
        "section 3) and is kept alive by `metabox_side.mended_cost_logs`, which only reshapes the cost log it "
        "reads back for its info; training is untouched.")
HEADER = ("policy", "mean log10 test cost", "lower than RLEPSO.pkl on", "P(better than RLEPSO.pkl)",
          "P(better than start)", "mean σ", "mean abs(μ - 0.5)", "RMS Δμ from start", "RMS Δσ from start",
          "approx KL per step", "s")


def collect(cache: Cache, scale: Scale) -> dict | None:
    """Per way its run's summary, mean approx KL and seconds; per policy (the start, RLEPSO.pkl, each way's end)
    its test costs [P, runs] and shape. None at long_seeds 0."""
    if not scale.long_seeds:
        return None
    from jppo.policy import ActorCritic
    from jppo.learner import make_networks

    ways, crashes, entries = curves(cache, scale, long=True)
    seed = 0
    config = train_config(scale, scale.long_envs, 1, seed=seed)
    trainer = make_trainer(config, scale)
    policy = trainer.policy
    with jax.enable_x64(True):
        template = ActorCritic.split(*make_networks(trainer.env, config, jax.random.split(jax.random.key(seed), 3)[1]))[1]
        have_metabox = with_metabox(scale)
        start = initial_params(trainer, config, metabox_side.init_weights(seed)) if have_metabox else template
        methods = {"start": start}
        weights = weights_file(cache, scale)
        if weights is not None:
            methods["RLEPSO.pkl"] = pretrained_params(weights)[2]
        for way, runs in ways.items():
            if runs:
                methods[way] = (unflat(runs[0], "end_", template) if way in JPPO_WAYS else
                                initial_params(trainer, config, metabox_side.weights_from_flat(runs[0])))
        runs_ = scale.train_runs or scale.runs
        sources = {"methods": list(methods), "start": "torch" if have_metabox else "jppo",
                   "weights": weights.name if weights is not None else None,
                   "runs_of": {way: entries[way][0] for way, runs in ways.items() if runs}}
        ev = evaluate_many(cache, "eval_long", sources, CODE, policy, list(methods.values()),
                           dataclasses.replace(scale, runs=runs_))
        shapes = {name: mu_sigma(policy, params) for name, params in methods.items()}
    policies = [{"name": name, "final": ev["final"][m],
                 **shape(*shapes[name], *(shapes["start"] if name not in ("start", "RLEPSO.pkl") else ()))}
                for m, name in enumerate(methods)]
    kl_key = {way: "approx_kl_metabox" if way in JPPO_WAYS else "tb:train/approx_kl" for way in ways}
    return {"crashes": crashes, "have_metabox": have_metabox, "runs": runs_, "policies": policies,
            "ways": {way: {**run_summary(runs[0]), "approx_kl": float(np.nanmean(runs[0][kl_key[way]]))}
                     for way, runs in ways.items() if runs}}


def render(s5: dict, scale: Scale) -> list:
    """The section's tables: `(heading, header, rows, notes)`."""
    epochs, envs, ways = scale.long_epochs, scale.long_envs, s5["ways"]
    logs = {p["name"]: log_cost(p["final"]) for p in s5["policies"]}
    rows = []
    for p in s5["policies"]:
        name, log = p["name"], logs[p["name"]]
        pkl_cols = ("-", "-")
        if "RLEPSO.pkl" in logs and name != "RLEPSO.pkl":
            wins = int((log.mean(1) < logs["RLEPSO.pkl"].mean(1)).sum())
            pkl_cols = (f"{wins} of {log.shape[0]}", f"{paired_bootstrap(log, logs['RLEPSO.pkl']):.2f}")
        run = ways.get(name)  # the policies of the ways that have a run
        rows.append((WAY_NAMES.get(name, name), f"{log.mean():.3f}", *pkl_cols,
                     "-" if name == "start" else f"{paired_bootstrap(log, logs['start']):.2f}",
                     f"{p['sigma']:.3f}", f"{p['mu_dev']:.3f}",
                     "-" if p["rms_dmu"] is None else f"{p['rms_dmu']:.3f}",
                     "-" if p["rms_dsigma"] is None else f"{p['rms_dsigma']:.3f}",
                     "-" if run is None else f"{run['approx_kl']:.2e}",
                     "-" if run is None else f"{np.sum(run['seconds']):.0f}"))
    marks = sorted({1, *range(5, epochs + 1, 5), epochs})
    sigma_rows = [(WAY_NAMES[way], *[f"{r['sigma'][e * 8 - 1]:.3f}" for e in marks]) for way, r in ways.items()]
    cost_rows = [(WAY_NAMES[way], *[f"{v:.2f}" for v in per_epoch(r["log_cost"], epochs)[[e - 1 for e in marks]]])
                 for way, r in ways.items()]
    lines = [NOTE.format(envs=envs, epochs=epochs, episodes=epochs * 8),
             f"Test: the {logs['start'].shape[0]} test problems, {s5['runs']} paired runs each, in jppo's env (float64); "
             f"'start' is the common initial policy; P from the paired bootstrap over runs.",
             *[f"Crashed inside MetaBox's code: {c}" for c in s5["crashes"]]]
    if not s5["have_metabox"]:
        lines.append("MetaBox's two ways skipped: metaevobox or torch does not import here (JPPO_METABOX_SRC).")
    return [("5. The whole budget from one start, three ways: test costs and how far each moved", HEADER, rows, lines),
            ("5. Mean σ of the actor (over t ∈ [0, 1] and the 35 dims) during training",
             ("way", *[f"σ after epoch {e}" for e in marks]), sigma_rows, []),
            ("5. Mean log10 final train cost per epoch", ("way", *[f"train log10 cost, epoch {e}" for e in marks]),
             cost_rows, [])]


def panels(axes, s5: dict | None):
    """The figure's last row: σ per batch episode, σ over t at the end, and the mean test cost per policy."""
    if s5 is None:
        return
    t = metabox_side.SNAPSHOT_T
    policies = {p["name"]: p for p in s5["policies"]}
    ax = axes[0]
    for way, r in s5["ways"].items():
        ax.plot(np.arange(1, len(r["sigma"]) + 1), r["sigma"], color=f"C{WAYS.index(way)}", label=WAY_NAMES[way], lw=1)
    if "RLEPSO.pkl" in policies:
        ax.axhline(policies["RLEPSO.pkl"]["sigma"], color="black", lw=2, label="RLEPSO.pkl")
    ax.set_title("5. whole budget: actor's mean σ after each batch episode", fontsize=9)
    ax.set_xlabel("batch episode", fontsize=8)
    ax.legend(fontsize=6)
    ax = axes[1]
    for name, p in policies.items():
        style = dict(color="black", lw=2) if name == "RLEPSO.pkl" else dict(color="grey", ls="--") \
            if name == "start" else dict(color=f"C{WAYS.index(name)}", lw=1.5)
        ax.plot(t, p["sigma_t"], label=WAY_NAMES.get(name, name), **style)
    ax.set_title("5. whole budget: mean σ vs fes/maxFEs at the end", fontsize=9)
    ax.set_xlabel("fes / maxFEs", fontsize=8)
    ax.legend(fontsize=6)
    ax = axes[2]
    names = list(policies)
    ax.bar(range(len(names)), [log_cost(policies[n]["final"]).mean() for n in names],
           color=["grey" if n == "start" else "black" if n == "RLEPSO.pkl" else f"C{WAYS.index(n)}" for n in names])
    ax.set_xticks(range(len(names)), [n if n not in WAYS else n + " end" for n in names], fontsize=7)
    ax.set_title("5. mean log10 final test cost (lower is better)", fontsize=9)
