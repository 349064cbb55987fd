"""One (vulnerable, safe) pair: the safe-twin strategies, the wrapper around the core, and assembly."""
from __future__ import annotations

import random
from typing import Callable, Sequence

from .pools import INT_SUFFIXES, LEN_NAMES, LITERALS, NOUNS, PREFIXES, SQL_BIND, STRATEGIES, VERBS
from .sinks import SINKS, Sink
from .statements import Fn, Lines, block, c_str, dead_code, distractor, harmless_use, hops, source


def _weighted(rng: random.Random, options: Sequence[tuple[str, int]]) -> str:
    total = sum(w for _, w in options)
    x = rng.randrange(total)
    for name, w in options:
        if x < w:
            return name
        x -= w
    raise AssertionError("unreachable")


def _core(f: Fn, strategy: str, sink: Sink, tv: str, cv: str, fail: str) -> tuple[Lines, Lines, Lines]:
    """(shared prefix, vulnerable core, safe core) for the chosen strategy."""
    num, r = sink.numeric, f.rng
    shared: Lines = []
    if strategy == "swap":
        use_first, use = r.random() < 0.5, harmless_use(f, num)

        def swap(to_sink: str, to_use: str) -> Lines:
            return use(to_use) + sink.render(to_sink) if use_first else sink.render(to_sink) + use(to_use)

        return shared, swap(tv, cv), swap(cv, tv)
    if strategy == "overwrite":
        v = f.fresh(LEN_NAMES, INT_SUFFIXES) if num else f.s()
        decl = "size_t" if num else "const char *"
        gap = distractor(f) if r.random() < 0.5 else []
        sep = "" if decl.endswith("*") else " "

        def ow(first: str, second: str) -> Lines:
            return [(0, f"{decl}{sep}{v} = {first};")] + gap + [(0, f"{v} = {second};")] + sink.render(v)

        return shared, ow(cv, tv), ow(tv, cv)
    if strategy == "guard":
        guard_t = block(f"if ({sink.bad(tv)}) {{", [(0, fail)])
        if r.random() < 0.5:
            vuln = sink.render(tv) + guard_t  # checked too late
        else:
            vuln = block(f"if ({sink.bad(cv)}) {{", [(0, fail)]) + sink.render(tv)  # checks the wrong value
        return shared, vuln, guard_t + sink.render(tv)
    if strategy == "flag":
        ok, warn = f.i(), f.i()
        shared = [(0, f"int {warn} = 0;"), (0, f"int {ok} = {sink.bad(tv)};")]
        vuln = block(f"if ({ok}) {{", [(0, f"{warn}++;")]) + sink.render(tv)
        safe = block(f"if ({ok}) {{", [(0, f"{warn}++;"), (0, fail)]) + sink.render(tv)
        return shared, vuln, safe
    if strategy == "fmt":
        nl = r.choice(("%s", "%s\n", "[%s]\n"))

        def fmt(as_format: str, as_arg: str) -> Lines:
            return [(0, f"{sink.head}{c_str(nl)}, {as_arg});"), (0, f"{sink.head}{as_format});")]

        return shared, fmt(tv, cv), fmt(cv, tv)
    # prepared (CWE-89): the twin that splices the constant and binds the input is safe
    db, stmt = f.fresh(("db", "sqlite", "store_db", "dbh")), f.fresh(("stmt", "st", "prep", "query_stmt"))
    sql, fmt_sql = f.b(), f.pick(SQL_BIND)
    f.params.append(f"sqlite3 *{db}")
    shared = [(0, f"char {sql}[512];"), (0, f"sqlite3_stmt *{stmt} = NULL;")]

    def prep(spliced: str, bound: str) -> Lines:
        return ([(0, f"snprintf({sql}, sizeof({sql}), {c_str(fmt_sql)}, {spliced});")]
                + block(f"if (sqlite3_prepare_v2({db}, {sql}, -1, &{stmt}, NULL) != SQLITE_OK) {{", [(0, fail)])
                + [(0, f"sqlite3_bind_text({stmt}, 1, {bound}, -1, SQLITE_TRANSIENT);"),
                   (0, f"sqlite3_step({stmt});"), (0, f"sqlite3_finalize({stmt});")])

    return shared, prep(tv, cv), prep(cv, tv)


def _wrapper(f: Fn) -> Callable[[Lines], Lines]:
    """A branch or loop around the core, drawn once and applied to both twins."""
    kind = f.rng.randrange(5)
    if kind == 0:
        return lambda body: body
    if kind == 1:
        m = f.fresh(("mode", "verbose", "enabled", "level"))
        f.int_params.append(m)
        return lambda body: block(f"if ({m} != 0) {{", body)
    if kind == 2:
        c, i = f.fresh(("count", "rounds", "attempts", "times")), f.i()
        f.int_params.append(c)
        return lambda body: block(f"for (int {i} = 0; {i} < {c}; {i}++) {{", body)
    if kind == 3:
        return lambda body: block("do {", body, "} while (0);")
    m, case = f.fresh(("op", "action", "cmd_id", "kind")), f.rng.randint(1, 9)
    f.int_params.append(m)
    return lambda body: block(f"switch ({m}) {{", [(0, f"case {case}: {{")] + [(d + 1, t) for d, t in body]
                               + [(1, "break;"), (0, "}"), (0, "default:"), (1, "break;")])


def _render(ret: str, name: str, params: Sequence[str], body: Lines) -> str:
    out = [f"{ret} {name}({', '.join(params) if params else 'void'})", "{"]
    out += ["    " * (d + 1) + t for d, t in body]
    out.append("}")
    return "\n".join(out) + "\n"


def make_pair(rng: random.Random, cwe: str) -> tuple[str, str]:
    """One (vulnerable, safe) pair of C functions built from the same draws."""
    f = Fn(rng)
    ret = rng.choice(("int", "int", "static int", "long"))
    fname = f.pick(PREFIXES) + f.pick(VERBS) + "_" + f.pick(NOUNS)
    f.used.add(fname)
    fail = f"return {rng.choice((-1, -1, -2, 1))};"

    strategy = _weighted(rng, STRATEGIES[cwe])
    if strategy == "prepared":  # _core writes the whole statement; only the literal pool is needed
        sink = Sink([], lambda x: [], lambda x: "", "CWE-89")
    else:
        sink = SINKS[cwe](f, fail)
    src_lines, t = source(f, fail)
    hop_units, tv = hops(f, t)
    units: list[Lines] = [src_lines] + hop_units
    if sink.numeric:  # CWE-121: the tainted value is a length derived from the input
        n, kind = f.fresh(LEN_NAMES, INT_SUFFIXES), rng.randrange(3)
        expr = (f"strlen({tv})", f"(size_t)atoi({tv})", f"(size_t)strtoul({tv}, NULL, 10)")[kind]
        units.append([(0, f"size_t {n} = {expr};")])
        sink.src = tv
        if kind:  # the input is a number; the bytes come from a large local block, so clamping is enough
            sink.src = f.b()
            f.buf_decls.append((0, f"char {sink.src}[4096];"))
            units.append([(0, f"memset({sink.src}, 'A', sizeof({sink.src}));")])
        cv = f.fresh(LEN_NAMES, INT_SUFFIXES)
        units.append([(0, f"size_t {cv} = {n} < sizeof({sink.buf}) ? {n} : sizeof({sink.buf}) - 1;")])
        tv = n
    else:
        cv = f.s()
        const = [(0, f"const char *{cv} = {c_str(f.pick(LITERALS[sink.literal_pool]))};")]
        units.insert(0 if rng.random() < 0.5 else len(units), const)
    for _ in range(rng.choice((0, 1, 1, 2, 3))):  # distractors may sit anywhere before the core
        units.insert(rng.randrange(len(units) + 1), distractor(f))
    shared, vuln_core, safe_core = _core(f, strategy, sink, tv, cv, fail)
    wrap = _wrapper(f)
    tail: Lines = []
    if rng.random() < 0.4:
        tail += dead_code(f)
    if rng.random() < 0.3:
        tail += distractor(f)
    tail.append((0, "return 0;"))
    head = f.buf_decls + sink.decls + [line for u in units for line in u]
    params = f.params + [f"int {p}" for p in f.int_params]
    rng.shuffle(params)
    vuln = _render(ret, fname, params, head + wrap(shared + vuln_core) + tail)
    safe = _render(ret, fname, params, head + wrap(shared + safe_core) + tail)
    return vuln, safe

