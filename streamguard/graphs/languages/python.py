"""Python: tree-sitter-python grammar, node-type tables, taint catalogs.

Taint classes, one bit each (names shared with the other languages where they mean the same):

    SQL   SQL injection      DB-API `cursor.execute` / `executemany` / `executescript`, Django
                             `.raw` / `.extra`, SQLAlchemy `text(..)`: the query text only, so
                             `execute("... %s", (value,))` (data bound as the second argument) is safe
                             while a query built with `%`, `+`, `.format` or an f-string is not
    CMD   command injection  `os.system`, `os.popen`, `subprocess.getoutput`; `subprocess.run` /
                             `call` / `check_call` / `check_output` / `Popen` only with `shell=True`
    CODE  code injection     `eval`, `exec`, `compile` (CWE-94)
    PATH  path traversal     `open`, `send_file`, `os.remove` / `unlink` / `rmdir` / `listdir` (CWE-22)

Sources: `request.args` / `form` / `values` / `json` / `data` / `cookies` / `headers` / `files`,
Django's `request.GET` / `POST` / `COOKIES` / `META` / `body`, `sys.argv`, `os.environ`
(dotted reads), `input()`, `os.getenv`, `sys.stdin.read*`, `socket.recv`, and the function's
parameters. Sanitizers: `int()` / `float()` / `uuid.UUID()` (cut every class), `shlex.quote`
(command), `os.path.basename` / `secure_filename` (path), and project helpers named
`sanitize*` / `escape*` / `validate*` / `is_valid*` / `is_safe*` / `is_allowed*` / `*allowlist*` /
`*whitelist*` (cut every class; in a condition they clean their argument).

Methods are named ".name" (`cursor.execute` -> ".execute"), plain calls by their name. The
indentation blocks, `elif` chains, `with`, `try/except/else/finally`, for-each targets and
f-string interpolations are read through the generic `Syntax` fields. Class bodies and decorated
definitions are spliced; `extract_functions` returns every `def` not inside another one (methods
named `Class.method`), a nested `def` stays inside its host.
"""
from __future__ import annotations

import re

from tree_sitter import Language, Node

from ..taint import TaintCatalog
from .spec import LanguageSpec, Syntax

SUFFIXES = (".py", ".pyw")


def grammar() -> Language:
    import tree_sitter_python  # imported on first use: the registry stays cheap to import

    return Language(tree_sitter_python.language())


def number_kind(text: bytes) -> str:
    t = text.lower()
    if t.startswith((b"0x", b"0o", b"0b")):
        return "int"
    return "float" if (b"." in t or b"e" in t or b"j" in t) else "int"


def function_name(node: Node) -> str:
    """`Class.method` for a method; enclosing functions are not part of the name."""
    name = node.child_by_field_name("name")
    parts = [name.text.decode("utf-8", "replace") if name is not None else "<anonymous>"]
    p = node.parent
    while p is not None:
        if p.type == "class_definition":
            cls = p.child_by_field_name("name")
            if cls is not None:
                parts.append(cls.text.decode("utf-8", "replace"))
        p = p.parent
    return ".".join(reversed(parts))


_LITERALS = {
    "string": "string", "concatenated_string": "string", "integer": "int", "float": "float", "none": "null",
    "true": "bool", "false": "bool",
}
_PARAM = ("named", None)  # a parameter form: its first named child is the name

SYNTAX = Syntax(
    statements={
        "function_definition": "function", "block": "block", "if_statement": "if", "elif_clause": "if",
        "while_statement": "while", "for_statement": "for", "expression_statement": "expression",
        "assert_statement": "expression", "delete_statement": "expression", "pass_statement": "expression",
        "return_statement": "return", "raise_statement": "return", "break_statement": "break",
        "continue_statement": "continue", "with_statement": "with", "try_statement": "try",
        "except_clause": "catch", "except_group_clause": "catch", "finally_clause": "finally",
        "global_statement": "declaration", "nonlocal_statement": "declaration",
    },
    splice=frozenset({"module", "class_definition", "decorated_definition"}),
    splice_whole=frozenset({"module"}),
    splice_skip_fields=frozenset({"name", "superclasses", "type_parameters"}),
    flat_conditions={"if": "if", "elif": "if", "while": "while", "for": "for"},
    flat_headers=frozenset({"if", "elif", "while", "for"}),
    header_close=":",
    parenthesized="parenthesized_expression",
    orphan_headers=frozenset(),
    flat_expressions={
        "call": "call", "assignment": "assignment", "augmented_assignment": "assignment",
        "binary_operator": "expression", "boolean_operator": "expression", "comparison_operator": "expression",
        "attribute": "expression", "subscript": "expression", "conditional_expression": "expression",
    },
    expression_kinds={"assignment": "assignment", "augmented_assignment": "assignment", "call": "call"},
    comments=frozenset({"comment"}),
    attributes=frozenset(),
    else_clause="else_clause",
    colon=":",
    default_keyword="",
    do_keyword="",
    identifier="identifier",
    literals=_LITERALS,
    number_literals=frozenset({"integer", "float"}),
    number_kind=number_kind,
    string_literals=frozenset({"string", "concatenated_string"}),
    type_names=frozenset({"type"}),
    skip=frozenset({"comment", "string_start", "string_content", "string_end", "escape_sequence", "decorator"}),
    call="call",
    call_fields=("function", "arguments"),
    member="attribute",
    member_field="attribute",
    assignment="augmented_assignment",
    assign_operator="=",
    update="",
    init_declarator="",
    declarations=frozenset({
        "parameters", "lambda_parameters", "pattern_list", "tuple_pattern", "list_pattern", "as_pattern_target",
    }),
    declarators=frozenset({
        "default_parameter", "typed_parameter", "typed_default_parameter", "list_splat_pattern",
        "dictionary_splat_pattern",
    }),
    function_declarator="",
    operator_parents=frozenset({"binary_operator", "boolean_operator", "unary_operator", "augmented_assignment"}),
    unary_parents=frozenset({"unary_operator"}),
    ambiguous_unary=frozenset({"+", "-"}),
    named_operators={
        "comparison_operator": "compare", "not_operator": "not", "subscript": "[]",
        "conditional_expression": "?:", "lambda": "lambda", "list_comprehension": "comprehension",
        "dictionary_comprehension": "comprehension", "set_comprehension": "comprehension",
        "generator_expression": "comprehension", "await": "await",
    },
    address_of=("", ""),
    lvalue_walk={  # a[i], a.f -> a; (a) -> a
        "subscript": "first", "attribute": "first", "parenthesized_expression": "named",
    },
    declarator_walk={t: _PARAM for t in ("default_parameter", "typed_parameter", "typed_default_parameter",
                                         "list_splat_pattern", "dictionary_splat_pattern")},
    member_object="object",
    implicit_assignments=frozenset({"assignment"}),
    keyword_argument="keyword_argument",
    interpolation="interpolation",
    elif_clause="elif_clause",
    for_targets={"for_statement": "left"},
)

# --- taint catalogs ----------------------------------------------------------------------------

SQL, CMD, CODE, PATH = 1, 2, 4, 8
ALL = SQL | CMD | CODE | PATH
TAINT_CLASSES = {"sql": SQL, "command": CMD, "code": CODE, "path": PATH}

# Dotted reads of request data and process input (Flask, Django, the standard library).
SOURCE_VARS = frozenset(
    [f"request.{a}" for a in ("args", "form", "values", "json", "data", "cookies", "headers", "files",
                              "GET", "POST", "COOKIES", "META", "FILES", "body", "query_params", "path_params")]
    + ["sys.argv", "os.environ", "sys.stdin"])

SOURCE_CALLS: dict[str, tuple[int, ...]] = dict.fromkeys((
    "input", "raw_input", ".getenv", ".get_json", ".get_data", ".recv", ".recvfrom", ".readline", ".readlines",
), ())

_Q = (0,)  # the query / command / path / code: the first argument
SINK_CALLS = {
    **dict.fromkeys((".execute", ".executemany", ".executescript", ".raw", ".extra", "text", ".text",
                     ".read_sql", ".read_sql_query", ".mogrify"), (SQL, _Q)),
    **dict.fromkeys((".system", ".popen", ".getoutput", ".getstatusoutput", ".run", ".call", ".check_call",
                     ".check_output", ".Popen", "Popen"), (CMD, _Q)),
    **dict.fromkeys(("eval", "exec", "compile"), (CODE, _Q)),
    **dict.fromkeys(("open", ".open", "send_file", ".send_file", ".remove", ".unlink", ".rmdir", ".listdir",
                     ".rmtree"), (PATH, _Q)),
}
# subprocess runs a shell, and so an injectable command line, only with shell=True.
SINK_KEYWORDS = dict.fromkeys((".run", ".call", ".check_call", ".check_output", ".Popen", "Popen"), "shell=True")

SANITIZER_CALLS: dict[str, int] = {
    "int": ALL, "float": ALL, "bool": ALL, "UUID": ALL, ".UUID": ALL,
    ".quote": CMD, "quote": CMD, ".basename": PATH, "secure_filename": PATH, ".escape_string": SQL,
}
CUSTOM_SANITIZER = re.compile(r"^\.?(?:sanitiz|escape|validat|is_valid|is_safe|is_allowed|check_allowed)"
                              r"|allowlist|whitelist", re.IGNORECASE)
# Methods that add their arguments to the receiver: a list of arguments built from input is tainted.
RECEIVER_WRITERS = frozenset({".append", ".extend", ".insert", ".add", ".update", ".write"})

CATALOG = TaintCatalog(
    classes=TAINT_CLASSES, source_vars=SOURCE_VARS, source_calls=SOURCE_CALLS, writer_calls={},
    variadic_out={}, sink_calls=SINK_CALLS, sanitizer_calls=SANITIZER_CALLS, custom_sanitizer=CUSTOM_SANITIZER,
    sink_keywords=SINK_KEYWORDS, receiver_writers=RECEIVER_WRITERS,
)

SPEC = LanguageSpec(name="python", suffixes=SUFFIXES, grammar=grammar, syntax=SYNTAX, catalog=CATALOG,
                    function_name=function_name)
