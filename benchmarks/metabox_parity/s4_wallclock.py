"""Section 4: wall-clock of each way, from the runs of sections 1 and 3."""

from __future__ import annotations

import numpy as np

from benchmarks.metabox_parity.s3_curves import WAY_NAMES

HEADING = "4. Wall-clock"
HEADER = ("what", "s per episode (median)", "vs jppo", "s in all")


def render(s1: dict | None, s3: dict | None) -> list:
    """Rows: each way's training episode (median; jppo's first, which compiles, left out) against jppo's, and
    RLEPSO.pkl's test episode on both sides."""
    rows, base = [], None
    for way, w in (s3["ways"] if s3 else {}).items():
        seconds = [np.asarray(r["seconds"]) for r in w["runs"]]
        med = float(np.median(np.concatenate([s[1:] for s in seconds])))
        base = med if way == "jppo" else base
        rows.append((f"training episode: {WAY_NAMES[way]}", f"{med:.2f}",
                     f"{med / base:.1f}x" if base else "-", f"{sum(s.sum() for s in seconds):.0f}"))
    if s1:
        jp_s, mb_s, n = s1["jppo"]["seconds"], s1["metabox"]["seconds"], np.size(s1["jppo"]["final"])
        rows += [(f"test episode, RLEPSO.pkl: jppo, {n} episodes vmapped (compile included)", f"{jp_s / n:.3f}", "-",
                  f"{jp_s:.0f}"),
                 ("test episode, RLEPSO.pkl: MetaBox's rollout_episode, one after another", f"{mb_s:.3f}", "-",
                  f"{mb_s * n:.0f}")]
    return rows
