"""Forward bit-mask dataflow: one worklist solver, and reaching definitions on top of it.

Reaching definitions (here) and taint propagation (taint.py) are both monotone forward problems
over integer bit masks: a node's input is the OR of its predecessors' outputs and its output is a
transfer function of that input. Python ints serve as bitsets of any width.
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Iterable, Sequence

from .graph import AST


def forward_fixpoint(preds: Sequence[Sequence[int]], succs: Sequence[Sequence[int]],
                     transfer: Callable[[int, int], int], init: list[int] | None = None) -> tuple[list[int], list[int]]:
    """Iterate to the least fixpoint; returns (in_masks, out_masks), one int per node."""
    n = len(preds)
    ins = [0] * n
    outs = list(init) if init is not None else [0] * n
    work = deque(range(n))
    queued = [True] * n
    while work:
        i = work.popleft()
        queued[i] = False
        x = 0
        for p in preds[i]:
            x |= outs[p]
        ins[i] = x
        o = transfer(i, x)
        if o != outs[i]:
            outs[i] = o
            for s in succs[i]:
                if not queued[s]:
                    queued[s] = True
                    work.append(s)
    return ins, outs


def reaching_definitions(defs: Sequence[Iterable[str]], uses: Sequence[Iterable[str]],
                         edges: Iterable[tuple[int, int, int]], max_defs: int | None = None,
                         max_deps: int | None = None) -> list[tuple[int, int, str]]:
    """Classic reaching definitions over the control flow (all but `ast` edges) with int bitsets.

    defs[i] / uses[i]: the variables node i writes / reads. Returns (def node, use node, variable)
    for every definition that reaches a use of its variable.

    Work budgets for huge functions, where the exact answer is quadratic: only the first `max_defs`
    definitions get a bit (the bitsets stay that wide), and when more than `max_deps` pairs reach,
    each use keeps only its latest `max(1, max_deps // uses reached)` definitions of a variable.
    Below both budgets the answer is exact.
    """
    n = len(defs)
    def_node: list[int] = []
    var_bits: dict[str, int] = {}
    gen = [0] * n
    for i, ds in enumerate(defs):
        g = 0
        for v in ds:
            if max_defs is not None and len(def_node) >= max_defs:
                break
            bit = 1 << len(def_node)
            def_node.append(i)
            g |= bit
            var_bits[v] = var_bits.get(v, 0) | bit
        gen[i] = g
    if not def_node:
        return []
    keep = [~0] * n
    for i, ds in enumerate(defs):
        k = 0
        for v in ds:
            k |= var_bits.get(v, 0)  # a definition past max_defs has no bit but still kills
        keep[i] = ~k
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for s, d, t in set(edges):
        if t != AST:
            preds[d].append(s)
            succs[s].append(d)
    reach_in, _ = forward_fixpoint(preds, succs, lambda i, x: gen[i] | (x & keep[i]), init=gen)
    per_use = None  # no limit: every reaching definition
    if max_deps is not None:
        # Count first (popcounts are cheap) so the pairs are only materialized within budget.
        counts = [(reach_in[i] & var_bits.get(v, 0)).bit_count() for i, us in enumerate(uses) if reach_in[i]
                  for v in us]
        if sum(counts) > max_deps:
            per_use = max(1, max_deps // sum(1 for c in counts if c))
    deps: list[tuple[int, int, str]] = []
    for i, us in enumerate(uses):
        x = reach_in[i]
        if not x:
            continue
        for v in us:
            m = x & var_bits.get(v, 0)
            if per_use is None:
                while m:  # each set bit is one reaching definition (a node defines a variable once)
                    low = m & -m
                    deps.append((def_node[low.bit_length() - 1], i, v))
                    m ^= low
                continue
            for _ in range(per_use):  # the latest definitions: the highest bits
                if not m:
                    break
                top = m.bit_length() - 1
                deps.append((def_node[top], i, v))
                m ^= 1 << top
    return deps
