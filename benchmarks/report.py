"""Write a benchmark's markdown table and PNG plot."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def machine() -> str:
    devices = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    return f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, JAX {jax.__version__} on {devices}."


def write(out_dir: Path, name: str, *, title: str, header, rows, notes=(), plot=None, ylabel="seconds"):
    """`out_dir/name.md` (a table plus notes) and, given `plot` (label -> samples), `out_dir/name.png`."""
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    lines += [""] + [f"{n}  " for n in notes]
    if plot:
        lines += ["", f"![{name}]({name}.png)"]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.boxplot(list(plot.values()), tick_labels=list(plot))
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        fig.tight_layout()
        fig.savefig(out_dir / f"{name}.png", dpi=100)
        plt.close(fig)
    (out_dir / f"{name}.md").write_text("\n".join(lines) + "\n")
