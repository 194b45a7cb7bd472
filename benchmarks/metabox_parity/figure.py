"""The study's figure: one row of panels per part (sections 1-2, 3, 5), each section drawing its own."""

from __future__ import annotations

from benchmarks.metabox_parity import s1_pretrained, s2_trained, s3_curves, s5_whole_budget
from benchmarks.metabox_parity.setting import Scale


# Lines 3 points wide, as the recorded figure has them (drawn in a process where MetaBox's logger, on import,
# had set this default); fixed here so that the figure does not depend on what the process imported.
STYLE = {"lines.linewidth": 3}


def figure(summary: dict, scale: Scale):
    import matplotlib.pyplot as plt

    with plt.rc_context(STYLE):
        return _draw(summary, scale)


def _draw(summary: dict, scale: Scale):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(16, 12.5))
    s1_pretrained.panel(axes[0][0], summary["s1"], summary["fids"])
    s2_trained.panels(axes[0][1:], summary["s2"])
    s3_curves.panels(axes[1], summary["s3"], scale)
    s5_whole_budget.panels(axes[2], summary["s5"])
    for ax in axes.ravel():
        ax.tick_params(labelsize=7)
        if not ax.has_data():
            ax.text(0.5, 0.5, "not run at this scale", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig
