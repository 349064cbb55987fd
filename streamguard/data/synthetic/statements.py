"""One function's name scope and the statements shared by every CWE family.

`Fn` holds the random generator and the names already used in a function (both twins share them);
the builders here add taint sources, copies of the tainted value (hops), distractors, harmless uses
and dead code. Each builder consumes random draws in a fixed order, which the output depends on.
"""
from __future__ import annotations

import random
from typing import Callable, Sequence

from .pools import (BUF_NAMES, ENV_NAMES, HELPERS, INT_NAMES, INT_SUFFIXES, LOGGERS, MESSAGES, STR_NAMES,
                    STR_SUFFIXES)

Lines = list[tuple[int, str]]  # (relative indentation depth, text)


class Fn:
    """Random draws and the set of names used in one function (shared by both twins)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()
        self.params: list[str] = []  # "type name" entries of the signature
        self.int_params: list[str] = []  # int flags/counters the wrappers and dead code test
        self.bufs: list[str] = []  # scratch buffers declared at the top (distractors may memset them)
        self.buf_decls: Lines = []

    def fresh(self, pool: Sequence[str], suffixes: Sequence[str] = ("",)) -> str:
        for _ in range(20):
            name = self.rng.choice(pool) + self.rng.choice(suffixes)
            if name not in self.used:
                self.used.add(name)
                return name
        base = self.rng.choice(pool)
        k = 2
        while f"{base}{k}" in self.used:
            k += 1
        self.used.add(f"{base}{k}")
        return f"{base}{k}"

    def s(self) -> str:
        return self.fresh(STR_NAMES, STR_SUFFIXES)

    def i(self) -> str:
        return self.fresh(INT_NAMES, INT_SUFFIXES)

    def b(self) -> str:
        return self.fresh(BUF_NAMES)

    def pick(self, seq: Sequence):
        return self.rng.choice(seq)


def c_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def block(head: str, body: Lines, tail: str = "}") -> Lines:
    return [(0, head)] + [(d + 1, t) for d, t in body] + [(0, tail)]


# --- shared statements: distractors, harmless uses, dead code -------------------------------------------
def distractor(f: Fn) -> Lines:
    a, r = f.i(), f.rng
    kind = r.randrange(8)
    k, m = r.randint(2, 9), r.randint(3, 97)
    if kind == 0:
        return [(0, f"int {a} = {k};"), (0, f"{a} = ({a} * {m}) % {r.randint(5, 251)};")]
    if kind == 1:
        i = f.i()
        return [(0, f"unsigned {a} = 0;")] + block(f"for (int {i} = 0; {i} < {k}; {i}++) {{",
                                                    [(0, f"{a} += (unsigned){i} * {m}u;")])
    if kind == 2:
        return [(0, f"{f.pick(LOGGERS)}({c_str(f.pick(MESSAGES) + ' ' + str(m))});")]
    if kind == 3 and f.bufs:
        buf = f.pick(f.bufs)
        return [(0, f"memset({buf}, 0, sizeof({buf}));")]
    if kind == 4:
        return [(0, f"long {a} = {m}L;")] + block(f"if ({a} > {k * 10}) {{", [(0, f"{a} -= {k};")])
    if kind == 5:
        return [(0, f"double {a} = {m}.{k};"), (0, f"{a} = {a} / 2.0;")]
    if kind == 6:
        b = f.i()
        return [(0, f"const int {a}[3] = {{ {k}, {m}, {k + m} }};"), (0, f"int {b} = {a}[0] + {a}[2];")]
    c = f.i()
    return [(0, f"int {a} = {k};"), (0, f"int {c} = 0;")] + block(
        f"while ({a}-- > 0) {{", [(0, f"{c} += {a} & {m};")])


def harmless_use(f: Fn, numeric: bool) -> Callable[[str], Lines]:
    """A use of a value that is no sink, drawn once so both twins can apply it to different values."""
    v = f.i()
    if numeric:
        m = f.rng.randint(3, 61)
        return lambda x: [(0, f"unsigned long {v} = (unsigned long){x} * {m}u;")]
    kind = f.rng.randrange(4)
    if kind == 0:
        return lambda x: [(0, f"size_t {v} = strlen({x});")]
    if kind == 1:
        return lambda x: [(0, f"int {v} = ({x}[0] == '\\0');")]
    if kind == 2:
        word = c_str(f.pick(MESSAGES))
        return lambda x: [(0, f"int {v} = strcmp({x}, {word}) == 0;")]
    p, ch = f.s(), f.pick("/.:=-")
    return lambda x: [(0, f"const char *{p} = strchr({x}, '{ch}');")]


def dead_code(f: Fn) -> Lines:
    body = distractor(f)
    kind = f.rng.randrange(3)
    if kind == 0:
        return block("if (0) {", body)
    if kind == 1:
        return block("while (0) {", body)
    if f.int_params:
        p = f.pick(f.int_params)
        return block(f"if ({p} < 0 && {p} > 0) {{", body)
    return block("if (0) {", body)


# --- taint sources -----------------------------------------------------------------------------------
def source(f: Fn, fail: str) -> tuple[Lines, str]:
    """Lines that read attacker-controlled text into a fresh variable; returns (lines, variable)."""
    t, r = f.s(), f.rng
    kind = r.randrange(6)
    if kind == 0:
        lines = [(0, f"const char *{t} = getenv({c_str(f.pick(ENV_NAMES))});")]
        return lines + block(f"if ({t} == NULL) {{", [(0, fail)]), t
    if kind == 1:
        f.params.append("int argc, char **argv")  # kept together when the signature is shuffled
        k = r.randint(1, 3)
        return block(f"if (argc <= {k}) {{", [(0, fail)]) + [(0, f"const char *{t} = argv[{k}];")], t
    size = r.choice((128, 256, 512, 1024))
    if kind == 2:
        lines = [(0, f"char {t}[{size}];")] + block(f"if (fgets({t}, sizeof({t}), stdin) == NULL) {{",
                                                      [(0, fail)])
        if r.random() < 0.5:
            lines.append((0, f"{t}[strcspn({t}, \"\\n\")] = '\\0';"))
        return lines, t
    if kind in (3, 4):
        fd, fn = ("sock", "recv") if kind == 3 else ("fd", "read")
        f.params.append(f"int {fd}")
        got = f.i()
        extra = ", 0" if kind == 3 else ""
        lines = [(0, f"char {t}[{size}];"),
                 (0, f"ssize_t {got} = {fn}({fd}, {t}, sizeof({t}) - 1{extra});")]
        return lines + block(f"if ({got} <= 0) {{", [(0, fail)]) + [(0, f"{t}[{got}] = '\\0';")], t
    lines = [(0, f"char {t}[{size}];")]
    return lines + block(f"if (scanf(\"%{size - 1}s\", {t}) != 1) {{", [(0, fail)]), t


def hops(f: Fn, start: str) -> tuple[list[Lines], str]:
    """Copy the tainted value through 0-3 variables, helpers, buffers and branches."""
    units, cur = [], start
    for _ in range(f.rng.choice((0, 1, 1, 2, 2, 3))):
        nxt, kind = f.s(), f.rng.randrange(4)
        if kind == 0:
            units.append([(0, f"const char *{nxt} = {cur};")])
        elif kind == 1:
            units.append([(0, f"const char *{nxt} = {f.pick(HELPERS)}({cur});")])
        elif kind == 2:
            tmp = f.b()
            f.bufs.append(tmp)
            f.buf_decls.append((0, f"char {tmp}[{f.rng.choice((256, 512, 1024))}];"))
            units.append([(0, f"snprintf({tmp}, sizeof({tmp}), \"%s\", {cur});"),
                          (0, f"const char *{nxt} = {tmp};")])
        else:
            ch = f.pick(" /-")
            units.append([(0, f"const char *{nxt};")]
                         + block(f"if ({cur}[0] == '{ch}') {{", [(0, f"{nxt} = {cur} + 1;")], "} else {")
                         + [(1, f"{nxt} = {cur};"), (0, "}")])
        cur = nxt
    return units, cur

