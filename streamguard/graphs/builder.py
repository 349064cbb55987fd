"""tree-sitter C -> statement graph: AST nesting, control flow, data dependence and taint flow.

`build_statement_graph(code, max_nodes=None) -> StatementGraph`

Nodes are statements and conditions, in source order: the function header (its parameters are
definitions), declarations, expression statements, `return`/`break`/`continue`/`goto`, labels,
and one node per condition of `if` / `while` / `do ... while` / `switch`, per `for` header and per
`case`/`default` label. Each node records its statement kind, the APIs it calls, its operators,
literal kinds, type names, the variables it defines and uses, and its taint roles.

Edges are `(src, dst, type)` with `type` an index into `EDGE_TYPES`:

- `ast`        enclosing control statement (or function header) -> nested statement;
- `cfg_seq`    fall-through and jumps (`goto`, `break`, a `continue` of a do-while);
- `cfg_branch` condition -> first statement of each branch, and its false exit;
- `cfg_loop`   end of a loop body (or `continue`) -> loop condition, do-while condition -> body;
- `data_dep`   reaching definitions over the control flow: definition -> use of the same variable;
- `taint`      the `data_dep` edges on a path that carries taint from a source into a sensitive
               argument of a sink of the same class (see `taint.py` for the catalogs, the
               classes and the sanitizers that cut a flow).

Variables written through `a[i] = ..`, `*p = ..`, `s->f = ..`, `&x` arguments or the output
argument of a copy (`strcpy(dst, ..)`) are read-modify-write: the statement both uses and
redefines the base variable, so earlier taint survives a partial write while chains stay linear.
An `else if` chain is kept flat: each inner `if` is nested under the previous condition but at
the same depth.

Code tree-sitter cannot parse fully still yields a graph from what was recovered, with
`parse_ok=False`: statements inside ERROR regions are used as they are, chained sequentially
where their nesting is lost (a `return` there does not end the flow), and `if`/`while`/`for`/
`switch` keywords left flat in an ERROR region still become condition nodes. Input is never
rejected: any `str` or `bytes` yields a graph (possibly empty). Statement nesting deeper than
`MAX_NESTING` collapses into one `nested` node, so recursion stays bounded.

`max_nodes` keeps the nodes nearest to a sink (BFS distance over the flow edges, i.e. all but
`ast`, undirected; ties by source order; without sinks the first nodes in source order),
re-indexing the edges among them;
`n_nodes_before_cap` records the size before the cut. One parser is created lazily per thread.
"""
from __future__ import annotations

import dataclasses
import operator
import threading
from collections import deque

import tree_sitter_c
from tree_sitter import Language, Node, Parser

from . import taint
from .dataflow import forward_fixpoint

EDGE_TYPES = ("ast", "cfg_seq", "cfg_branch", "cfg_loop", "data_dep", "taint")
AST, CFG_SEQ, CFG_BRANCH, CFG_LOOP, DATA_DEP, TAINT = range(len(EDGE_TYPES))

STMT_KINDS = (
    "function", "declaration", "assignment", "call", "expression", "return", "if", "while", "do",
    "for", "switch", "case", "default", "break", "continue", "goto", "label", "nested",
)
MAX_STMT_CHARS = 1024  # node text is cut here: token ids are truncated far earlier anyway
MAX_NESTING = 64       # deeper statement nesting collapses into one node (bounded recursion)
_MAX_CHAIN = 64        # bound on walks down declarator / lvalue chains


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


_local = threading.local()


def _parser() -> Parser:
    p = getattr(_local, "parser", None)
    if p is None:
        p = _local.parser = Parser(Language(tree_sitter_c.language()))
    return p


def build_statement_graph(code: str | bytes, max_nodes: int | None = None) -> StatementGraph:
    """Parse one C function (or fragment) into a statement graph; see the module docstring."""
    if max_nodes is not None and max_nodes < 1:
        raise ValueError(f"max_nodes must be >= 1 or None, got {max_nodes}")
    if isinstance(code, str):
        src = code.encode("utf-8", "replace")
    elif isinstance(code, (bytes, bytearray, memoryview)):
        src = bytes(code)
    else:
        raise TypeError(f"code must be str or bytes, not {type(code).__name__}")
    root = _parser().parse(src).root_node
    b = _Builder(src)
    b.block([root], [], 0, None)
    b.end_scope()
    return b.finish(not root.has_error, max_nodes)


# --- per-statement feature scan -------------------------------------------------------------

# Expressions whose operator token sits in an `operator` field; unary `-x`, `*p`, `&x` are told
# apart from the binary operators by a "u" prefix.
_OPERATOR_PARENTS = frozenset({
    "binary_expression", "unary_expression", "update_expression", "assignment_expression",
    "pointer_expression", "field_expression",
})
_UNARY_PARENTS = frozenset({"unary_expression", "pointer_expression"})
_AMBIGUOUS_UNARY = frozenset({"+", "-", "*", "&"})
_NAMED_OPERATORS = {
    "cast_expression": "cast", "sizeof_expression": "sizeof", "subscript_expression": "[]",
    "conditional_expression": "?:", "offsetof_expression": "offsetof", "alignof_expression": "alignof",
}
_LITERALS = {
    "string_literal": "string", "concatenated_string": "string", "char_literal": "char",
    "null": "null", "true": "bool", "false": "bool", "number_literal": "int",
}
_TYPES = frozenset({"primitive_type", "type_identifier", "sized_type_specifier"})
_SKIP = frozenset({
    "field_identifier", "statement_identifier", "comment", "string_content", "escape_sequence",
    "character", "preproc_arg", "preproc_directive", "type_qualifier", "storage_class_specifier",
})
_DECLARATORS = frozenset({
    "pointer_declarator", "array_declarator", "function_declarator", "parenthesized_declarator",
    "attributed_declarator",
})


class _Info:
    """What one statement mentions; lists keep first-seen order, dicts double as ordered sets."""

    __slots__ = ("apis", "ops", "lits", "types", "defs", "uses", "calls")

    def __init__(self) -> None:
        self.apis: dict[str, None] = {}
        self.ops: dict[str, None] = {}
        self.lits: dict[str, None] = {}
        self.types: dict[str, None] = {}
        self.defs: dict[str, None] = {}
        self.uses: dict[str, None] = {}
        self.calls: list[tuple[str, list[tuple[str, str | None, tuple[str, ...]]]]] = []  # see taint.py


def _name(node: Node) -> str:
    return node.text.decode("utf-8", "replace")


def _number_kind(node: Node) -> str:
    t = node.text.lower()
    if t.startswith(b"0x"):
        return "float" if b"p" in t else "int"
    return "float" if (b"." in t or b"e" in t) else "int"


def _base_var(node: Node) -> str | None:
    """The variable an lvalue-like expression reads or writes: a, a[i], a->f, *a, (T)a, *(a+i)."""
    for _ in range(_MAX_CHAIN):
        t = node.type
        if t == "identifier":
            return _name(node)
        ch = node.children
        if not ch:
            return None
        if t in ("subscript_expression", "field_expression", "binary_expression"):
            node = ch[0]
        elif t in ("pointer_expression", "cast_expression"):
            node = ch[-1]
        elif t in ("parenthesized_expression", "update_expression"):
            named = [c for c in ch if c.is_named]
            if not named:
                return None
            node = named[0]
        else:
            return None
    return None


def _declare(node: Node, info: _Info, stack: list | None) -> None:
    """Record the variable a declarator introduces; array sizes go back on the scan stack."""
    for _ in range(_MAX_CHAIN):
        t = node.type
        if t == "identifier":
            info.defs[_name(node)] = None
            return
        ch = node.children
        if not ch:
            return
        if t == "pointer_declarator":
            info.types["ptr"] = None
            node = ch[-1]
        elif t == "array_declarator":
            info.types["array"] = None
            if stack is not None:
                stack.extend(c for c in ch[1:] if c.is_named)
            node = ch[0]
        elif t in ("function_declarator", "attributed_declarator", "init_declarator"):
            node = ch[0]
        elif t == "parenthesized_declarator":
            named = [c for c in ch if c.is_named]
            if not named:
                return
            node = named[0]
        else:
            if stack is not None and node.is_named:
                stack.append(node)
            return


def _argument(node: Node) -> tuple[str, str | None, tuple[str, ...]]:
    """(kind, base variable or literal text, variables read) of one call argument; see taint.py."""
    t = node.type
    if t in ("string_literal", "concatenated_string"):
        return ("lit", node.text[:256].decode("utf-8", "replace"), ())
    if t == "pointer_expression" and node.children and node.children[0].type == "&":
        return ("addr", _base_var(node.children[-1]), _names(node))
    return ("expr", _base_var(node), _names(node))


def _names(node: Node) -> tuple[str, ...]:
    """Variables an expression reads (callee names of nested calls excluded)."""
    names: dict[str, None] = {}
    stack = [node]
    while stack:
        x = stack.pop()
        t = x.type
        if t == "identifier":
            names[_name(x)] = None
        elif t == "call_expression":
            stack.extend(c for c in x.named_children if c.type != "identifier" or c.start_byte != x.start_byte)
        elif t not in _LITERALS:
            stack.extend(x.named_children)
    return tuple(names)


def _scan(roots: list[Node], info: _Info) -> None:
    """One iterative walk over the named nodes of a statement's subtrees (expressions nest deeply)."""
    stack: list[Node] = [r for r in reversed(roots) if r.is_named]
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        t = node.type
        if t == "identifier":
            info.uses[_name(node)] = None
            continue
        lit = _LITERALS.get(t)
        if lit is not None:
            info.lits[_number_kind(node) if t == "number_literal" else lit] = None
            continue
        if t in _TYPES:
            info.types[_name(node)] = None
            continue
        if t in _SKIP:
            continue
        if t == "call_expression":
            _scan_call(node, info, stack)
            continue
        if t == "assignment_expression":
            left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
            op = node.child_by_field_name("operator")
            if left is not None and op is not None:
                info.ops[op.type] = None
                if left.type == "identifier":
                    v = _name(left)
                    info.defs[v] = None
                    if op.type != "=":
                        info.uses[v] = None
                else:
                    v = _base_var(left)
                    if v is not None:
                        info.defs[v] = None
                    push(left)
                if right is not None:
                    push(right)
                continue
        elif t == "update_expression":
            arg = node.child_by_field_name("argument")
            if arg is not None:
                v = _base_var(arg)
                if v is not None:
                    info.defs[v] = None
        elif t == "init_declarator":
            ch = node.named_children
            if ch:
                _declare(ch[0], info, stack)
                info.ops["="] = None
                stack.extend(reversed(ch[1:]))
            continue
        elif t in ("declaration", "parameter_declaration"):
            for c in node.named_children:
                if c.type == "identifier" or c.type in _DECLARATORS:
                    _declare(c, info, stack)
                else:
                    push(c)
            continue
        elif t == "function_declarator":
            ch = node.named_children
            # The declared function's own name is neither a use nor a variable.
            stack.extend(reversed(ch[1:] if ch and ch[0].type == "identifier" else ch))
            continue
        if t in _OPERATOR_PARENTS:
            op = node.child_by_field_name("operator")
            if op is not None:
                o = op.type
                info.ops[("u" + o) if (t in _UNARY_PARENTS and o in _AMBIGUOUS_UNARY) else o] = None
        else:
            o = _NAMED_OPERATORS.get(t)
            if o is not None:
                info.ops[o] = None
        stack.extend(reversed(node.named_children))


def _scan_call(node: Node, info: _Info, stack: list[Node]) -> None:
    fn = node.child_by_field_name("function")
    args = node.child_by_field_name("arguments")
    name = None
    if fn is not None:
        if fn.type == "identifier":
            name = _name(fn)
        else:
            field = fn.child_by_field_name("field") if fn.type == "field_expression" else None
            if field is not None:
                name = "." + _name(field)  # method-like call through a struct: never matches a catalog
            stack.append(fn)
    if name is not None:
        info.apis[name] = None
    if args is not None:
        arg_nodes = [a for a in args.named_children if a.type != "comment"]
        if name is not None and taint.is_relevant(name):
            info.calls.append((name, [_argument(a) for a in arg_nodes]))
        stack.extend(reversed(arg_nodes))


# --- statement structure and control flow ---------------------------------------------------

_SPLICE = frozenset({
    "translation_unit", "ERROR", "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif",
    "preproc_elifdef", "linkage_specification", "declaration_list",
})
_SPLICE_SKIP_FIELDS = frozenset({"name", "condition"})
_FLAT_CONDITIONS = frozenset({"if", "while", "switch", "for"})
_FLAT_EXPRESSIONS = {
    "call_expression": "call", "assignment_expression": "assignment", "update_expression": "assignment",
    "init_declarator": "declaration", "binary_expression": "expression", "unary_expression": "expression",
    "pointer_expression": "expression", "field_expression": "expression", "subscript_expression": "expression",
    "cast_expression": "expression", "conditional_expression": "expression", "comma_expression": "expression",
    "parenthesized_expression": "expression", "sizeof_expression": "expression",
    "compound_literal_expression": "expression",
}
_EXPRESSION_KINDS = {
    "assignment_expression": "assignment", "update_expression": "assignment", "call_expression": "call",
}

Preds = list[tuple[int, int]]  # pending control-flow predecessors: (node, edge type)


class _Ctx:
    """An enclosing loop or switch: where `break` and `continue` go."""

    __slots__ = ("is_loop", "cont", "breaks", "pending_cont")

    def __init__(self, is_loop: bool, cont: int | None) -> None:
        self.is_loop, self.cont = is_loop, cont
        self.breaks: Preds = []
        self.pending_cont: list[int] = []


class _Builder:
    def __init__(self, src: bytes) -> None:
        self.src = src
        self.rows: list[tuple[str, str, int, int]] = []  # (text, kind, depth, line)
        self.infos: list[_Info] = []
        self.effects: list[taint.Effects] = []
        self.edges: list[tuple[int, int, int]] = []
        self.ctx: list[_Ctx] = []
        self.labels: dict[str, int] = {}
        self.gotos: list[tuple[int, str]] = []
        self.nesting = 0

    # -- nodes and edges --

    def node(self, kind: str, start: int, end: int, roots: list[Node], depth: int, parent, line_of: Node,
             preds: Preds) -> int:
        info = _Info()
        _scan(roots, info)
        eff = taint.call_effects(info.calls)
        for v in eff.writes:  # out-arguments: read-modify-write of the base variable
            info.defs[v] = None
            info.uses[v] = None
        if eff.in_place and not info.defs:  # `sanitize(buf);` / `if (!validate(x))` clean their arguments
            for v in eff.in_place:
                info.defs[v] = None
        raw = self.src[start:min(end, start + 4 * MAX_STMT_CHARS)].decode("utf-8", "replace")
        text = " ".join(raw.split())[:MAX_STMT_CHARS]
        idx = len(self.rows)
        self.rows.append((text, kind, depth, line_of.start_point[0] + 1))
        self.infos.append(info)
        self.effects.append(eff)
        if type(parent) is list:  # parent not created yet (do-while): collected, linked later
            parent.append(idx)
        elif parent is not None:
            self.edges.append((parent, idx, AST))
        self.link(preds, idx)
        return idx

    def link(self, preds: Preds, dst: int) -> None:
        self.edges.extend((p, dst, t) for p, t in preds)

    def end_scope(self) -> None:
        """Resolve the gotos of one function (or of the top level) to their labels."""
        for src, name in self.gotos:
            dst = self.labels.get(name)
            if dst is not None:
                self.edges.append((src, dst, CFG_SEQ))
        self.labels, self.gotos = {}, []

    # -- sequences --

    def stmt(self, node: Node | None, preds: Preds, depth: int, parent) -> Preds:
        if node is None:
            return preds
        h = _HANDLERS.get(node.type)
        if h is None:
            return self.block([node], preds, depth, parent)
        if self.nesting >= MAX_NESTING and node.type != "function_definition":
            return self.opaque(node, preds, depth, parent)
        self.nesting += 1
        try:
            return h(self, node, preds, depth, parent)
        finally:
            self.nesting -= 1

    def block(self, children: list[Node], preds: Preds, depth: int, parent) -> Preds:
        """A statement list; ERROR / preprocessor regions are spliced in, flat keywords recovered."""
        items = list(reversed(children))
        flat = False  # inside an ERROR region the nesting is lost: a jump must not end the flow
        while items:
            ch = items.pop()
            t = ch.type
            if t in _HANDLERS:
                first = len(self.rows)
                preds = self.stmt(ch, preds, depth, parent)
                if flat and not preds and len(self.rows) > first:
                    preds = [(len(self.rows) - 1, CFG_SEQ)]
            elif t in _SPLICE:
                flat |= t == "ERROR"
                items.extend(reversed(self.splice(ch)))
            elif t in _FLAT_CONDITIONS and not ch.is_named:
                preds = self.flat_condition(ch, items, preds, depth, parent)
            elif t == "function_declarator":  # a header whose definition did not parse
                self.end_scope()
                fn = self.node("function", ch.start_byte, ch.end_byte, [ch], depth, parent, ch, [])
                preds, parent, depth = [(fn, CFG_SEQ)], fn, depth + 1
            elif t in _FLAT_EXPRESSIONS:
                n = self.node(_FLAT_EXPRESSIONS[t], ch.start_byte, ch.end_byte, [ch], depth, parent, ch, preds)
                preds = [(n, CFG_SEQ)]
        return preds

    def splice(self, node: Node) -> list[Node]:
        if node.type in ("translation_unit", "ERROR"):
            return node.children
        return [c for i, c in enumerate(node.children)
                if c.is_named and node.field_name_for_child(i) not in _SPLICE_SKIP_FIELDS]

    def flat_condition(self, kw: Node, items: list[Node], preds: Preds, depth: int, parent) -> Preds:
        """`if (c)` / `while (c)` / `for (...)` left as loose tokens inside an ERROR node."""
        roots: list[Node] = []
        end = kw.end_byte
        if kw.type == "for":
            while items and len(roots) < 16:
                c = items.pop()
                end = c.end_byte
                if c.type == ")":
                    break
                if c.is_named:
                    roots.append(c)
        elif items and items[-1].type == "parenthesized_expression":
            c = items.pop()
            roots.append(c)
            end = c.end_byte
        if not roots:
            return preds
        n = self.node(kw.type, kw.start_byte, end, roots, depth, parent, kw, preds)
        return [(n, CFG_SEQ)]

    def opaque(self, node: Node, preds: Preds, depth: int, parent) -> Preds:
        n = self.node("nested", node.start_byte, node.end_byte, [node], depth, parent, node, preds)
        return [(n, CFG_SEQ)]

    # -- statements --

    def simple(self, kind: str, node: Node, roots: list[Node], preds: Preds, depth: int, parent) -> int:
        return self.node(kind, node.start_byte, node.end_byte, roots, depth, parent, node, preds)

    def expression(self, node, preds, depth, parent):
        named = [c for c in node.children if c.is_named and c.type != "comment"]
        if not named:  # empty statement `;`
            return preds
        kind = _EXPRESSION_KINDS.get(named[0].type, "expression")
        return [(self.simple(kind, node, named, preds, depth, parent), CFG_SEQ)]

    def declaration(self, node, preds, depth, parent):
        return [(self.simple("declaration", node, [node], preds, depth, parent), CFG_SEQ)]

    def return_(self, node, preds, depth, parent):
        self.simple("return", node, node.children, preds, depth, parent)
        return []

    def break_(self, node, preds, depth, parent):
        n = self.simple("break", node, [], preds, depth, parent)
        if not self.ctx:
            return [(n, CFG_SEQ)]
        self.ctx[-1].breaks.append((n, CFG_SEQ))
        return []

    def continue_(self, node, preds, depth, parent):
        n = self.simple("continue", node, [], preds, depth, parent)
        loop = next((c for c in reversed(self.ctx) if c.is_loop), None)
        if loop is None:
            return [(n, CFG_SEQ)]
        if loop.cont is None:
            loop.pending_cont.append(n)
        else:
            self.edges.append((n, loop.cont, CFG_LOOP))
        return []

    def goto(self, node, preds, depth, parent):
        n = self.simple("goto", node, [], preds, depth, parent)
        label = node.child_by_field_name("label")
        if label is not None:
            self.gotos.append((n, _name(label)))
        return []

    def label(self, node, preds, depth, parent):
        ch = node.children
        colon = next((i for i, c in enumerate(ch) if c.type == ":"), 0)
        n = self.node("label", node.start_byte, ch[colon].end_byte if ch else node.end_byte, [], depth, parent,
                      node, preds)
        label = node.child_by_field_name("label")
        if label is not None:
            self.labels[_name(label)] = n
        return self.block(ch[colon + 1:], [(n, CFG_SEQ)], depth, parent)

    def attributed(self, node, preds, depth, parent):
        return self.block([c for c in node.children if c.type != "attribute_declaration"], preds, depth, parent)

    def compound(self, node, preds, depth, parent):
        return self.block(node.children, preds, depth, parent)

    def function(self, node, preds, depth, parent):
        body = node.child_by_field_name("body")
        header = [c for c in node.children if c != body]
        end = body.start_byte if body is not None else node.end_byte
        outer = self.labels, self.gotos, self.ctx  # a nested definition must not disturb its host
        self.labels, self.gotos, self.ctx = {}, [], []
        fn = self.node("function", node.start_byte, end, header, depth, parent, node, [])
        if body is not None:
            self.stmt(body, [(fn, CFG_SEQ)], depth + 1, fn)
        self.end_scope()
        self.labels, self.gotos, self.ctx = outer
        return preds  # a function is its own control-flow graph

    def condition_node(self, kind: str, node: Node, cond: Node | None, depth: int, parent, preds: Preds) -> int:
        end = cond.end_byte if cond is not None else node.start_byte + len(kind)
        return self.node(kind, node.start_byte, end, [cond] if cond is not None else [], depth, parent, node, preds)

    def if_(self, node, preds, depth, parent):
        outs: Preds = []
        while True:  # else-if chains are walked iteratively, not recursively
            c = self.condition_node("if", node, node.child_by_field_name("condition"), depth, parent, preds)
            outs += self.stmt(node.child_by_field_name("consequence"), [(c, CFG_BRANCH)], depth + 1, c)
            alt = node.child_by_field_name("alternative")
            if alt is not None and alt.type == "else_clause":
                named = [x for x in alt.children if x.is_named and x.type != "comment"]
                alt = named[-1] if named else None
            if alt is None:
                outs.append((c, CFG_BRANCH))
                break
            if alt.type != "if_statement":
                outs += self.stmt(alt, [(c, CFG_BRANCH)], depth + 1, c)
                break
            node, preds, parent = alt, [(c, CFG_BRANCH)], c
        return outs

    def loop(self, header: int, body: Node | None, depth: int) -> Preds:
        self.ctx.append(_Ctx(True, header))
        out = self.stmt(body, [(header, CFG_BRANCH)], depth + 1, header)
        ctx = self.ctx.pop()
        self.edges.extend((p, header, CFG_LOOP) for p, _ in out)
        return [(header, CFG_BRANCH)] + ctx.breaks

    def while_(self, node, preds, depth, parent):
        c = self.condition_node("while", node, node.child_by_field_name("condition"), depth, parent, preds)
        return self.loop(c, node.child_by_field_name("body"), depth)

    def for_(self, node, preds, depth, parent):
        body = node.child_by_field_name("body")
        header = [c for c in node.children if c != body and c.is_named]
        end = body.start_byte if body is not None else node.end_byte
        h = self.node("for", node.start_byte, end, header, depth, parent, node, preds)
        return self.loop(h, body, depth)

    def do(self, node, preds, depth, parent):
        ctx = _Ctx(True, None)
        self.ctx.append(ctx)
        first = len(self.rows)
        children: list[int] = []
        out = self.stmt(node.child_by_field_name("body"), preds, depth + 1, children)
        self.ctx.pop()
        cond = node.child_by_field_name("condition")
        kw = next((c for c in node.children if c.type == "while"), None)
        start = kw.start_byte if kw is not None else (cond.start_byte if cond is not None else node.end_byte)
        end = cond.end_byte if cond is not None else node.end_byte
        c = self.node("do", start, end, [cond] if cond is not None else [], depth, parent, kw or node,
                      out + [(n, CFG_SEQ) for n in ctx.pending_cont])
        self.edges.extend((c, ch, AST) for ch in children)
        self.edges.append((c, first if first < c else c, CFG_LOOP))
        return [(c, CFG_BRANCH)] + ctx.breaks

    def switch(self, node, preds, depth, parent):
        c = self.condition_node("switch", node, node.child_by_field_name("condition"), depth, parent, preds)
        body = node.child_by_field_name("body")
        items = body.children if body is not None and body.type == "compound_statement" else [body] if body else []
        ctx = _Ctx(False, None)
        self.ctx.append(ctx)
        cur: Preds = []
        has_default = False
        for ch in items:
            if ch.type != "case_statement":
                cur = self.stmt(ch, cur, depth + 1, c)
                continue
            is_default = bool(ch.children) and ch.children[0].type == "default"
            has_default |= is_default
            case, stmts = self.case_label(ch, depth + 1, c, cur + [(c, CFG_BRANCH)], is_default)
            self.nesting += 1
            try:
                cur = self.block(stmts, [(case, CFG_SEQ)], depth + 2, case)
            finally:
                self.nesting -= 1
        self.ctx.pop()
        return cur + ctx.breaks + ([] if has_default else [(c, CFG_BRANCH)])

    def case_label(self, node: Node, depth: int, parent, preds: Preds, is_default: bool) -> tuple[int, list[Node]]:
        ch = node.children
        colon = next((i for i, x in enumerate(ch) if x.type == ":"), 0)
        value = node.child_by_field_name("value")
        end = ch[colon].end_byte if ch else node.end_byte
        n = self.node("default" if is_default else "case", node.start_byte, end, [value] if value else [], depth,
                      parent, node, preds)
        return n, ch[colon + 1:]

    def orphan_case(self, node, preds, depth, parent):
        """A `case` outside a parsed switch (error recovery): a label followed by its statements."""
        is_default = bool(node.children) and node.children[0].type == "default"
        case, stmts = self.case_label(node, depth, parent, preds, is_default)
        return self.block(stmts, [(case, CFG_SEQ)], depth, parent)

    # -- data flow, taint, cap --

    def finish(self, parse_ok: bool, max_nodes: int | None) -> StatementGraph:
        n = len(self.rows)
        deps = _reaching_definitions(n, self.infos, self.edges)
        effects = self.effects
        source = [e.source or not info.uses.keys().isdisjoint(taint.SOURCE_VARS)
                  for e, info in zip(effects, self.infos)]
        for i, row in enumerate(self.rows):
            if row[1] == "function" and self.infos[i].defs:
                source[i] = True  # parameters are attacker-controlled
        sanitize = [e.sanitize_mask for e in effects]
        incoming, _, taint_edges = taint.propagate(n, deps, source, sanitize, [e.sink_vars for e in effects])
        edges = set(self.edges)
        edges.update((d, u, DATA_DEP) for d, u, _ in deps)
        edges.update((d, u, TAINT) for d, u in taint_edges)
        keep = _select_nodes(n, edges, [i for i in range(n) if effects[i].sink_mask], max_nodes)
        nodes = []
        for i in keep:
            text, kind, depth, line = self.rows[i]
            info = self.infos[i]
            nodes.append(StmtNode(  # positional: this runs once per statement of the corpus
                text, kind, depth, line, list(info.apis), list(info.ops), list(info.lits), list(info.types),
                list(info.defs), list(info.uses), source[i], bool(effects[i].sink_mask), bool(sanitize[i]),
                bool(incoming[i]) or source[i]))
        if len(keep) == n:
            out_edges = sorted(edges)
        else:
            remap = {old: new for new, old in enumerate(keep)}
            out_edges = sorted((remap[s], remap[d], t) for s, d, t in edges if s in remap and d in remap)
        return StatementGraph(nodes=nodes, edges=out_edges, parse_ok=parse_ok, n_nodes_before_cap=n)


# Statement type -> handler. Kept outside the instance so a builder holds no reference cycle and is
# freed as soon as its graph is done (batch builds run with the cyclic GC paused).
_HANDLERS = {
    "function_definition": _Builder.function, "compound_statement": _Builder.compound,
    "if_statement": _Builder.if_, "while_statement": _Builder.while_, "for_statement": _Builder.for_,
    "do_statement": _Builder.do, "switch_statement": _Builder.switch, "labeled_statement": _Builder.label,
    "case_statement": _Builder.orphan_case, "expression_statement": _Builder.expression,
    "declaration": _Builder.declaration, "type_definition": _Builder.declaration,
    "return_statement": _Builder.return_, "break_statement": _Builder.break_,
    "continue_statement": _Builder.continue_, "goto_statement": _Builder.goto,
    "attributed_statement": _Builder.attributed,
}

def _reaching_definitions(n: int, infos: list[_Info], edges: list[tuple[int, int, int]]) -> list[tuple[int, int, str]]:
    """Classic reaching definitions over the CFG with int bitsets -> (def node, use node, variable)."""
    def_node: list[int] = []
    var_bits: dict[str, int] = {}
    gen = [0] * n
    for i, info in enumerate(infos):
        g = 0
        for v in info.defs:
            bit = 1 << len(def_node)
            def_node.append(i)
            g |= bit
            var_bits[v] = var_bits.get(v, 0) | bit
        gen[i] = g
    if not def_node:
        return []
    keep = [~0] * n
    for i, info in enumerate(infos):
        k = 0
        for v in info.defs:
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
    for i, info in enumerate(infos):
        x = reach_in[i]
        if not x:
            continue
        for v in info.uses:
            m = x & var_bits.get(v, 0)
            while m:  # each set bit is one reaching definition (a node defines a variable once)
                low = m & -m
                deps.append((def_node[low.bit_length() - 1], i, v))
                m ^= low
    return deps


def _select_nodes(n: int, edges, sinks: list[int], max_nodes: int | None) -> list[int]:
    """Indices (ascending) of the nodes kept under `max_nodes`: nearest to any sink first.

    Distance counts control-flow, data and taint edges in either direction, not AST edges: the
    function header is the AST parent of every top-level statement and would put them all two
    steps from any sink.
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
