"""Source code -> statement graph: AST nesting, control flow, data dependence and taint flow.

`build_statement_graph(code, max_nodes=None, language="c") -> StatementGraph`

Nodes are statements and conditions, in source order: the function header (its parameters are
definitions), declarations, expression statements, `return`/`break`/`continue`/`goto`, labels,
and one node per condition of `if` / `while` / `do ... while` / `switch`, per `for` header and per
`case`/`default` label. Each node records its statement kind, the APIs it calls, its operators,
literal kinds, type names, the variables it defines and uses, and its taint roles (`graph.py`).

Edges are `(src, dst, type)` with `type` an index into `EDGE_TYPES`: `ast` and `cfg_*` from the
statement structure (`cfg.py`), then

- `data_dep`   reaching definitions over the control flow: definition -> use of the same variable
               (`dataflow.py`);
- `taint`      the `data_dep` edges on a path that carries taint from a source into a sensitive
               argument of a sink of the same class (`taint.py`; the language's catalog names the
               sources, sinks, sanitizers and classes).

Variables written through `a[i] = ..`, `*p = ..`, `s->f = ..`, `&x` arguments or the output
argument of a copy (`strcpy(dst, ..)`) are read-modify-write: the statement both uses and
redefines the base variable, so earlier taint survives a partial write while chains stay linear.
The parameters of a function header are sources.

Code tree-sitter cannot parse fully still yields a graph from what was recovered, with
`parse_ok=False`. Input is never rejected: any `str` or `bytes` yields a graph (possibly empty).
`max_nodes` keeps the nodes nearest to a sink (`select.py`); `n_nodes_before_cap` records the
size before the cut. One parser is created lazily per thread and language.

Memory and time are bounded by `max_nodes`, not by the size of the function: only the first
`SOURCE_BYTES_PER_STATEMENT * statement_budget(max_nodes)` bytes are parsed (a function cut there
has a syntax error at the cut, so `parse_ok=False`), at most `statement_budget(max_nodes)`
statements are collected (the first ones, in source order), and reaching definitions run under
fixed budgets of definitions and def -> use pairs (`dataflow.py`).
Every budget lies far above real functions (the largest Devign function has about 3,000
statements and 4,000 pairs), so their graphs are exact; only machine-generated giants are cut.
"""
from __future__ import annotations

from . import languages
from .cfg import MAX_NESTING, Front, GraphBuilder, StatementBudget
from .dataflow import reaching_definitions
from .graph import (AST, CFG_BRANCH, CFG_LOOP, CFG_SEQ, DATA_DEP, EDGE_TYPES, MAX_STMT_CHARS, STMT_KINDS, TAINT,
                    StatementGraph, StmtNode)
from .select import restrict_edges, select_nodes
from .taint import propagate

__all__ = ["AST", "CFG_BRANCH", "CFG_LOOP", "CFG_SEQ", "DATA_DEP", "EDGE_TYPES", "MAX_NESTING", "MAX_STMT_CHARS",
           "STMT_KINDS", "TAINT", "StatementGraph", "StmtNode", "build_statement_graph"]

MIN_STATEMENTS = 8192       # statements collected per function, at least
STATEMENTS_PER_NODE = 16    # ... and this many per kept node, so a large cap still chooses among many
MAX_DEFS = 32768            # definitions tracked by reaching definitions (bitset width)
MAX_DEPS = 262144           # def -> use pairs materialized
SOURCE_BYTES_PER_STATEMENT = 128  # parse budget: the parse tree costs ~40 bytes per source byte

_FRONTS: dict[str, Front] = {}


def statement_budget(max_nodes: int | None) -> int:
    """How many statements one graph collects at most."""
    return MIN_STATEMENTS if max_nodes is None else max(MIN_STATEMENTS, STATEMENTS_PER_NODE * max_nodes)


def _front(language: str) -> Front:
    front = _FRONTS.get(language)
    if front is None:
        front = _FRONTS[language] = Front(languages.get_language(language))
    return front


def build_statement_graph(code: str | bytes, max_nodes: int | None = None, language: str = "c") -> StatementGraph:
    """Parse one function (or fragment) into a statement graph; see the module docstring."""
    if max_nodes is not None and max_nodes < 1:
        raise ValueError(f"max_nodes must be >= 1 or None, got {max_nodes}")
    budget = statement_budget(max_nodes)
    max_bytes = SOURCE_BYTES_PER_STATEMENT * budget
    if isinstance(code, str):
        src = code[:max_bytes].encode("utf-8", "replace")  # a character is at least one byte
    elif isinstance(code, (bytes, bytearray, memoryview)):
        src = bytes(code[:max_bytes])
    else:
        raise TypeError(f"code must be str or bytes, not {type(code).__name__}")
    src = src[:max_bytes]
    front = _front(language)
    root = languages.parser(language).parse(src).root_node
    b = GraphBuilder(src, front, budget)
    try:
        b.block([root], [], 0, None)
    except StatementBudget:
        pass  # the rows so far make the graph
    b.end_scope()
    return _finish(b, not root.has_error, max_nodes)


def _finish(b: GraphBuilder, parse_ok: bool, max_nodes: int | None) -> StatementGraph:
    """Data dependence, taint and the cap on top of the statement rows and control flow."""
    n = len(b.rows)
    infos, effects, catalog = b.infos, b.effects, b.front.catalog
    deps = reaching_definitions([info.defs for info in infos], [info.uses for info in infos], b.edges,
                                max_defs=MAX_DEFS, max_deps=MAX_DEPS)
    source = [e.source or not info.uses.keys().isdisjoint(catalog.source_vars) for e, info in zip(effects, infos)]
    for i, row in enumerate(b.rows):
        if row[1] == "function" and infos[i].defs:
            source[i] = True  # parameters are attacker-controlled
    sanitize = [e.sanitize_mask for e in effects]
    incoming, _, taint_edges = propagate(n, deps, source, sanitize, [e.sink_vars for e in effects],
                                         catalog.classes.values())
    edges = set(b.edges)
    edges.update((d, u, DATA_DEP) for d, u, _ in deps)
    edges.update((d, u, TAINT) for d, u in taint_edges)
    keep = select_nodes(n, edges, [i for i in range(n) if effects[i].sink_mask], max_nodes)
    nodes = []
    for i in keep:
        text, kind, depth, line = b.rows[i]
        info = infos[i]
        nodes.append(StmtNode(  # positional: this runs once per statement of the corpus
            text, kind, depth, line, list(info.apis), list(info.ops), list(info.lits), list(info.types),
            list(info.defs), list(info.uses), source[i], bool(effects[i].sink_mask), bool(sanitize[i]),
            bool(incoming[i]) or source[i]))
    return StatementGraph(nodes=nodes, edges=restrict_edges(edges, keep, n), parse_ok=parse_ok, n_nodes_before_cap=n)
