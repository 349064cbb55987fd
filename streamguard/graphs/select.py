"""The node cap: which statements a graph keeps under `max_nodes`, and re-indexing its edges."""
from __future__ import annotations

from collections import deque
from typing import Iterable

from .graph import AST


def select_nodes(n: int, edges: Iterable[tuple[int, int, int]], sinks: list[int], max_nodes: int | None) -> list[int]:
    """Indices (ascending) of the nodes kept under `max_nodes`: nearest to any sink first.

    Distance is BFS over control-flow, data and taint edges in either direction, not AST edges:
    the function header is the AST parent of every top-level statement and would put them all two
    steps from any sink. Ties go by source order; without sinks the first nodes are kept.
    """
    if max_nodes is None or n <= max_nodes:
        return list(range(n))
    if not sinks:
        return list(range(max_nodes))
    adj: list[list[int]] = [[] for _ in range(n)]
    for s, d, t in edges:
        if t != AST:
            adj[s].append(d)
            adj[d].append(s)
    dist = [n + 1] * n
    for s in sinks:
        dist[s] = 0
    queue = deque(sinks)
    while queue:
        u = queue.popleft()
        for v in adj[u]:
            if dist[v] > dist[u] + 1:
                dist[v] = dist[u] + 1
                queue.append(v)
    return sorted(sorted(range(n), key=lambda i: (dist[i], i))[:max_nodes])


def restrict_edges(edges: Iterable[tuple[int, int, int]], keep: list[int], n: int) -> list[tuple[int, int, int]]:
    """The sorted edges among the kept nodes, re-indexed to their positions in `keep`."""
    if len(keep) == n:
        return sorted(edges)
    remap = {old: new for new, old in enumerate(keep)}
    return sorted((remap[s], remap[d], t) for s, d, t in edges if s in remap and d in remap)
