"""Taint: the catalog a language supplies (sources, sinks, sanitizers) and propagation over def-use.

This module knows nothing about parsing or any one language. The statement scan describes each
call whose name the catalog finds relevant as `(name, args)`, where every argument is a triple:

- `("lit", text, ())`     a string literal (or concatenation of literals), with its source text;
- `("addr", var, names)`  an address-of expression `&x`;
- `("kw", "name=value", names)`  a keyword argument (its text without spaces; after the positional ones);
- `("recv", var, names)`  the receiver of a method call `o.m(..)`, always last (languages with methods);
- `("expr", var, names)`  anything else;

where `var` is the base variable (`a` for `a`, `a[i]`, `a->f`, `*a`, `a + 1`; None if there is
none) and `names` every variable the argument reads.

`TaintCatalog.call_effects` turns the calls of one statement into its taint roles, and
`propagate` runs the taint over the statement-level def -> use edges (one per variable). A sink
only counts its sensitive arguments (the source of a copy, not its destination).

Taint is tracked per vulnerability class, one bit each (the language's catalog names them), so
that a sanitizer only cuts the flows it protects against. Sources taint every class; custom
sanitizers (by name pattern) cut every class. A variable overwritten with a constant is clean
because its new definition uses nothing tainted.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Mapping

from .dataflow import forward_fixpoint

ArgSpec = tuple[int, ...] | int  # argument indices, or k meaning "argument k and all after it"
Arg = tuple[str, str | None, tuple[str, ...]]
Call = tuple[str, list[Arg]]


@dataclasses.dataclass(frozen=True, eq=False)
class TaintCatalog:
    """One language's taint roles of calls and variables. Bits in the masks are `classes` values.

    source_vars: variables that hold attacker-controlled data wherever they appear.
    source_calls: calls that read external input -> indices of the arguments they write it into
        (their return value is always tainted).
    writer_calls: calls that copy into output arguments -> those arguments' indices; a written
        argument is redefined by the statement and carries whatever taint the statement reads.
    variadic_out: calls whose arguments from this index on are outputs (the scanf family).
    sink_calls: call -> (classes, arguments that must not carry taint).
    sink_patterns: (name pattern, classes, arguments) for sinks by name (when not in sink_calls).
    format_args: call -> index of its format argument; a non-literal one is a `format_class` sink.
    sanitizer_calls: call -> classes it cuts from everything the statement defines.
    quote_format_sanitizers: call -> index of a format argument whose literal containing
        `quote_directive` makes the call a `quote_class` sanitizer.
    custom_sanitizer: name pattern of project helpers that cut every class.
    sink_keywords: call -> the keyword argument (`shell=True`) without which it is no sink.
    receiver_writers: methods that write their arguments into their receiver (`sb.append(x)`).
    """

    classes: Mapping[str, int]
    source_vars: frozenset[str]
    source_calls: Mapping[str, tuple[int, ...]]
    writer_calls: Mapping[str, tuple[int, ...]]
    variadic_out: Mapping[str, int]
    sink_calls: Mapping[str, tuple[int, ArgSpec]]
    sink_patterns: tuple[tuple[re.Pattern, int, ArgSpec], ...] = ()
    format_args: Mapping[str, int] = dataclasses.field(default_factory=dict)
    format_class: int = 0
    sanitizer_calls: Mapping[str, int] = dataclasses.field(default_factory=dict)
    quote_format_sanitizers: Mapping[str, int] = dataclasses.field(default_factory=dict)
    quote_directive: re.Pattern | None = None
    quote_class: int = 0
    custom_sanitizer: re.Pattern | None = None
    sink_keywords: Mapping[str, str] = dataclasses.field(default_factory=dict)
    receiver_writers: frozenset[str] = frozenset()
    all_classes: int = dataclasses.field(init=False)
    _named: frozenset[str] = dataclasses.field(init=False, repr=False)
    _relevant: dict[str, bool] = dataclasses.field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        mask = 0
        for bit in self.classes.values():
            mask |= bit
        object.__setattr__(self, "all_classes", mask)
        named = frozenset().union(self.source_calls, self.writer_calls, self.variadic_out, self.sink_calls,
                                  self.format_args, self.sanitizer_calls, self.quote_format_sanitizers,
                                  self.receiver_writers)
        object.__setattr__(self, "_named", named)

    def is_custom_sanitizer(self, name: str) -> bool:
        """A project-specific sanitizer by name (catalogued sanitizers excluded)."""
        return (self.custom_sanitizer is not None and name not in self.sanitizer_calls
                and name not in self.quote_format_sanitizers and bool(self.custom_sanitizer.search(name)))

    def is_relevant(self, name: str) -> bool:
        """Whether a call can play any taint role (the scan describes only these calls' arguments)."""
        hit = self._relevant.get(name)
        if hit is None:
            hit = (name in self._named or any(p.match(name) for p, _, _ in self.sink_patterns)
                   or (self.custom_sanitizer is not None and bool(self.custom_sanitizer.search(name))))
            if len(self._relevant) >= 65536:  # bounded memo: callee names are open-ended
                self._relevant.clear()
            self._relevant[name] = hit
        return hit

    def sinks(self, name: str, args: list[Arg]) -> tuple[int, dict[str, int]]:
        """(classes for which the call is a sink, {variable read by a sensitive argument: classes})."""
        mask, spec = self.sink_calls.get(name, (0, ()))
        need = self.sink_keywords.get(name) if mask else None
        if need is not None and not any(a[0] == "kw" and a[1] == need for a in args):
            mask, spec = 0, ()  # e.g. subprocess.run without shell=True runs no shell
        elif not mask:
            for pattern, m, s in self.sink_patterns:
                if pattern.match(name):
                    mask, spec = m, s
                    break
        watched: dict[str, int] = {}
        for _, _, names in _spec_args(spec, args):
            for v in names:
                watched[v] = watched.get(v, 0) | mask
        fmt = self.format_args.get(name)
        if fmt is not None and fmt < len(args) and args[fmt][0] != "lit":
            mask |= self.format_class
            for v in args[fmt][2]:
                watched[v] = watched.get(v, 0) | self.format_class
        return mask, watched

    def sanitize_mask(self, name: str, args: list[Arg]) -> int:
        """Classes a call cuts from the data it produces (0 when it is no sanitizer)."""
        mask = self.sanitizer_calls.get(name, 0)
        fmt = self.quote_format_sanitizers.get(name)
        if (fmt is not None and fmt < len(args) and args[fmt][0] == "lit" and self.quote_directive is not None
                and self.quote_directive.search(args[fmt][1] or "")):
            mask |= self.quote_class
        if self.is_custom_sanitizer(name):
            mask = self.all_classes
        return mask

    def call_effects(self, calls: list[Call]) -> Effects:
        """Combine the taint roles of the calls one statement makes."""
        if not calls:
            return NO_EFFECTS
        eff = Effects()
        for name, args in calls:
            out: tuple[int, ...] = ()
            if name in self.source_calls:
                eff.source = True
                out = self.source_calls[name]
            out = out or self.writer_calls.get(name, ())
            for i in out:
                if i < len(args) and args[i][1]:
                    eff.writes.append(args[i][1])
            if name in self.receiver_writers and args and args[-1][0] == "recv" and args[-1][1]:
                eff.writes.append(args[-1][1])
            start = self.variadic_out.get(name)
            if start is not None:
                eff.writes.extend(a[1] for a in args[start:] if a[1])
            mask, watched = self.sinks(name, args)
            eff.sink_mask |= mask
            for v, m in watched.items():
                eff.sink_vars[v] = eff.sink_vars.get(v, 0) | m
            san = self.sanitize_mask(name, args)
            if san:
                eff.sanitize_mask |= san
                if self.is_custom_sanitizer(name):
                    eff.in_place.extend(a[1] for a in args if a[1] and a[0] not in ("lit", "kw"))
        return eff


def _spec_args(spec: ArgSpec, args: list) -> list:
    if isinstance(spec, int):
        return [a for a in args[spec:] if a[0] != "recv"]
    return [args[i] for i in spec if i < len(args) and args[i][0] != "recv"]


@dataclasses.dataclass(slots=True)
class Effects:
    """Taint roles of one statement, from the calls it makes."""

    source: bool = False
    sink_mask: int = 0
    sink_vars: dict[str, int] = dataclasses.field(default_factory=dict)  # variable -> classes it must not carry
    sanitize_mask: int = 0
    writes: list[str] = dataclasses.field(default_factory=list)  # variables written through out-arguments
    in_place: list[str] = dataclasses.field(default_factory=list)  # arguments of custom sanitizers


NO_EFFECTS = Effects()  # shared by the (many) statements without relevant calls; never mutated


def propagate(
    n: int,
    deps: list[tuple[int, int, str]],
    source: list[bool],
    sanitize: list[int],
    sink_vars: list[dict[str, int]],
    classes: Iterable[int],
) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """Run taint over def -> use edges `(def node, use node, variable)`, one bit per class.

    A statement's definitions carry `(every class if it is a source else OR of the taint it reads)`
    minus the classes it sanitizes. Returns `(incoming, outgoing, taint_edges)`: the taint masks
    each statement reads and defines, and the (def node, use node) edges on a path that carries
    taint of a class into a sensitive argument of a sink of that class.
    """
    classes = tuple(classes)
    everything = 0
    for cls in classes:
        everything |= cls
    into: list[list[tuple[int, str]]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for d, u, v in deps:
        into[u].append((d, v))
        succs[d].append(u)
    preds = [[d for d, _ in into[u]] for u in range(n)]
    incoming, out = forward_fixpoint(preds, succs, lambda i, m: (everything if source[i] else m) & ~sanitize[i])
    # Keep only flows that end in a sink of their class: backward search per class.
    edges: set[tuple[int, int]] = set()
    for cls in classes:
        reach = [False] * n
        stack = []
        for u in range(n):
            watched = sink_vars[u]
            if not watched:
                continue
            for d, v in into[u]:
                if watched.get(v, 0) & out[d] & cls:
                    edges.add((d, u))
                    if not reach[d]:
                        reach[d] = True
                        stack.append(d)
        while stack:
            u = stack.pop()
            for d, _ in into[u]:
                if out[d] & cls:
                    edges.add((d, u))
                    if not reach[d]:
                        reach[d] = True
                        stack.append(d)
    return incoming, out, sorted(edges)
