"""Section 2's cause: MetaBox's loop (epochs k ≥ 1 re-evaluate the stored actions and the critic at the window's
last state) against the corrected one (the stored states: compat's and jppo's), one training episode in torch
from the same start (`metabox_side.loop_movement`)."""

from __future__ import annotations

from benchmarks import metabox_side
from benchmarks.cache import Cache
from benchmarks.metabox_parity.policies import jppo_init_weights, rms
from benchmarks.metabox_parity.setting import Scale, study_code, with_metabox

CODE = study_code(__file__)
PROBLEMS = (1,)  # train problems the comparison runs on (F1: sphere)
VARIANTS = ((True, "torch", "MetaBox's (k ≥ 1 at the last state), torch's init"),
            (False, "torch", "corrected (stored states), torch's init"),
            (False, "jppo", "corrected (stored states), init 'orthogonal' (head ×0.01)"))
HEADING = "2. Cause: MetaBox's loop vs the corrected one, one training episode from the same start"
HEADER = ("problem", "loop, start", "mean σ at start", "clip fraction, epochs k ≥ 1", "approx KL, k ≥ 1",
          "actor grad norm", "RMS Δμ after 1 episode", "RMS Δσ", "Δ mean σ", "s")
NOTE = ("Every row: torch, float64, Adam lr 1e-5, the networks of torch's init (Trainer seed 3849; the last row: jppo's "
        "init 'orthogonal', its policy head scaled by 0.01, instead), MetaBox's batch "
        "of 16 copies of the problem on MetaBox's numpy RLEPSO_Optimizer with the same seeds, one batch episode "
        "(20 windows × K = 3 = 60 learning steps; `references/torch_ppo.torch_train_episode`). Only the epochs k ≥ 1 "
        "differ between the first two rows: MetaBox's RLEPSO.train_episode evaluates the stored actions and the "
        "critic at the state after the window, compat and jppo at the stored states.")


def collect(cache: Cache, scale: Scale, seed: int = 0) -> list:
    """Per (problem, loop) what one episode did to the actor; [] without MetaBox."""
    if not with_metabox(scale):
        return []
    rows = []
    for fid in PROBLEMS:
        for last, init, name in VARIANTS:
            made_by = {"seed": seed, "fid": fid, "batch": scale.num_envs, "max_fes": scale.max_fes,
                       "reevaluate_at_last_state": last, "init": init}
            weights = jppo_init_weights(seed) if init == "jppo" else None
            r = cache.arrays(f"loop_{'last' if last else 'stored'}_{init}_F{fid}", made_by, CODE,
                             lambda: metabox_side.loop_movement(seed, fid, scale.num_envs, last, max_fes=scale.max_fes,
                                                                weights=weights))
            later = r["epoch"] >= 1
            rows.append({"fid": fid, "name": name, "sigma0": r["sigma0"].mean(),
                         "clip_fraction": r["clip_fraction"][later].mean(), "approx_kl": r["approx_kl"][later].mean(),
                         "grad_actor": r["grad_actor"].mean(), "rms_dmu": rms(r["mu1"] - r["mu0"]),
                         "rms_dsigma": rms(r["sigma1"] - r["sigma0"]),
                         "dsigma": r["sigma1"].mean() - r["sigma0"].mean(), "seconds": float(r["seconds"])})
    return rows


def render(rows: list) -> list:
    return [(f"F{r['fid']}", r["name"], f"{r['sigma0']:.4f}", f"{r['clip_fraction']:.3f}", f"{r['approx_kl']:.4f}",
             f"{r['grad_actor']:.3g}", f"{r['rms_dmu']:.2e}", f"{r['rms_dsigma']:.2e}", f"{r['dsigma']:+.2e}",
             f"{r['seconds']:.0f}") for r in rows]
