"""Section 3: training curves on the difficult split's train problems, MetaBox's setting, several ways from the
same networks: jppo's compiled trainer (also with MetaBox's cost arithmetic), compat's PPO_Agent under
MetaBox's Trainer on MetaBox's numpy env, MetaBox's torch RLEPSO as shipped. Section 5 runs the same ways at
MetaBox's whole budget (`curves(long=True)`)."""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import metabox_side
from benchmarks.cache import Cache
from benchmarks.metabox_parity.policies import flat, initial_params, mu_sigma
from benchmarks.metabox_parity.setting import (DIFFICULTY, ENV_ID, METABOX_CODE, Scale, log_cost, make_trainer, settings,
                                               study_code, train_config, with_metabox)
from jppo.metabbo import rlepso

CODE = study_code(__file__)
WAYS = ("jppo", "jppo_mbcost", "compat", "metabox")
JPPO_WAYS = ("jppo", "jppo_mbcost")
WAY_NAMES = {"jppo": "jppo compiled, JAX env", "jppo_mbcost": "jppo compiled, JAX env, MetaBox's cost arithmetic",
             "compat": "compat PPO_Agent, MetaBox's Trainer + numpy env",
             "metabox": "MetaBox's torch RLEPSO as shipped"}
JPPO_DIAGNOSTICS = ("policy_loss", "value_loss", "approx_kl_metabox", "clip_fraction", "entropy")
DIAGNOSTICS = (("approx KL 0.5·Δlogπ² per learning step", "train/approx_kl", "approx_kl_metabox"),
               ("actor loss", "loss/actor_loss", "policy_loss"), ("critic loss", "loss/critic_loss", "value_loss"),
               ("actor gradient norm (pre-clip)", "grad/actor", None), ("critic gradient norm", "grad/critic", None),
               ("clip fraction", None, "clip_fraction"))
RETURN_NOTE = ("Why returns can differ where final costs agree: the ±1 reward counts improvements of c(gbest) however "
               "small. MetaBox's cost is f(x) - f(x*) computed as eval(x) - optimum, eval including the bias "
               "(100-2500), so its costs are quantised at the bias's float64 spacing (1e-14 to 5e-13) and "
               "improvements below that earn -1; jppo's envs evaluate f(x) - bias directly "
               "(`bbob.evaluate(bias=False)`, which keeps float32 costs exact), so a swarm settled in an optimum "
               "keeps earning +1 there (see F1 and F21 in the per-problem table) at the same final cost. The way with MetaBox's cost arithmetic computes them as MetaBox does "
               "(eval(x) - eval(x*), bias in both, float64): it should then agree on returns too.")


def jppo_curves(scale: Scale, seed: int, weights=None, metabox_costs: bool = False) -> dict:
    """jppo's compiled trainer (float64, as MetaBox) on the section-3 setting, one window per call: per batch
    episode the mean return, the final costs [B], the problem's fid, seconds, and the actor's μ, σ after it;
    the final params ('end_*'). `metabox_costs`: see `make_env`."""
    from jppo import batching

    episodes = scale.curve_epochs * 8
    config = train_config(scale, scale.curve_envs, windows=episodes * 25, seed=seed)
    trainer = make_trainer(config, scale, metabox_costs)
    state = jax.jit(trainer.init)(jax.random.key(seed))
    params = initial_params(trainer, config, weights)
    if params is not None:
        params = jax.tree.map(lambda new, old: jnp.asarray(new, old.dtype), params, state.params)
        state = state.replace(params=params, opt_state=trainer.learner.optimizer.init(params))
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
            **{f"end_{k}": v for k, v in flat(state.params).items()}}


def curves(cache: Cache, scale: Scale, long: bool = False, ways=WAYS) -> tuple[dict, list[str], dict]:
    """`({way: [per-seed run arrays]}, crash notes, {way: [the runs' cache entries]})` for the ways that can run
    here (MetaBox's need metaevobox and torch). A MetaBox run that MetaBox's own code ends with an exception is
    recorded (a `.crash.txt` entry) and replaced by the next seed, at most two extra seeds. `long`: section 5's
    setting (`scale.long_*`: the whole budget), where MetaBox's ragged cost-log crash is mended
    (`metabox_side.mended_cost_logs`)."""
    have_metabox = with_metabox(scale)
    epochs, envs, seeds = ((scale.long_epochs, scale.long_envs, scale.long_seeds) if long
                           else (scale.curve_epochs, scale.curve_envs, scale.curve_seeds))
    scale = dataclasses.replace(scale, curve_epochs=epochs, curve_envs=envs)
    result, crashes, entries = {}, [], {}
    for way in ways:
        if (way not in JPPO_WAYS and not have_metabox) or (way == "jppo_mbcost" and not scale.metabox_costs_way):
            continue
        result[way], entries[way], seed = [], [], 0
        while len(result[way]) < seeds and seed < seeds + (0 if way in JPPO_WAYS else 2):
            run, entry, crash = (_jppo_run(cache, scale, way, seed, have_metabox) if way in JPPO_WAYS else
                                 _metabox_run(cache, scale, way, seed, long))
            if run is not None:
                result[way].append(run)
                entries[way].append(entry)
            if crash is not None:
                crashes.append(f"{WAY_NAMES[way]}, seed {seed}: {crash}")
            seed += 1
    return result, crashes, entries


def _jppo_run(cache: Cache, scale: Scale, way: str, seed: int, have_metabox: bool):
    """`(run arrays, entry, None)` of a jppo way, from torch's initialisation where MetaBox imports."""
    label = f"curve_{way}_s{seed}"
    made_by = settings(scale, "max_fes", "evaluate_fn", way=way, seed=seed, epochs=scale.curve_epochs,
                       envs=scale.curve_envs, init="torch" if have_metabox else "jppo")
    weights = metabox_side.init_weights(seed) if have_metabox else None
    with jax.enable_x64(True):
        run = cache.arrays(label, made_by, CODE, lambda: jppo_curves(scale, seed, weights, way == "jppo_mbcost"))
    return run, cache.path(label, made_by, CODE).name, None


def _metabox_run(cache: Cache, scale: Scale, way: str, seed: int, long: bool):
    """`(run arrays or None, entry, crash note or None)` of a way under MetaBox's Trainer; a crash inside
    MetaBox's own code is kept as an entry of its own, so a rerun does not try that seed again."""
    label = f"curve_{way}_s{seed}"
    made_by = {"way": way, "seed": seed, "epochs": scale.curve_epochs, "envs": scale.curve_envs,
               "max_fes": scale.max_fes, "mend_cost_logs": long}
    code = METABOX_CODE if way == "metabox" else CODE
    crash = cache.path(label, made_by, code, ".crash.txt")
    if not crash.exists():
        work = cache.directory / "work" / cache.path(label, made_by, code, "").name
        try:
            run = cache.arrays(label, made_by, code, lambda: metabox_side.train_curves(
                way, seed, scale.curve_epochs, scale.curve_envs, work, scale.max_fes, mend_cost_logs=long))
            return run, cache.path(label, made_by, code).name, None
        except Exception as err:  # only MetaBox's own code may fail here
            if not metabox_side.raised_in_metabox(err):
                raise
            cache.file(label, made_by, code, lambda path: path.write_text(metabox_side.crash_report(err)), ".crash.txt")
    return None, None, crash.read_text().strip()


def run_summary(r: dict) -> dict:
    """What the report draws of one run: per batch episode its problem, mean return, mean log10 final cost over
    the batch, the actor's mean σ (over t and the dims) after it, and its seconds."""
    return {"problem": r["problem"], "return": r["return"], "log_cost": log_cost(r["final_cost"]).mean(axis=1),
            "sigma": r["sigma"].mean(axis=(1, 2)), "seconds": r["seconds"]}


def diagnostics(way: str, runs: list) -> list:
    """Per `DIAGNOSTICS` quantity, the mean over all learning steps of all runs (None where the way has none):
    MetaBox's ways as their agents log them to TensorBoard, jppo its window metrics averaged over the K epochs."""
    keys = [jkey if way in JPPO_WAYS else f"tb:{mkey}" if mkey else None for _, mkey, jkey in DIAGNOSTICS]
    return [None if key is None or key not in runs[0] else
            float(np.nanmean(np.concatenate([np.asarray(r[key], float) for r in runs]))) for key in keys]


def movement(runs: list) -> dict:
    """How far the actor moved from after the first batch episode to after the last (over t, dims and seeds)."""
    mu_end, sig_end = np.stack([r["mu"][-1] for r in runs]), np.stack([r["sigma"][-1] for r in runs])
    mu_first, sig_first = np.stack([r["mu"][0] for r in runs]), np.stack([r["sigma"][0] for r in runs])
    return {"sigma_first": sig_first.mean(), "sigma_end": sig_end.mean(),
            "rms_dmu": float(np.sqrt(((mu_end - mu_first) ** 2).mean())),
            "rms_dsigma": float(np.sqrt(((sig_end - sig_first) ** 2).mean()))}


def collect(cache: Cache, scale: Scale) -> dict | None:
    """Per way the runs' summaries, how far the actor moved and the learning-step diagnostics; crash notes.
    None at curve_epochs 0."""
    if not scale.curve_epochs:
        return None
    ways, crashes, _ = curves(cache, scale)
    return {"crashes": crashes,
            "ways": {way: {"runs": [run_summary(r) for r in runs], "movement": movement(runs),
                           "diagnostics": diagnostics(way, runs)} for way, runs in ways.items()}}


def per_epoch(values, epochs: int) -> np.ndarray:
    """Means over each epoch's 8 batch episodes (one per train problem, so the order does not matter)."""
    return np.asarray(values)[: epochs * 8].reshape(epochs, 8).mean(axis=1)


def epoch_stats(runs: list, key: str, epochs: int) -> np.ndarray:
    """[seeds, epochs] of per-epoch means of a run summary's 'return' or 'log_cost'."""
    return np.stack([per_epoch(r[key], epochs) for r in runs])


def render(s3: dict, scale: Scale) -> tuple[list[str], list]:
    """`(lines, tables)`: the setting and what agrees, then `(heading, header, rows)` per table."""
    ways, epochs = s3["ways"], scale.curve_epochs
    lines = [f"Setting: the difficult split's 8 train problems, MetaBox's 'single' batching ({scale.curve_envs} envs per "
             f"batch episode, all on one problem), {epochs} epochs = {epochs * 8} batch episodes, "
             f"{scale.curve_seeds} seeds; lr 1e-5, MetaBox's bootstrap, float64 in every way. Seed s: MetaBox's "
             f"Trainer seed {metabox_side.metabox_seed(0)} + s, and all three ways start from the same networks, "
             f"torch's initialisation under that seed (compat and jppo load its weights)."]
    if "compat" not in ways:
        lines.append(f"MetaBox's two ways skipped: {metabox_side.__name__} needs metaevobox and torch; jppo starts "
                     f"from its own initialisation.")
    for note in s3["crashes"]:
        lines.append(f"Crashed inside MetaBox's code, replaced by the next seed: {note}")
    lines.append(RETURN_NOTE)
    tables = []
    for key, label in (("return", "return (±1 reward, mean over the batch)"),
                       ("log_cost", "mean log10 final train cost")):
        stats = {way: epoch_stats(w["runs"], key, epochs) for way, w in ways.items()}
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
    tables.append(per_problem_table(ways))
    tables.append(("Per learning step (means over all batch episodes and seeds)",
                   ("quantity", *[WAY_NAMES[w] for w in ways]),
                   [(label, *["-" if w["diagnostics"][i] is None else f"{w['diagnostics'][i]:.4g}"
                              for w in ways.values()]) for i, (label, _, _) in enumerate(DIAGNOSTICS)]))
    tables.append(("How far the actor moved (after the first batch episode → after the last; over t ∈ [0, 1], "
                   "35 dims, seeds)", ("way", "mean σ after episode 1", "mean σ at the end", "RMS Δμ", "RMS Δσ"),
                   [movement_row(way, w["movement"]) for way, w in ways.items()]))
    return lines, tables


def movement_row(way: str, m: dict) -> tuple:
    return (WAY_NAMES[way], f"{m['sigma_first']:.3f}", f"{m['sigma_end']:.3f}", f"{m['rms_dmu']:.4f}",
            f"{m['rms_dsigma']:.4f}")


def per_problem_table(ways: dict):
    """Mean return and mean log10 final cost per train problem, over every batch episode on it and every seed."""
    def by_problem(runs):
        out = {}
        for r in runs:
            for fid_, ret, cost in zip(r["problem"], r["return"], r["log_cost"]):
                out.setdefault(int(fid_), []).append((float(ret), float(cost)))
        return {f: np.asarray(v) for f, v in out.items()}

    stats = {way: by_problem(w["runs"]) for way, w in ways.items()}
    fids = sorted(next(iter(stats.values())))
    rows = [(f"F{f}", *[f"{s[f][:, 0].mean():.1f} / {s[f][:, 1].mean():.2f}" for s in stats.values()]) for f in fids]
    return ("Per train problem: mean return / mean log10 final cost (all batch episodes and seeds)",
            ("problem", *[WAY_NAMES[w] for w in stats]), rows)


def panels(axes, s3: dict | None, scale: Scale):
    """The figure's per-epoch return and cost panels and the σ-per-episode panel."""
    ways = s3["ways"] if s3 else {}
    for ax, (key, label) in zip(axes, (("return", "return"), ("log_cost", "mean log10 final cost"))):
        for way, w in ways.items():
            stats = epoch_stats(w["runs"], key, scale.curve_epochs)
            e = np.arange(1, scale.curve_epochs + 1)
            ax.errorbar(e, stats.mean(0), yerr=stats.std(0, ddof=1) if len(stats) > 1 else None, capsize=2,
                        label=WAY_NAMES[way])
        ax.set_title(f"3. per-epoch {label} (mean ± sd over seeds)", fontsize=9)
        ax.set_xlabel("epoch (8 batch episodes)", fontsize=8)
        ax.legend(fontsize=6)
    ax = axes[2]
    for way, w in ways.items():
        for i, r in enumerate(w["runs"]):
            ax.plot(np.arange(1, len(r["sigma"]) + 1), r["sigma"], color=f"C{WAYS.index(way)}",
                    label=WAY_NAMES[way] if i == 0 else None, lw=1)
    ax.set_title("3. actor's mean σ after each batch episode", fontsize=9)
    ax.set_xlabel("batch episode", fontsize=8)
    ax.legend(fontsize=6)
