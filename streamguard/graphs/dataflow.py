"""One worklist solver for the forward bit-mask dataflow problems of the graph builder.

Reaching definitions (builder.py) and taint propagation (taint.py) are both monotone forward
problems over integer bit masks: a node's input is the OR of its predecessors' outputs and its
output is a transfer function of that input. Python ints serve as bitsets of any width.
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Sequence


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
