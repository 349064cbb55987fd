"""Java: tree-sitter-java grammar, node-type tables, taint catalogs.

Taint classes, one bit each (names shared with the other languages where they mean the same):

    SQL   SQL injection      sinks JDBC Statement.execute / executeQuery / executeUpdate / addBatch,
                             Connection.prepareStatement / prepareCall / nativeSQL (the query text),
                             JPA / Hibernate createQuery / createNativeQuery / createSQLQuery,
                             Spring JdbcTemplate queryFor*; a PreparedStatement built from a literal
                             query with bound parameters (setString ...) carries no taint into SQL
    CMD   command injection  Runtime.exec, new ProcessBuilder(..), ProcessBuilder.command(..)
    CODE  code injection     ScriptEngine.eval, Class.forName (CWE-94 / CWE-470)
    PATH  path traversal     new File / FileInputStream / FileReader / FileOutputStream / FileWriter,
                             Files.readAllBytes / newInputStream / ... (CWE-22)

Sources: servlet `getParameter` / `getParameterValues` / `getHeader` / `getCookies` / `getQueryString`
/ `getInputStream` / `getReader`, `Scanner.next*`, `BufferedReader.readLine`, `System.getenv`, and
the method's parameters. Sanitizers: `Integer.parseInt` and the other numeric parsers (cut every
class), ESAPI `encodeForSQL` / `encodeForOS`, and project helpers named `sanitize*` / `escape*` /
`validate*` / `isValid*` / `isAllowed*` / `*Allowlist*` / `*Whitelist*` (cut every class; in a
condition they clean their argument, as an allow-list check does).

Methods are named ".name" (the receiver is read; `sb.append(x)` writes x into sb), constructors
by their class name (`new ProcessBuilder(..)` -> "ProcessBuilder"). Class bodies are spliced, so a
whole compilation unit yields one graph per method; `extract_functions` returns methods and
constructors (named `Class.method`); a bare method (no class around it) parses on its own.
"""
from __future__ import annotations

import re

from tree_sitter import Language, Node

from ..taint import TaintCatalog
from .spec import LanguageSpec, Syntax

SUFFIXES = (".java",)


def grammar() -> Language:
    import tree_sitter_java  # imported on first use: the registry stays cheap to import

    return Language(tree_sitter_java.language())


def number_kind(text: bytes) -> str:
    t = text.lower().rstrip(b"lfd")
    if t.startswith(b"0x"):
        return "float" if b"p" in t else "int"
    return "float" if (b"." in t or b"e" in t or text[-1:] in b"fFdD") else "int"


_CLASSES = frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"})


def function_name(node: Node) -> str:
    """`Outer.Inner.method` for a method or constructor (anonymous classes are skipped)."""
    name = node.child_by_field_name("name")
    parts = [name.text.decode("utf-8", "replace") if name is not None else "<anonymous>"]
    p = node.parent
    while p is not None:
        if p.type in _CLASSES:
            cls = p.child_by_field_name("name")
            if cls is not None:
                parts.append(cls.text.decode("utf-8", "replace"))
        p = p.parent
    return ".".join(reversed(parts))


_LITERALS = {
    "string_literal": "string", "text_block": "string", "character_literal": "char", "null_literal": "null",
    "true": "bool", "false": "bool", "decimal_integer_literal": "int", "hex_integer_literal": "int",
    "octal_integer_literal": "int", "binary_integer_literal": "int", "decimal_floating_point_literal": "float",
    "hex_floating_point_literal": "float",
}

SYNTAX = Syntax(
    statements={
        "method_declaration": "function", "constructor_declaration": "function",
        "compact_constructor_declaration": "function", "block": "block", "constructor_body": "block",
        "switch_block": "block", "if_statement": "if", "while_statement": "while", "for_statement": "for",
        "enhanced_for_statement": "for", "do_statement": "do", "switch_expression": "switch",
        "switch_block_statement_group": "case", "labeled_statement": "label",
        "expression_statement": "expression", "explicit_constructor_invocation": "expression",
        "assert_statement": "expression", "local_variable_declaration": "declaration",
        "field_declaration": "declaration", "return_statement": "return", "throw_statement": "return",
        "yield_statement": "return", "break_statement": "break", "continue_statement": "continue",
        "try_statement": "try", "try_with_resources_statement": "try", "catch_clause": "catch",
        "finally_clause": "finally", "synchronized_statement": "with",
    },
    splice=frozenset({
        "program", "class_declaration", "class_body", "interface_declaration", "interface_body",
        "enum_declaration", "enum_body", "enum_body_declarations", "record_declaration", "static_initializer",
    }),
    splice_whole=frozenset({"program"}),
    splice_skip_fields=frozenset({"name", "superclass", "interfaces", "type_parameters", "parameters"}),
    flat_conditions={"if": "if", "while": "while", "switch": "switch", "for": "for"},
    flat_headers=frozenset({"for"}),
    header_close=")",
    parenthesized="parenthesized_expression",
    orphan_headers=frozenset(),
    flat_expressions={
        "method_invocation": "call", "object_creation_expression": "call", "assignment_expression": "assignment",
        "update_expression": "assignment", "variable_declarator": "declaration",
        "local_variable_declaration": "declaration", "binary_expression": "expression",
        "unary_expression": "expression", "field_access": "expression", "array_access": "expression",
        "cast_expression": "expression", "ternary_expression": "expression",
        "parenthesized_expression": "expression", "lambda_expression": "expression",
    },
    expression_kinds={
        "assignment_expression": "assignment", "update_expression": "assignment", "method_invocation": "call",
        "object_creation_expression": "call", "explicit_constructor_invocation": "call",
    },
    comments=frozenset({"line_comment", "block_comment"}),
    attributes=frozenset(),
    else_clause="",  # Java's else is a bare keyword before the alternative
    colon=":",
    default_keyword="default",
    do_keyword="while",
    identifier="identifier",
    literals=_LITERALS,
    number_literals=frozenset({"decimal_integer_literal", "decimal_floating_point_literal"}),
    number_kind=number_kind,
    string_literals=frozenset({"string_literal", "text_block"}),
    type_names=frozenset({
        "type_identifier", "integral_type", "floating_point_type", "boolean_type", "void_type",
    }),
    skip=frozenset({
        "line_comment", "block_comment", "string_fragment", "escape_sequence", "modifiers", "marker_annotation",
        "annotation", "this", "super",
    }),
    call="method_invocation",
    call_fields=("name", "arguments"),
    member="field_access",
    member_field="field",
    assignment="assignment_expression",
    assign_operator="=",
    update="update_expression",
    init_declarator="variable_declarator",
    declarations=frozenset({
        "local_variable_declaration", "field_declaration", "formal_parameter", "catch_formal_parameter",
        "spread_parameter", "resource", "inferred_parameters",
    }),
    declarators=frozenset(),
    function_declarator="",
    operator_parents=frozenset({"binary_expression", "unary_expression", "assignment_expression"}),
    unary_parents=frozenset({"unary_expression"}),
    ambiguous_unary=frozenset({"+", "-"}),
    named_operators={
        "cast_expression": "cast", "array_access": "[]", "ternary_expression": "?:",
        "instanceof_expression": "instanceof", "lambda_expression": "lambda",
        "object_creation_expression": "new", "array_creation_expression": "new",
    },
    address_of=("", ""),
    lvalue_walk={  # a[i], a.f -> a; (a) -> a; (T) a -> a
        "array_access": "first", "field_access": "first", "parenthesized_expression": "named",
        "cast_expression": "last",
    },
    declarator_walk={"variable_declarator": ("first", None)},
    call_object="object",
    member_object="object",
    extra_calls={"object_creation_expression": ("type", "arguments")},
    update_argument="",
    for_targets={"enhanced_for_statement": "name"},
)

# --- taint catalogs ----------------------------------------------------------------------------

SQL, CMD, CODE, PATH = 1, 2, 4, 8
ALL = SQL | CMD | CODE | PATH
TAINT_CLASSES = {"sql": SQL, "command": CMD, "code": CODE, "path": PATH}

SOURCE_CALLS: dict[str, tuple[int, ...]] = dict.fromkeys((
    ".getParameter", ".getParameterValues", ".getParameterMap", ".getHeader", ".getHeaders", ".getCookies",
    ".getQueryString", ".getRequestURI", ".getPathInfo", ".getInputStream", ".getReader", ".getRemoteUser",
    ".nextLine", ".next", ".readLine", ".getenv",
), ())

_Q = (0,)  # the query / command / path: the first argument
SINK_CALLS = {
    **dict.fromkeys((".execute", ".executeQuery", ".executeUpdate", ".executeLargeUpdate", ".addBatch",
                     ".prepareStatement", ".prepareCall", ".nativeSQL", ".createQuery", ".createNativeQuery",
                     ".createSQLQuery", ".queryForList", ".queryForObject", ".queryForMap", ".queryForRowSet"),
                    (SQL, _Q)),
    ".exec": (CMD, _Q), "ProcessBuilder": (CMD, 0), ".command": (CMD, 0),
    ".eval": (CODE, _Q), ".forName": (CODE, _Q),
    **dict.fromkeys(("File", "FileInputStream", "FileOutputStream", "FileReader", "FileWriter", "RandomAccessFile",
                     ".readAllBytes", ".readAllLines", ".newInputStream", ".newOutputStream", ".newBufferedReader",
                     ".newBufferedWriter", ".readString", ".writeString"), (PATH, _Q)),
}

SANITIZER_CALLS: dict[str, int] = {
    **dict.fromkeys((".parseInt", ".parseLong", ".parseShort", ".parseDouble", ".parseFloat", ".parseBoolean",
                     ".toUUID"), ALL),
    ".encodeForSQL": SQL, ".encodeForOS": CMD, ".getFileName": PATH,
}
# Project helpers and allow-list checks: sanitizeName(), escapeSql(), validateColumn(), isValidHost(),
# isAllowedTable(), columnAllowlist.contains() does not match (a bare contains() is too common).
CUSTOM_SANITIZER = re.compile(r"^\.?(?:sanitiz|escape|validat|isValid|isSafe|isAllowed|checkAllowed)|(?:Allowlist|Whitelist)",
                              re.IGNORECASE)
# Methods that append their arguments to the receiver: a StringBuilder built from input is tainted.
RECEIVER_WRITERS = frozenset({".append", ".insert", ".add", ".addAll", ".put", ".putAll", ".concat", ".set"})

CATALOG = TaintCatalog(
    classes=TAINT_CLASSES, source_vars=frozenset(), source_calls=SOURCE_CALLS, writer_calls={},
    variadic_out={}, sink_calls=SINK_CALLS, sink_patterns=(), sanitizer_calls=SANITIZER_CALLS,
    custom_sanitizer=CUSTOM_SANITIZER, receiver_writers=RECEIVER_WRITERS,
)

SPEC = LanguageSpec(name="java", suffixes=SUFFIXES, grammar=grammar, syntax=SYNTAX, catalog=CATALOG,
                    function_name=function_name)
