"""The statement graph: node and graph dataclasses, edge types, statement kinds, compact pickling.

Language-neutral: every front-end (`languages/`) produces nodes of these kinds and edges of these
types, so features, storage and models never depend on the source language.
"""
from __future__ import annotations

import dataclasses
import operator

EDGE_TYPES = ("ast", "cfg_seq", "cfg_branch", "cfg_loop", "data_dep", "taint")
AST, CFG_SEQ, CFG_BRANCH, CFG_LOOP, DATA_DEP, TAINT = range(len(EDGE_TYPES))

STMT_KINDS = (
    "function", "declaration", "assignment", "call", "expression", "return", "if", "while", "do",
    "for", "switch", "case", "default", "break", "continue", "goto", "label", "nested",
)
MAX_STMT_CHARS = 1024  # node text is cut here: token ids are truncated far earlier anyway


@dataclasses.dataclass(slots=True)
class StmtNode:
    """One statement or condition.

    text: its source (a condition: `if (c)`, a for header, a function header), whitespace
    collapsed, cut at MAX_STMT_CHARS. kind: one of STMT_KINDS. depth: nesting level (function
    header 0, its body 1, ...). line: 1-based line where it starts. apis: called functions
    (`.name` for calls through a struct member). operators: operator tokens ("u-", "u*", "u&"...
    for unary forms) plus "cast", "sizeof", "[]", "?:". literal_kinds: string, char, int, float,
    null, bool. types: type names it declares or casts to, plus "ptr" / "array" for declarators.
    defs / uses: variables written / read (a read-modify-write appears in both).
    is_source: reads external input (a source call, `argv`, or a header with parameters);
    is_sink / is_sanitizer: calls one; is_tainted: reads tainted data (or is a source).
    """

    text: str
    kind: str
    depth: int
    line: int
    apis: list[str]
    operators: list[str]
    literal_kinds: list[str]
    types: list[str]
    defs: list[str]
    uses: list[str]
    is_source: bool = False
    is_sink: bool = False
    is_sanitizer: bool = False
    is_tainted: bool = False


@dataclasses.dataclass(slots=True)
class StatementGraph:
    nodes: list[StmtNode]
    edges: list[tuple[int, int, int]]  # (src, dst, index into EDGE_TYPES), sorted
    parse_ok: bool
    n_nodes_before_cap: int

    def edges_of(self, edge_type: str) -> list[tuple[int, int]]:
        """(src, dst) pairs of one edge type, e.g. `graph.edges_of("taint")`."""
        t = EDGE_TYPES.index(edge_type)
        return [(s, d) for s, d, k in self.edges if k == t]

    def __reduce__(self):
        # Column-wise pickling: graphs cross process boundaries in bulk (parallel builds), and
        # per-node object state would cost more than building the graph.
        cols = list(zip(*map(_NODE_FIELDS, self.nodes)))
        return _rebuild_graph, (cols, self.edges, self.parse_ok, self.n_nodes_before_cap)


_NODE_FIELDS = operator.attrgetter(*(f.name for f in dataclasses.fields(StmtNode)))


def _rebuild_graph(cols: list, edges: list, parse_ok: bool, n_before: int) -> StatementGraph:
    return StatementGraph([StmtNode(*row) for row in zip(*cols)], edges, parse_ok, n_before)
