"""Vulnerable/safe twins for languages other than C, over a small `Dialect` of statement renderings.

A language module (`java.py`, `python.py`) supplies the dialect (how a declaration, an assignment, an
`if`, a loop, a function look) and its sources, hops and sinks; the strategies here decide what differs
between the twins. As in the C generator, both twins call the same functions and contain the same
literals, so only the data flow tells them apart:

    swap       the sink gets the constant in the safe twin, the tainted value in the vulnerable one; the
               other value goes to a harmless use in both
    overwrite  the value reaching the sink is overwritten by the constant (vulnerable: the reverse order)
    guard      a validator / allow-list check rejects bad input before the sink (vulnerable: checked after
               the sink, or the constant is checked instead)
    flag       the check result is computed in both, only the safe twin rejects on it
    bind       CWE-89: the tainted value is a bound query parameter and the constant is spliced into the
               query text (vulnerable: the reverse)
"""
from __future__ import annotations

import random
from typing import Callable, Protocol, Sequence

from .statements import Fn, Lines

STRATEGIES: dict[str, tuple[tuple[str, int], ...]] = {
    "CWE-89": (("swap", 3), ("overwrite", 2), ("guard", 3), ("flag", 2), ("bind", 3)),
    "CWE-78": (("swap", 3), ("overwrite", 2), ("guard", 3), ("flag", 3)),
}


class Sink:
    """One sink drawn for a pair: declarations, the sink statements for a value, what makes a value bad."""

    def __init__(self, decls: Lines, render: Callable[[str], Lines], bad: Callable[[str], str],
                 bind: Callable[[str, str], Lines] | None = None):
        self.decls, self.render, self.bad, self.bind = decls, render, bad, bind


class Dialect(Protocol):
    LITERALS: dict[str, Sequence[str]]
    SINKS: dict[str, Callable[[Fn], Sink]]

    def new_fn(self, rng: random.Random) -> Fn: ...

    def str_lit(self, text: str) -> str: ...
    def decl(self, name: str, expr: str, kind: str = "str") -> Lines: ...
    def assign(self, name: str, expr: str) -> Lines: ...
    def if_block(self, cond: str, body: Lines) -> Lines: ...
    def not_(self, cond: str) -> str: ...
    def increment(self, name: str) -> Lines: ...
    def signature(self, f: Fn, rng: random.Random) -> tuple[str, str, str]: ...
    def render(self, head: str, params: Sequence[str], body: Lines) -> str: ...
    def int_param(self, name: str) -> str: ...
    def source(self, f: Fn, fail: str) -> tuple[Lines, str]: ...
    def hops(self, f: Fn, start: str) -> tuple[list[Lines], str]: ...
    def distractor(self, f: Fn) -> Lines: ...
    def harmless_use(self, f: Fn) -> Callable[[str], Lines]: ...
    def wrapper(self, f: Fn) -> Callable[[Lines], Lines]: ...
    def dead_code(self, f: Fn) -> Lines: ...


def _weighted(rng: random.Random, options: Sequence[tuple[str, int]]) -> str:
    x = rng.randrange(sum(w for _, w in options))
    for name, w in options:
        if x < w:
            return name
        x -= w
    raise AssertionError("unreachable")


def _core(d: Dialect, f: Fn, strategy: str, sink: Sink, tv: str, cv: str, fail: str) -> tuple[Lines, Lines, Lines]:
    """(shared prefix, vulnerable core, safe core)."""
    r = f.rng
    if strategy == "swap":
        use_first, use = r.random() < 0.5, d.harmless_use(f)

        def swap(to_sink: str, to_use: str) -> Lines:
            return use(to_use) + sink.render(to_sink) if use_first else sink.render(to_sink) + use(to_use)

        return [], swap(tv, cv), swap(cv, tv)
    if strategy == "overwrite":
        v = f.s()
        gap = d.distractor(f) if r.random() < 0.5 else []

        def ow(first: str, second: str) -> Lines:
            return d.decl(v, first) + gap + d.assign(v, second) + sink.render(v)

        return [], ow(cv, tv), ow(tv, cv)
    if strategy == "guard":
        guard_t = d.if_block(sink.bad(tv), [(0, fail)])
        if r.random() < 0.5:
            vuln = sink.render(tv) + guard_t  # checked too late
        else:
            vuln = d.if_block(sink.bad(cv), [(0, fail)]) + sink.render(tv)  # checks the wrong value
        return [], vuln, guard_t + sink.render(tv)
    if strategy == "flag":
        ok, warn = f.i(), f.i()
        shared = d.decl(warn, "0", "int") + d.decl(ok, sink.bad(tv), "bool")
        vuln = d.if_block(ok, d.increment(warn)) + sink.render(tv)
        safe = d.if_block(ok, d.increment(warn) + [(0, fail)]) + sink.render(tv)
        return shared, vuln, safe
    assert sink.bind is not None  # bind: only SQL sinks offer it
    return [], sink.bind(tv, cv), sink.bind(cv, tv)


def make_pair(d: Dialect, rng: random.Random, cwe: str) -> tuple[str, str]:
    """One (vulnerable, safe) pair of functions in the dialect's language, built from the same draws."""
    f = d.new_fn(rng)
    head, fail, ok_return = d.signature(f, rng)
    strategy = _weighted(rng, STRATEGIES[cwe])
    sink = d.SINKS[cwe](f)
    if strategy == "bind" and sink.bind is None:
        strategy = "swap"
    src_lines, t = d.source(f, fail)
    hop_units, tv = d.hops(f, t)
    units: list[Lines] = [src_lines] + hop_units
    cv = f.s()
    units.insert(0 if rng.random() < 0.5 else len(units), d.decl(cv, d.str_lit(f.pick(d.LITERALS[cwe]))))
    for _ in range(rng.choice((0, 1, 1, 2, 3))):
        units.insert(rng.randrange(len(units) + 1), d.distractor(f))
    shared, vuln_core, safe_core = _core(d, f, strategy, sink, tv, cv, fail)
    wrap = d.wrapper(f)
    tail: Lines = []
    if rng.random() < 0.4:
        tail += d.dead_code(f)
    if rng.random() < 0.3:
        tail += d.distractor(f)
    if ok_return:
        tail.append((0, ok_return))
    body = sink.decls + [line for u in units for line in u]
    params = f.params + [d.int_param(p) for p in f.int_params]
    rng.shuffle(params)
    return (d.render(head, params, body + wrap(shared + vuln_core) + tail),
            d.render(head, params, body + wrap(shared + safe_core) + tail))
