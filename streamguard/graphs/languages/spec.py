"""What a language front-end supplies: its tree-sitter grammar, node-type tables and taint catalog.

The graph core (`cfg.py`, `statements.py`) walks any tree-sitter tree through these tables and
never names a grammar's node types itself. The tree-sitter field names it reads are the usual ones
(`condition`, `consequence`, `alternative`, `body`, `value`, `label`, `left`, `right`,
`operator`, `argument`); the call fields are part of `Syntax`.

Statement roles (`Syntax.statements` values), each with its own control flow in `cfg.py`:
`function` (its header defines the parameters; the body is its own flow), `block`, `if`,
`while`, `for`, `do`, `switch`, `case`, `label`, `goto`, `break`, `continue`, `return`,
`expression`, `declaration`, `attributed` (a statement wrapped in attributes), `with` (a header that
binds names, then its body: Python `with`, Java `synchronized`), `try` (its body, then its `catch`
clauses, each entered from before and after the body, an `else` clause after the body, and a
`finally` clause after all of them; Java's try-with-resources `resources` become a declaration),
`catch` and `finally` (those clauses: a `catch` header defines its exception variable).
A function header's `name` field is neither a use nor a variable.

Walk steps (`lvalue_walk`, `declarator_walk`): `first` / `last` child, `named` (the first named
child), `first+rest` (the first child; the other named ones are scanned as expressions, e.g.
array sizes).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

from tree_sitter import Language, Node

from ..taint import TaintCatalog


@dataclasses.dataclass(frozen=True, eq=False)
class Syntax:
    """Node-type tables of one tree-sitter grammar (types unless said otherwise)."""

    # -- statement structure and control flow --
    statements: Mapping[str, str]          # statement type -> role (see the module docstring)
    splice: frozenset[str]                 # containers whose children join the enclosing statement list
    splice_whole: frozenset[str]           # ... all of whose children are kept (else named ones only)
    splice_skip_fields: frozenset[str]     # fields of a spliced container that are not statements
    flat_conditions: Mapping[str, str]     # keyword token -> node kind, when left loose in an ERROR region
    flat_headers: frozenset[str]           # those keywords whose header runs up to `header_close`
    header_close: str                      # token ending a loose header
    parenthesized: str                     # a parenthesized condition after a loose keyword
    orphan_headers: frozenset[str]         # a function header whose definition did not parse
    flat_expressions: Mapping[str, str]    # expression loose in an ERROR region -> node kind
    expression_kinds: Mapping[str, str]    # first expression of an expression statement -> node kind
    comments: frozenset[str]
    attributes: frozenset[str]             # attribute children dropped from an attributed statement
    else_clause: str                       # wrapper of an if's alternative
    colon: str                             # token ending a label or case
    default_keyword: str                   # first token of a default case
    do_keyword: str                        # keyword starting a do loop's trailing condition
    # -- per-statement features --
    identifier: str
    literals: Mapping[str, str]            # literal type -> literal kind
    number_literals: frozenset[str]        # literal types whose kind is `number_kind(text)`
    number_kind: Callable[[bytes], str]
    string_literals: frozenset[str]        # literal call arguments (taint `lit`)
    type_names: frozenset[str]
    skip: frozenset[str]                   # subtrees that carry no features
    call: str
    call_fields: tuple[str, str]           # (callee, arguments) fields of a call
    member: str                            # `a.f` / `a->f`: a callee through it is named ".f"
    member_field: str
    assignment: str
    assign_operator: str                   # plain assignment (others also read their target)
    update: str                            # `i++`: writes its argument
    init_declarator: str                   # declarator with initializer (its operator: assign_operator)
    declarations: frozenset[str]           # declarations and parameters: children are declarators
    declarators: frozenset[str]
    function_declarator: str               # its own name is neither a use nor a variable
    operator_parents: frozenset[str]       # expressions with an `operator` field
    unary_parents: frozenset[str]          # ... whose ambiguous operators get a "u" prefix
    ambiguous_unary: frozenset[str]
    named_operators: Mapping[str, str]     # expression type -> operator feature (cast, sizeof, ...)
    address_of: tuple[str, str]            # (expression type, first token): `&x` arguments
    lvalue_walk: Mapping[str, str]         # expression type -> walk step to its base variable
    declarator_walk: Mapping[str, tuple[str, str | None]]  # declarator -> (walk step, type tag)
    # -- constructs C does not have (empty: not used) --
    call_object: str = ""                  # receiver field of a call (Java `o.m(..)`): read, call named ".m"
    member_object: str = ""                # object field of a member expression: only it is read (the
    #                                        member name is no variable); a dotted text `a.b` in the
    #                                        catalog's source_vars is a source
    extra_calls: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)  # more call types
    #                                        -> (callee, arguments) fields; a type callee (`new T(..)`) is named T
    implicit_assignments: frozenset[str] = frozenset()  # assignments without an operator field (plain)
    update_argument: str = "argument"      # field of an update's operand ("": its first named child)
    keyword_argument: str = ""             # `name=value` argument: the value is read, the catalog sees
    #                                        ("kw", "name=value", names)
    interpolation: str = ""                # expression embedded in a string literal (f-strings): read; such a
    #                                        string is no literal argument
    elif_clause: str = ""                  # an `elif` the grammar lists as a further `alternative` of the if
    for_targets: Mapping[str, str] = dataclasses.field(default_factory=dict)  # for-each type -> field of the
    #                                        loop variables (defined by the header)


@dataclasses.dataclass(frozen=True, eq=False)
class LanguageSpec:
    """One source language: name, file suffixes, grammar, tables, taint catalog, function names."""

    name: str
    suffixes: tuple[str, ...]              # lower-case, with the dot
    grammar: Callable[[], Language]        # loads the tree-sitter grammar (imported lazily)
    syntax: Syntax
    catalog: TaintCatalog
    function_name: Callable[[Node], str]   # name of a `function`-role node
