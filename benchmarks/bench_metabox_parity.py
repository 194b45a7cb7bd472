"""The metabox_parity study (`benchmarks/metabox_parity/`) as `python -m benchmarks.run metabox_parity`."""

from benchmarks.metabox_parity.runner import main, redraw

__all__ = ["main", "redraw"]
