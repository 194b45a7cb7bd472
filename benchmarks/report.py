"""Write a benchmark's markdown table and PNG plot, and the summary a report is drawn from."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def machine() -> str:
    devices = ", ".join(sorted({d.device_kind for d in jax.devices()}))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, JAX {jax.__version__} on {devices}; "
            f"load average (1, 5, 15 min) at writing: {load}.")


def _table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def write(out_dir: Path, name: str, *, title: str, header, rows, notes=(), plot=None, ylabel="seconds", sections=(),
          figure=None):
    """`out_dir/name.md` (a table plus notes, then `sections`: more `(heading, header, rows, notes)`
    tables) and, given `plot` (label -> samples, a box plot) or `figure` (a matplotlib figure),
    `out_dir/name.png`."""
    lines = [f"# {title}", "", *_table(header, rows)]
    lines += [""] + [f"{n}  " for n in notes]
    for heading, sec_header, sec_rows, sec_notes in sections:
        lines += ["", f"## {heading}", "", *_table(sec_header, sec_rows), ""] + [f"{n}  " for n in sec_notes]
    if figure is not None:
        lines += ["", f"![{name}]({name}.png)"]
        figure.savefig(out_dir / f"{name}.png", dpi=100)
        plt.close(figure)
    elif plot:
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


def splice_section(path: Path, heading: str, header, rows, notes) -> None:
    """Put the section `## heading` (a table and notes, as `write` draws it) into the markdown file `path` in place
    of its earlier version, or before the figure (the end without one); print it."""
    lines = ["", f"## {heading}", "", *_table(header, rows), ""] + [f"{n}  " for n in notes]
    old = path.read_text().splitlines()
    if f"## {heading}" in old:
        start = old.index(f"## {heading}") - 1
        end = next((i - 1 for i in range(start + 2, len(old)) if old[i].startswith(("## ", "!["))), len(old))
    else:
        start = end = next((i - 1 for i, line in enumerate(old) if line.startswith("![")), len(old))
    path.write_text("\n".join(old[:start] + lines + old[end:]) + "\n")
    print("\n".join(lines))


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x.tolist() if hasattr(x, "tolist") else x  # numpy arrays and scalars


def _dumps(x, depth: int = 0) -> str:
    pad = " " * (depth + 1)
    if isinstance(x, dict) and x:
        items = [f"{pad}{json.dumps(k)}: {_dumps(v, depth + 1)}" for k, v in x.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if isinstance(x, list) and any(isinstance(v, dict) for v in x):
        return "[\n" + ",\n".join(pad + _dumps(v, depth + 1) for v in x) + "\n" + " " * depth + "]"
    return json.dumps(x, ensure_ascii=False)


def write_summary(path: Path, summary: dict):
    """`summary` (dicts, lists, numbers, strings, numpy arrays) as JSON, a dict entry per line and arrays on one
    line each; floats as Python writes them, so they read back exactly."""
    path.write_text(_dumps(_plain(summary)) + "\n")


def read_summary(path: Path) -> dict:
    return json.loads(path.read_text())
