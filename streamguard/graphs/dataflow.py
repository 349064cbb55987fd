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
                         edges: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, str]]:
    """Classic reaching definitions over the control flow (all but `ast` edges) with int bitsets.

    defs[i] / uses[i]: the variables node i writes / reads. Returns (def node, use node, variable)
    for every definition that reaches a use of its variable.
    """
    n = len(defs)
    def_node: list[int] = []
    var_bits: dict[str, int] = {}
    gen = [0] * n
    for i, ds in enumerate(defs):
        g = 0
        for v in ds:
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
            k |= var_bits[v]
        keep[i] = ~k
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for s, d, t in set(edges):
        if t != AST:
            preds[d].append(s)
            succs[s].append(d)
    reach_in, _ = forward_fixpoint(preds, succs, lambda i, x: gen[i] | (x & keep[i]), init=gen)
    deps: list[tuple[int, int, str]] = []
    for i, us in enumerate(uses):
        x = reach_in[i]
        if not x:
            continue
        for v in us:
            m = x & var_bits.get(v, 0)
            while m:  # each set bit is one reaching definition (a node defines a variable once)
                low = m & -m
                deps.append((def_node[low.bit_length() - 1], i, v))
                m ^= low
    return deps
