"""Statement structure and control flow: tree-sitter tree -> statement nodes, AST and CFG edges.

`GraphBuilder(src, front)` walks one parsed tree through a language's `Syntax` tables (`Front`
compiles them once per language) and collects one row per statement or condition with its
features (`statements.py`) and taint roles (`taint.py`), plus `ast` / `cfg_*` edges:

- `ast`        enclosing control statement (or function header) -> nested statement;
- `cfg_seq`    fall-through and jumps (`goto`, `break`, a `continue` of a do-while);
- `cfg_branch` condition -> first statement of each branch, and its false exit;
- `cfg_loop`   end of a loop body (or `continue`) -> loop condition, do-while condition -> body.

An `else if` chain is kept flat: each inner `if` is nested under the previous condition but at
the same depth (so is a Python `elif` chain). A `with` header and a `catch` clause header are nodes
with their body nested under them; a `try` body flows into its `else` and `finally` clauses, and
each `catch` is entered from before and after the body (an exception may leave it anywhere). Statements inside ERROR regions are used as they are, chained sequentially where
their nesting is lost (a `return` there does not end the flow), and condition keywords left flat
in an ERROR region still become condition nodes. Statement nesting deeper than `MAX_NESTING`
collapses into one `nested` node, so recursion stays bounded. With `max_statements` set, the walk
stops at that many rows (`node` raises `StatementBudget`): the caller keeps what was collected, so
the work and memory of one graph do not grow with the size of the function.
"""
from __future__ import annotations

from tree_sitter import Node

from .graph import AST, CFG_BRANCH, CFG_LOOP, CFG_SEQ, MAX_STMT_CHARS
from .languages.spec import LanguageSpec
from .statements import StmtInfo, make_scanner, text_of
from .taint import Effects

MAX_NESTING = 64  # deeper statement nesting collapses into one node (bounded recursion)
ERROR = "ERROR"   # tree-sitter's error-recovery node, in every grammar

Preds = list[tuple[int, int]]  # pending control-flow predecessors: (node, edge type)


class StatementBudget(Exception):
    """The builder holds `max_statements` rows: the walk ends here, the rows so far are kept."""


class Front:
    """A language's tables compiled for the builder: handlers by node type, sets, the scanner."""

    def __init__(self, spec: LanguageSpec) -> None:
        sx = spec.syntax
        self.syntax, self.catalog = sx, spec.catalog
        self.scan = make_scanner(sx, spec.catalog)
        self.roles = dict(sx.statements)
        # Unbound handlers: a builder holds no reference cycle and is freed as soon as its graph
        # is done (batch builds run with the cyclic GC paused).
        self.handlers = {t: _ROLE_HANDLERS[r] for t, r in sx.statements.items()}
        self.functions = frozenset(t for t, r in sx.statements.items() if r == "function")
        self.splice = sx.splice | {ERROR}
        self.splice_whole = sx.splice_whole | {ERROR}


class _Ctx:
    """An enclosing loop or switch: where `break` and `continue` go."""

    __slots__ = ("is_loop", "cont", "breaks", "pending_cont")

    def __init__(self, is_loop: bool, cont: int | None) -> None:
        self.is_loop, self.cont = is_loop, cont
        self.breaks: Preds = []
        self.pending_cont: list[int] = []


class GraphBuilder:
    def __init__(self, src: bytes, front: Front, max_statements: int | None = None) -> None:
        self.src = src
        self.max_statements = max_statements
        self.front, self.sx = front, front.syntax
        self.rows: list[tuple[str, str, int, int]] = []  # (text, kind, depth, line)
        self.infos: list[StmtInfo] = []
        self.effects: list[Effects] = []
        self.edges: list[tuple[int, int, int]] = []
        self.ctx: list[_Ctx] = []
        self.labels: dict[str, int] = {}
        self.gotos: list[tuple[int, str]] = []
        self.nesting = 0

    # -- nodes and edges --

    def node(self, kind: str, start: int, end: int, roots: list[Node], depth: int, parent, line_of: Node,
             preds: Preds) -> int:
        if self.max_statements is not None and len(self.rows) >= self.max_statements:
            raise StatementBudget
        info = self.front.scan(roots)
        eff = self.front.catalog.call_effects(info.calls)
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
        self.edges.extend((p, idx, t) for p, t in preds)
        return idx

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
        h = self.front.handlers.get(node.type)
        if h is None:
            return self.block([node], preds, depth, parent)
        if self.nesting >= MAX_NESTING and node.type not in self.front.functions:
            return self.opaque(node, preds, depth, parent)
        self.nesting += 1
        try:
            return h(self, node, preds, depth, parent)
        finally:
            self.nesting -= 1

    def block(self, children: list[Node], preds: Preds, depth: int, parent) -> Preds:
        """A statement list; ERROR / preprocessor regions are spliced in, flat keywords recovered."""
        front, sx = self.front, self.sx
        handlers, splice, flat_conditions = front.handlers, front.splice, sx.flat_conditions
        orphan_headers, flat_expressions = sx.orphan_headers, sx.flat_expressions
        items = list(reversed(children))
        flat = False  # inside an ERROR region the nesting is lost: a jump must not end the flow
        while items:
            ch = items.pop()
            t = ch.type
            if t in handlers:
                first = len(self.rows)
                preds = self.stmt(ch, preds, depth, parent)
                if flat and not preds and len(self.rows) > first:
                    preds = [(len(self.rows) - 1, CFG_SEQ)]
            elif t in splice:
                flat |= t == ERROR
                items.extend(reversed(self.splice(ch)))
            elif t in flat_conditions and not ch.is_named:
                preds = self.flat_condition(ch, items, preds, depth, parent)
            elif t in orphan_headers:  # a header whose definition did not parse
                self.end_scope()
                fn = self.node("function", ch.start_byte, ch.end_byte, [ch], depth, parent, ch, [])
                preds, parent, depth = [(fn, CFG_SEQ)], fn, depth + 1
            elif t in flat_expressions:
                n = self.node(flat_expressions[t], ch.start_byte, ch.end_byte, [ch], depth, parent, ch, preds)
                preds = [(n, CFG_SEQ)]
        return preds

    def splice(self, node: Node) -> list[Node]:
        if node.type in self.front.splice_whole:
            return node.children
        skip = self.sx.splice_skip_fields
        return [c for i, c in enumerate(node.children) if c.is_named and node.field_name_for_child(i) not in skip]

    def flat_condition(self, kw: Node, items: list[Node], preds: Preds, depth: int, parent) -> Preds:
        """`if (c)` / `while (c)` / `for (...)` left as loose tokens inside an ERROR node."""
        sx = self.sx
        roots: list[Node] = []
        end = kw.end_byte
        if kw.type in sx.flat_headers:
            while items and len(roots) < 16:
                c = items.pop()
                end = c.end_byte
                if c.type == sx.header_close:
                    break
                if c.is_named:
                    roots.append(c)
        elif items and items[-1].type == sx.parenthesized:
            c = items.pop()
            roots.append(c)
            end = c.end_byte
        if not roots:
            return preds
        n = self.node(sx.flat_conditions[kw.type], kw.start_byte, end, roots, depth, parent, kw, preds)
        return [(n, CFG_SEQ)]

    def opaque(self, node: Node, preds: Preds, depth: int, parent) -> Preds:
        n = self.node("nested", node.start_byte, node.end_byte, [node], depth, parent, node, preds)
        return [(n, CFG_SEQ)]

    def colon_index(self, children: list[Node]) -> int:
        colon = self.sx.colon
        return next((i for i, c in enumerate(children) if c.type == colon), 0)

    # -- statements (handlers by role) --

    def simple(self, kind: str, node: Node, roots: list[Node], preds: Preds, depth: int, parent) -> int:
        return self.node(kind, node.start_byte, node.end_byte, roots, depth, parent, node, preds)

    def expression(self, node, preds, depth, parent):
        comments = self.sx.comments
        named = [c for c in node.children if c.is_named and c.type not in comments]
        if not named:  # empty statement `;`
            return preds
        kind = self.sx.expression_kinds.get(named[0].type, "expression")
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
            self.gotos.append((n, text_of(label)))
        return []

    def label(self, node, preds, depth, parent):
        ch = node.children
        colon = self.colon_index(ch)
        n = self.node("label", node.start_byte, ch[colon].end_byte if ch else node.end_byte, [], depth, parent,
                      node, preds)
        label = node.child_by_field_name("label")
        if label is not None:
            self.labels[text_of(label)] = n
        return self.block(ch[colon + 1:], [(n, CFG_SEQ)], depth, parent)

    def attributed(self, node, preds, depth, parent):
        attributes = self.sx.attributes
        return self.block([c for c in node.children if c.type not in attributes], preds, depth, parent)

    def compound(self, node, preds, depth, parent):
        return self.block(node.children, preds, depth, parent)

    def function(self, node, preds, depth, parent):
        body = node.child_by_field_name("body")
        # A `name` field (Java, Python) is the function's own name: neither a use nor a variable.
        header = [c for i, c in enumerate(node.children) if c != body and node.field_name_for_child(i) != "name"]
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
        sx, roles = self.sx, self.front.roles
        outs: Preds = []
        rest: list[Node] = []  # the elif / else clauses still to come, where the if lists them all
        while True:  # else-if chains are walked iteratively, not recursively
            c = self.condition_node("if", node, node.child_by_field_name("condition"), depth, parent, preds)
            outs += self.stmt(node.child_by_field_name("consequence"), [(c, CFG_BRANCH)], depth + 1, c)
            alt = node.child_by_field_name("alternative")
            if sx.elif_clause:
                if node.type != sx.elif_clause:
                    rest = node.children_by_field_name("alternative")
                alt = rest.pop(0) if rest else None
            if alt is not None and alt.type == sx.else_clause:
                named = [x for x in alt.children if x.is_named and x.type not in sx.comments]
                alt = named[-1] if named else None
            if alt is None:
                outs.append((c, CFG_BRANCH))
                break
            if roles.get(alt.type) != "if":
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
        field = self.sx.for_targets.get(node.type)
        target = node.child_by_field_name(field) if field else None
        if target is not None:  # for-each: the header defines the loop variables
            info, bound = self.infos[h], self.front.scan([target])
            for v in (*bound.uses, *bound.defs):
                info.uses.pop(v, None)
                info.defs[v] = None
        return self.loop(h, body, depth)

    def body_of(self, node: Node) -> Node | None:
        """A clause's body: its `body` field, else its last named child when that is a block."""
        body = node.child_by_field_name("body")
        if body is None:
            named = [c for c in node.children if c.is_named and c.type not in self.sx.comments]
            if named and self.front.roles.get(named[-1].type) == "block":
                body = named[-1]
        return body

    def scoped(self, node: Node, kind: str, preds: Preds, depth: int, parent) -> Preds:
        """A header node (everything but the body), then the body nested under it."""
        body = self.body_of(node)
        header = [c for c in node.children if c != body and c.is_named]
        end = body.start_byte if body is not None else node.end_byte
        h = self.node(kind, node.start_byte, end, header, depth, parent, node, preds)
        return self.stmt(body, [(h, CFG_SEQ)], depth + 1, h)

    def with_(self, node, preds, depth, parent):
        return self.scoped(node, "declaration", preds, depth, parent)

    def catch(self, node, preds, depth, parent):
        return self.scoped(node, "case", preds, depth, parent)

    def finally_(self, node, preds, depth, parent):
        return self.stmt(self.body_of(node), preds, depth, parent)

    def try_(self, node, preds, depth, parent):
        """Body; each catch entered from before and after it; else after the body; finally after all."""
        roles = self.front.roles
        res = node.child_by_field_name("resources")
        if res is not None:  # try-with-resources: the resources are declarations
            preds = [(self.node("declaration", res.start_byte, res.end_byte, [res], depth, parent, res, preds),
                      CFG_SEQ)]
        outs = self.stmt(node.child_by_field_name("body"), preds, depth, parent)
        thrown = list(dict.fromkeys((p, CFG_BRANCH) for p, _ in preds + outs))
        caught: Preds = []
        final = None
        for ch in node.children:
            role = roles.get(ch.type)
            if role == "catch":
                caught += self.scoped(ch, "case", thrown, depth, parent)
            elif role == "finally":
                final = ch
            elif ch.type == self.sx.else_clause:
                outs = self.stmt(self.body_of(ch), outs, depth, parent)
        outs = outs + caught
        return self.stmt(self.body_of(final), outs, depth, parent) if final is not None else outs

    def do(self, node, preds, depth, parent):
        ctx = _Ctx(True, None)
        self.ctx.append(ctx)
        first = len(self.rows)
        children: list[int] = []
        out = self.stmt(node.child_by_field_name("body"), preds, depth + 1, children)
        self.ctx.pop()
        cond = node.child_by_field_name("condition")
        kw = next((c for c in node.children if c.type == self.sx.do_keyword), None)
        start = kw.start_byte if kw is not None else (cond.start_byte if cond is not None else node.end_byte)
        end = cond.end_byte if cond is not None else node.end_byte
        c = self.node("do", start, end, [cond] if cond is not None else [], depth, parent, kw or node,
                      out + [(n, CFG_SEQ) for n in ctx.pending_cont])
        self.edges.extend((c, ch, AST) for ch in children)
        self.edges.append((c, first if first < c else c, CFG_LOOP))
        return [(c, CFG_BRANCH)] + ctx.breaks

    def switch(self, node, preds, depth, parent):
        roles = self.front.roles
        c = self.condition_node("switch", node, node.child_by_field_name("condition"), depth, parent, preds)
        body = node.child_by_field_name("body")
        items = body.children if body is not None and roles.get(body.type) == "block" else [body] if body else []
        ctx = _Ctx(False, None)
        self.ctx.append(ctx)
        cur: Preds = []
        has_default = False
        for ch in items:
            if roles.get(ch.type) != "case":
                cur = self.stmt(ch, cur, depth + 1, c)
                continue
            is_default = self.is_default(ch)
            has_default |= is_default
            case, stmts = self.case_label(ch, depth + 1, c, cur + [(c, CFG_BRANCH)], is_default)
            self.nesting += 1
            try:
                cur = self.block(stmts, [(case, CFG_SEQ)], depth + 2, case)
            finally:
                self.nesting -= 1
        self.ctx.pop()
        return cur + ctx.breaks + ([] if has_default else [(c, CFG_BRANCH)])

    def is_default(self, node: Node) -> bool:
        if not node.children:
            return False
        first = node.children[0]
        if first.is_named and first.children:  # the label wrapped in its own node (Java's switch_label)
            first = first.children[0]
        return first.type == self.sx.default_keyword

    def case_label(self, node: Node, depth: int, parent, preds: Preds, is_default: bool) -> tuple[int, list[Node]]:
        ch = node.children
        colon = self.colon_index(ch)
        value = node.child_by_field_name("value")
        end = ch[colon].end_byte if ch else node.end_byte
        n = self.node("default" if is_default else "case", node.start_byte, end, [value] if value else [], depth,
                      parent, node, preds)
        return n, ch[colon + 1:]

    def orphan_case(self, node, preds, depth, parent):
        """A `case` outside a parsed switch (error recovery): a label followed by its statements."""
        case, stmts = self.case_label(node, depth, parent, preds, self.is_default(node))
        return self.block(stmts, [(case, CFG_SEQ)], depth, parent)


_ROLE_HANDLERS = {
    "function": GraphBuilder.function, "block": GraphBuilder.compound, "if": GraphBuilder.if_,
    "while": GraphBuilder.while_, "for": GraphBuilder.for_, "do": GraphBuilder.do, "switch": GraphBuilder.switch,
    "label": GraphBuilder.label, "case": GraphBuilder.orphan_case, "expression": GraphBuilder.expression,
    "declaration": GraphBuilder.declaration, "return": GraphBuilder.return_, "break": GraphBuilder.break_,
    "continue": GraphBuilder.continue_, "goto": GraphBuilder.goto, "attributed": GraphBuilder.attributed,
    "with": GraphBuilder.with_, "try": GraphBuilder.try_, "catch": GraphBuilder.catch,
    "finally": GraphBuilder.finally_,
}
