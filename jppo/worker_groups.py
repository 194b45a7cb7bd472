"""How a batch of host environments is split over Ray actors, and each actor's share of the resources.

One plan for the host trainer's 'ray' mode (`jppo.host.RayVectorEnv`) and compat's `ParallelEnv`
('ray', 'ray-subproc'): MetaBox's grouping. With w = min(n, max_groups) and s = ⌈n / w⌉, actor k
holds envs [k·s, min((k+1)·s, n)): consecutive groups of s envs, the last one shorter, ⌈n / s⌉ ≤ w
actors. The largest group, which sets the time of a step, is ⌈n / w⌉ envs, as small as any split
into w groups can make it.
"""

from __future__ import annotations

import math


def groups(n: int, max_groups: int) -> list[range]:
    """Contiguous env indices per actor: at most `max_groups` (≥ 1) groups of ⌈n / min(n, max_groups)⌉."""
    if max_groups < 1:
        raise ValueError(f"the number of workers must be >= 1, got {max_groups}")
    size = math.ceil(n / min(n, max_groups))
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


def resource_share(total: float, parts: int) -> float:
    """Each of `parts` actors' share of `total` resources (CPUs, GPUs): whole units when there is at
    least one per actor (as MetaBox), else a fraction rounded down to Ray's 1e-4 resolution."""
    each = total / parts
    if each >= 1:
        return float(math.floor(each))
    return math.floor(each * 1e4) / 1e4
