"""C (and the C subset of C++ headers): tree-sitter-c grammar, node-type tables, taint catalogs.

Taint classes, one bit each, so that a sanitizer only cuts the flows it protects against (a
bounds-checked copy does not make a string safe for SQL):

    BUF  buffer overflow    sinks strcpy, strcat, memcpy, sprintf, gets, ...
                            cut by strncpy, snprintf, strlcpy, ... (bounded copies)
    CMD  command injection  sinks system, popen, exec*; cut by shell quoting
    SQL  SQL injection      sinks mysql_query, sqlite3_exec, PQexec, ...
                            cut by mysql_real_escape_string, PQescape*, sqlite3_mprintf("%q")
    FMT  format string      printf family with a non-literal format argument

Sources (`argv`, `getenv`, `fgets`, `recv`, `read`, `scanf`, ..., and the parameters of the
function) taint every class. Custom `sanitize*` / `escape*` / `validate*` calls cut every class.
A sink only counts the arguments that matter: the source of a copy (not its destination), the
command of `system`, the query of `mysql_query` (not the connection handle), the format of `printf`.

Syntax notes: an `else if` chain is kept flat; `a[i] = ..`, `*p = ..`, `s->f = ..` write the base
variable; preprocessor conditionals and `extern "C"` blocks are spliced into the
enclosing statement list (the core splices ERROR regions of every language).
"""
from __future__ import annotations

import re

from tree_sitter import Language, Node

from ..taint import TaintCatalog
from .spec import LanguageSpec, Syntax

SUFFIXES = (".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh")


def grammar() -> Language:
    import tree_sitter_c  # imported on first use: the registry stays cheap to import

    return Language(tree_sitter_c.language())


def number_kind(text: bytes) -> str:
    t = text.lower()
    if t.startswith(b"0x"):
        return "float" if b"p" in t else "int"  # hex floats need a binary exponent
    return "float" if (b"." in t or b"e" in t) else "int"


def function_name(node: Node) -> str:
    """The identifier of a function definition's declarator, looking through pointers,
    parentheses and the declarators of functions that return function pointers."""
    stack = [node.child_by_field_name("declarator")]
    while stack:
        decl = stack.pop()
        if decl is None:
            continue
        inner = decl.child_by_field_name("declarator")
        if decl.type == "function_declarator" and inner is not None and inner.type in ("identifier", "field_identifier"):
            return inner.text.decode("utf-8", "replace")
        stack.extend(reversed(decl.named_children))
    return "<anonymous>"


_LITERALS = {
    "string_literal": "string", "concatenated_string": "string", "char_literal": "char",
    "null": "null", "true": "bool", "false": "bool", "number_literal": "int",
}

SYNTAX = Syntax(
    statements={
        "function_definition": "function", "compound_statement": "block", "if_statement": "if",
        "while_statement": "while", "for_statement": "for", "do_statement": "do", "switch_statement": "switch",
        "labeled_statement": "label", "case_statement": "case", "expression_statement": "expression",
        "declaration": "declaration", "type_definition": "declaration", "return_statement": "return",
        "break_statement": "break", "continue_statement": "continue", "goto_statement": "goto",
        "attributed_statement": "attributed",
    },
    splice=frozenset({
        "translation_unit", "preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif",
        "preproc_elifdef", "linkage_specification", "declaration_list",
    }),
    splice_whole=frozenset({"translation_unit"}),
    splice_skip_fields=frozenset({"name", "condition"}),
    flat_conditions={"if": "if", "while": "while", "switch": "switch", "for": "for"},
    flat_headers=frozenset({"for"}),
    header_close=")",
    parenthesized="parenthesized_expression",
    orphan_headers=frozenset({"function_declarator"}),
    flat_expressions={
        "call_expression": "call", "assignment_expression": "assignment", "update_expression": "assignment",
        "init_declarator": "declaration", "binary_expression": "expression", "unary_expression": "expression",
        "pointer_expression": "expression", "field_expression": "expression", "subscript_expression": "expression",
        "cast_expression": "expression", "conditional_expression": "expression", "comma_expression": "expression",
        "parenthesized_expression": "expression", "sizeof_expression": "expression",
        "compound_literal_expression": "expression",
    },
    expression_kinds={
        "assignment_expression": "assignment", "update_expression": "assignment", "call_expression": "call",
    },
    comments=frozenset({"comment"}),
    attributes=frozenset({"attribute_declaration"}),
    else_clause="else_clause",
    colon=":",
    default_keyword="default",
    do_keyword="while",
    identifier="identifier",
    literals=_LITERALS,
    number_literals=frozenset({"number_literal"}),
    number_kind=number_kind,
    string_literals=frozenset({"string_literal", "concatenated_string"}),
    type_names=frozenset({"primitive_type", "type_identifier", "sized_type_specifier"}),
    skip=frozenset({
        "field_identifier", "statement_identifier", "comment", "string_content", "escape_sequence",
        "character", "preproc_arg", "preproc_directive", "type_qualifier", "storage_class_specifier",
    }),
    call="call_expression",
    call_fields=("function", "arguments"),
    member="field_expression",
    member_field="field",
    assignment="assignment_expression",
    assign_operator="=",
    update="update_expression",
    init_declarator="init_declarator",
    declarations=frozenset({"declaration", "parameter_declaration"}),
    declarators=frozenset({
        "pointer_declarator", "array_declarator", "function_declarator", "parenthesized_declarator",
        "attributed_declarator",
    }),
    function_declarator="function_declarator",
    operator_parents=frozenset({
        "binary_expression", "unary_expression", "update_expression", "assignment_expression",
        "pointer_expression", "field_expression",
    }),
    unary_parents=frozenset({"unary_expression", "pointer_expression"}),
    ambiguous_unary=frozenset({"+", "-", "*", "&"}),
    named_operators={
        "cast_expression": "cast", "sizeof_expression": "sizeof", "subscript_expression": "[]",
        "conditional_expression": "?:", "offsetof_expression": "offsetof", "alignof_expression": "alignof",
    },
    address_of=("pointer_expression", "&"),
    lvalue_walk={  # a, a[i], a->f, a + i -> a;  *a, (T)a -> a;  (a), a++ -> a
        "subscript_expression": "first", "field_expression": "first", "binary_expression": "first",
        "pointer_expression": "last", "cast_expression": "last",
        "parenthesized_expression": "named", "update_expression": "named",
    },
    declarator_walk={
        "pointer_declarator": ("last", "ptr"), "array_declarator": ("first+rest", "array"),
        "function_declarator": ("first", None), "attributed_declarator": ("first", None),
        "init_declarator": ("first", None), "parenthesized_declarator": ("named", None),
    },
)

# --- taint catalogs ----------------------------------------------------------------------------

BUF, CMD, SQL, FMT = 1, 2, 4, 8
ALL = BUF | CMD | SQL | FMT
TAINT_CLASSES = {"buffer": BUF, "command": CMD, "sql": SQL, "format": FMT}

SOURCE_VARS = frozenset({"argv", "envp", "optarg"})

# Calls that read external input -> arguments they write it into (the return value is tainted too).
SOURCE_CALLS: dict[str, tuple[int, ...]] = {
    "getenv": (), "secure_getenv": (), "getpass": (), "readline": (),
    "getchar": (), "getc": (), "fgetc": (), "getwchar": (), "fgetwc": (),
    "gets": (0,), "fgets": (0,), "fgetws": (0,), "gets_s": (0,), "fread": (0,),
    "getline": (0,), "getdelim": (0,),
    "read": (1,), "pread": (1,), "readv": (1,), "recv": (1,), "recvfrom": (1,), "recvmsg": (1,),
    "SSL_read": (1,), "BIO_read": (1,),
    "scanf": (), "vscanf": (), "fscanf": (), "vfscanf": (), "wscanf": (), "fwscanf": (),
}

# Calls that copy data into an output argument.
WRITER_CALLS: dict[str, tuple[int, ...]] = {
    "strcpy": (0,), "strcat": (0,), "stpcpy": (0,), "wcscpy": (0,), "wcscat": (0,),
    "strncpy": (0,), "strncat": (0,), "strlcpy": (0,), "strlcat": (0,), "stpncpy": (0,),
    "memcpy": (0,), "memmove": (0,), "memset": (0,), "bcopy": (1,), "wmemcpy": (0,),
    "sprintf": (0,), "vsprintf": (0,), "snprintf": (0,), "vsnprintf": (0,), "swprintf": (0,),
    "asprintf": (0,), "vasprintf": (0,), "sqlite3_snprintf": (1,),
    "mysql_real_escape_string": (1,), "mysql_escape_string": (0,), "mysql_real_escape_string_quote": (1,),
    "PQescapeStringConn": (1,), "PQescapeString": (0,),
}

# The scanf family: variadic arguments from this index on are outputs.
VARIADIC_OUT: dict[str, int] = {
    "scanf": 1, "vscanf": 1, "wscanf": 1, "fscanf": 2, "vfscanf": 2, "fwscanf": 2,
    "sscanf": 2, "vsscanf": 2, "swscanf": 2,
}

# Sinks: (classes, arguments that must not carry taint; an int k means "k and all after it").
SINK_CALLS = {
    # buffer overflow: the source and the length, not the destination
    **dict.fromkeys(("strcpy", "strcat", "stpcpy", "wcscpy", "wcscat"), (BUF, (1,))),
    **dict.fromkeys(("memcpy", "memmove", "wmemcpy"), (BUF, (1, 2))),
    "bcopy": (BUF, (0, 2)), "gets": (BUF, ()), "sprintf": (BUF, 1), "vsprintf": (BUF, 1),
    # command injection
    **dict.fromkeys(("system", "popen", "_popen", "_wsystem", "_wpopen", "g_spawn_command_line_sync",
                     "g_spawn_command_line_async"), (CMD, (0,))),
    "fexecve": (CMD, 0),
    # SQL injection: the query text
    **dict.fromkeys(("mysql_query", "mysql_real_query", "mysql_send_query", "mysql_stmt_prepare", "sqlite3_exec",
                     "sqlite3_prepare", "sqlite3_prepare_v2", "sqlite3_prepare_v3", "sqlite3_prepare16",
                     "sqlite3_prepare16_v2", "sqlite3_get_table", "PQexec", "PQexecParams", "PQsendQuery",
                     "PQsendQueryParams", "SQLExecDirect", "SQLPrepare"), (SQL, (1,))),
    "PQprepare": (SQL, (2,)),
}
EXEC_SINK = re.compile(r"^_?w?exec(?:l|lp|le|v|vp|ve|vpe)$")

# printf family: index of the format argument.
FORMAT_ARG: dict[str, int] = {
    "printf": 0, "vprintf": 0, "wprintf": 0, "vwprintf": 0, "printk": 0, "g_print": 0, "g_printf": 0,
    "warn": 0, "warnx": 0, "error_report": 0, "qemu_log": 0,
    "fprintf": 1, "vfprintf": 1, "fwprintf": 1, "sprintf": 1, "vsprintf": 1, "dprintf": 1,
    "vdprintf": 1, "syslog": 1, "vsyslog": 1, "asprintf": 1, "vasprintf": 1, "err": 1, "errx": 1,
    "snprintf": 2, "vsnprintf": 2, "swprintf": 2, "vswprintf": 2, "av_log": 2,
}

SANITIZER_CALLS: dict[str, int] = {
    "strncpy": BUF, "strncat": BUF, "strlcpy": BUF, "strlcat": BUF, "stpncpy": BUF,
    "snprintf": BUF, "vsnprintf": BUF, "g_strlcpy": BUF, "g_snprintf": BUF,
    "mysql_real_escape_string": SQL, "mysql_escape_string": SQL, "mysql_real_escape_string_quote": SQL,
    "PQescapeStringConn": SQL, "PQescapeString": SQL, "PQescapeLiteral": SQL, "PQescapeIdentifier": SQL,
    "sqlite3_escape": SQL, "g_shell_quote": CMD,
}
# sqlite3's printf family escapes only through %q / %Q / %w: index of its format argument.
QUOTE_FORMAT_SANITIZERS: dict[str, int] = {
    "sqlite3_mprintf": 0, "sqlite3_vmprintf": 0, "sqlite3_snprintf": 2, "sqlite3_str_appendf": 1,
}
QUOTE_DIRECTIVE = re.compile(r"%[-+ #0-9.*]*[qQw]")
# Project-specific helpers: sanitize_input(), escape_shell(), av_escape(), validate_len(), ...
CUSTOM_SANITIZER = re.compile(r"(?:^|_)(?:sanitiz|escape|validat)", re.IGNORECASE)

CATALOG = TaintCatalog(
    classes=TAINT_CLASSES, source_vars=SOURCE_VARS, source_calls=SOURCE_CALLS, writer_calls=WRITER_CALLS,
    variadic_out=VARIADIC_OUT, sink_calls=SINK_CALLS, sink_patterns=((EXEC_SINK, CMD, 0),),
    format_args=FORMAT_ARG, format_class=FMT, sanitizer_calls=SANITIZER_CALLS,
    quote_format_sanitizers=QUOTE_FORMAT_SANITIZERS, quote_directive=QUOTE_DIRECTIVE, quote_class=SQL,
    custom_sanitizer=CUSTOM_SANITIZER,
)

SPEC = LanguageSpec(name="c", suffixes=SUFFIXES, grammar=grammar, syntax=SYNTAX, catalog=CATALOG,
                    function_name=function_name)
