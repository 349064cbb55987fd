"""Per-statement feature scan: what one statement calls, computes, declares, defines and reads.

`make_scanner(syntax, catalog)` returns `scan(roots) -> StmtInfo` for one language; it walks the
named nodes of a statement's subtrees iteratively (expressions nest deeply) through the node-type
tables of `languages.spec.Syntax`. Calls the taint catalog finds relevant are described argument
by argument in the form `taint.py` documents.
"""
from __future__ import annotations

from typing import Callable

from tree_sitter import Node

from .languages.spec import Syntax
from .taint import Arg, TaintCatalog

MAX_CHAIN = 64  # bound on walks down declarator / lvalue chains


class StmtInfo:
    """What one statement mentions; lists keep first-seen order, dicts double as ordered sets."""

    __slots__ = ("apis", "ops", "lits", "types", "defs", "uses", "calls")

    def __init__(self) -> None:
        self.apis: dict[str, None] = {}
        self.ops: dict[str, None] = {}
        self.lits: dict[str, None] = {}
        self.types: dict[str, None] = {}
        self.defs: dict[str, None] = {}
        self.uses: dict[str, None] = {}
        self.calls: list[tuple[str, list[Arg]]] = []


def text_of(node: Node) -> str:
    return node.text.decode("utf-8", "replace")


def _step(node: Node, how: str) -> Node | None:
    """One walk step (see languages.spec): the child to continue with."""
    ch = node.children
    if how == "last":
        return ch[-1]
    if how == "named":
        return next((c for c in ch if c.is_named), None)
    return ch[0]


def make_scanner(sx: Syntax, catalog: TaintCatalog) -> Callable[[list[Node]], StmtInfo]:
    # Tables are bound to closure cells once per language: the scan runs for every statement.
    ident, literals, number_literals, number_kind = sx.identifier, sx.literals, sx.number_literals, sx.number_kind
    type_names, skip, call, member, member_field = sx.type_names, sx.skip, sx.call, sx.member, sx.member_field
    assignment, assign_op, update, init_decl = sx.assignment, sx.assign_operator, sx.update, sx.init_declarator
    declarations, declarators, fn_decl = sx.declarations, sx.declarators, sx.function_declarator
    op_parents, unary_parents, ambiguous, named_ops = (sx.operator_parents, sx.unary_parents, sx.ambiguous_unary,
                                                       sx.named_operators)
    strings, (addr_type, addr_token), comments = sx.string_literals, sx.address_of, sx.comments
    lvalue_walk, declarator_walk = sx.lvalue_walk, sx.declarator_walk
    is_relevant = catalog.is_relevant
    # Constructs of languages with methods, keyword arguments and f-strings (empty for C).
    calls = {call: sx.call_fields, **sx.extra_calls}
    call_object, member_object, kwarg, interp = sx.call_object, sx.member_object, sx.keyword_argument, sx.interpolation
    implicit, update_arg, dotted_sources = sx.implicit_assignments, sx.update_argument, catalog.source_vars

    def plain(node: Node) -> bool:
        """A string literal without embedded expressions."""
        stack = [node]
        while stack:
            for c in stack.pop().named_children:
                if c.type == interp:
                    return False
                if c.type in literals:
                    stack.append(c)
        return True

    def embedded(node: Node) -> list[Node]:
        """The interpolations (and nested strings) of a string literal."""
        return [c for c in node.named_children if c.type == interp or c.type in literals]

    def base_var(node: Node) -> str | None:
        """The variable an lvalue-like expression reads or writes: a, a[i], a->f, *a, (T)a, *(a+i)."""
        for _ in range(MAX_CHAIN):
            t = node.type
            if t == ident:
                return text_of(node)
            how = lvalue_walk.get(t)
            if how is None or not node.children:
                return None
            node = _step(node, how)
            if node is None:
                return None
        return None

    def declare(node: Node, info: StmtInfo, stack: list | None) -> None:
        """Record the variable a declarator introduces; array sizes go back on the scan stack."""
        for _ in range(MAX_CHAIN):
            t = node.type
            if t == ident:
                info.defs[text_of(node)] = None
                return
            ch = node.children
            if not ch:
                return
            walk = declarator_walk.get(t)
            if walk is None:
                if stack is not None and node.is_named:
                    stack.append(node)
                return
            how, tag = walk
            if tag is not None:
                info.types[tag] = None
            if how == "first+rest" and stack is not None:
                stack.extend(c for c in ch[1:] if c.is_named)
            node = _step(node, how)
            if node is None:
                return

    def names(node: Node) -> tuple[str, ...]:
        """Variables an expression reads (callee names of nested calls excluded)."""
        found: dict[str, None] = {}
        stack = [node]
        while stack:
            x = stack.pop()
            t = x.type
            if t == ident:
                found[text_of(x)] = None
            elif t == call and not call_object:
                stack.extend(c for c in x.named_children if c.type != ident or c.start_byte != x.start_byte)
            elif t in calls:  # the receiver and the arguments, not the method or type name
                fields = (call_object, calls[t][1])
                stack.extend(c for c in map(x.child_by_field_name, fields) if c is not None)
            elif t == member and member_object:
                o = x.child_by_field_name(member_object)
                if o is not None:
                    stack.append(o)
            elif t == kwarg:
                v = x.child_by_field_name("value")
                if v is not None:
                    stack.append(v)
            elif t not in literals:
                stack.extend(x.named_children)
            elif interp:
                stack.extend(embedded(x))
        return tuple(found)

    def argument(node: Node) -> Arg:
        t = node.type
        if t in strings and (not interp or plain(node)):
            return ("lit", node.text[:256].decode("utf-8", "replace"), ())
        if t == kwarg:
            v = node.child_by_field_name("value")
            return ("kw", "".join(text_of(node).split())[:256], names(v) if v is not None else ())
        if t == addr_type and node.children and node.children[0].type == addr_token:
            return ("addr", base_var(node.children[-1]), names(node))
        return ("expr", base_var(node), names(node))

    def scan_call(node: Node, info: StmtInfo, stack: list[Node], fields: tuple[str, str], typed: bool) -> None:
        fn = node.child_by_field_name(fields[0])
        args = node.child_by_field_name(fields[1])
        name = recv = None
        if fn is not None:
            if fn.type == ident:
                name = text_of(fn)
                recv = node.child_by_field_name(call_object) if call_object else None
                if recv is not None:  # `o.m(..)`: a method, named like a call through a member
                    name = "." + name
                    stack.append(recv)
            elif typed and fn.type in type_names:  # `new T(..)`
                name = text_of(fn)
            else:
                field = fn.child_by_field_name(member_field) if fn.type == member else None
                if field is not None:
                    # A call through a member: C catalogs never match it; method languages name methods so.
                    name = "." + text_of(field)
                    recv = fn.child_by_field_name(member_object) if member_object else None
                stack.append(fn)
        if name is not None:
            info.apis[name] = None
        if args is not None:
            arg_nodes = [a for a in args.named_children if a.type not in comments]
            if name is not None and is_relevant(name):
                described = [argument(a) for a in arg_nodes]
                if recv is not None:
                    described.append(("recv", base_var(recv), names(recv)))
                info.calls.append((name, described))
            stack.extend(reversed(arg_nodes))

    def scan(roots: list[Node]) -> StmtInfo:
        info = StmtInfo()
        stack: list[Node] = [r for r in reversed(roots) if r.is_named]
        pop, push = stack.pop, stack.append
        while stack:
            node = pop()
            t = node.type
            if t == ident:
                info.uses[text_of(node)] = None
                continue
            lit = literals.get(t)
            if lit is not None:
                info.lits[number_kind(node.text) if t in number_literals else lit] = None
                if interp:
                    stack.extend(embedded(node))
                continue
            if t in type_names:
                info.types[text_of(node)] = None
                continue
            if t in skip:
                continue
            fields = calls.get(t)
            if fields is not None:
                scan_call(node, info, stack, fields, t != call)
                continue
            if t == assignment or t in implicit:
                left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
                op = node.child_by_field_name("operator")
                op_type = op.type if op is not None else assign_op if t in implicit else None
                if left is not None and op_type is not None:
                    info.ops[op_type] = None
                    if left.type == ident:
                        v = text_of(left)
                        info.defs[v] = None
                        if op_type != assign_op:  # compound assignment reads its target too
                            info.uses[v] = None
                    else:
                        v = base_var(left)
                        if v is not None:
                            info.defs[v] = None
                        push(left)
                    if right is not None:
                        push(right)
                    continue
            elif t == update:
                arg = node.child_by_field_name(update_arg) if update_arg else next(iter(node.named_children), None)
                if arg is not None:
                    v = base_var(arg)
                    if v is not None:
                        info.defs[v] = None
            elif t == init_decl:
                ch = node.named_children
                if ch:
                    declare(ch[0], info, stack)
                    info.ops[assign_op] = None
                    stack.extend(reversed(ch[1:]))
                continue
            elif t in declarations:
                for c in node.named_children:
                    if c.type == ident or c.type in declarators:
                        declare(c, info, stack)
                    else:
                        push(c)
                continue
            elif t == fn_decl:
                ch = node.named_children
                # The declared function's own name is neither a use nor a variable.
                stack.extend(reversed(ch[1:] if ch and ch[0].type == ident else ch))
                continue
            elif t == member and member_object:  # `a.b`: reads a; `sys.argv` may be a source itself
                if node.end_byte - node.start_byte <= 64:
                    dotted = text_of(node)
                    if dotted in dotted_sources:
                        info.uses[dotted] = None
                o = node.child_by_field_name(member_object)
                if o is not None:
                    push(o)
                continue
            elif t == kwarg:  # `name=value`: the name is no variable
                v = node.child_by_field_name("value")
                if v is not None:
                    push(v)
                continue
            if t in op_parents:
                op = node.child_by_field_name("operator")
                if op is not None:
                    o = op.type
                    info.ops[("u" + o) if (t in unary_parents and o in ambiguous) else o] = None
            else:
                o = named_ops.get(t)
                if o is not None:
                    info.ops[o] = None
            stack.extend(reversed(node.named_children))
        return info

    return scan
