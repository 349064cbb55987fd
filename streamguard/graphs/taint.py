"""Taint catalogs (sources, sinks, sanitizers) and taint propagation over def-use chains.

This module knows nothing about parsing. The builder describes each call it finds as
`(name, args)`, where every argument is a triple:

- `("lit", text, ())`     a string literal (or concatenation of literals), with its source text;
- `("addr", var, names)`  an address-of expression `&x`;
- `("expr", var, names)`  anything else;

where `var` is the base variable (`a` for `a`, `a[i]`, `a->f`, `*a`, `a + 1`; None if there is
none) and `names` every variable the argument reads.

`call_effects` turns the calls of one statement into its taint roles, and `propagate` runs the
taint over the statement-level def -> use edges (one per variable). A sink only counts the
arguments that matter: the source of a copy (not its destination), the command of `system`,
the query of `mysql_query` (not the connection handle), the format of `printf`.

Taint is tracked per vulnerability class, as a bit mask, so that a sanitizer only cuts the
flows it actually protects against (a bounds-checked copy does not make a string safe for SQL):

    BUF  buffer overflow    sinks strcpy, strcat, memcpy, sprintf, gets, ...
                            cut by strncpy, snprintf, strlcpy, ... (bounded copies)
    CMD  command injection  sinks system, popen, exec*; cut by shell quoting
    SQL  SQL injection      sinks mysql_query, sqlite3_exec, PQexec, ...
                            cut by mysql_real_escape_string, PQescape*, sqlite3_mprintf("%q")
    FMT  format string      printf family with a non-literal format argument

Sources (`argv`, `getenv`, `fgets`, `recv`, `read`, `scanf`, ..., and the parameters of the
function) taint every class. Custom `sanitize*` / `escape*` / `validate*` calls cut every class.
A variable overwritten with a constant is clean because its new definition uses nothing tainted.
"""
from __future__ import annotations

import dataclasses
import functools
import re

from .dataflow import forward_fixpoint

BUF, CMD, SQL, FMT = 1, 2, 4, 8
ALL = BUF | CMD | SQL | FMT
TAINT_CLASSES = {"buffer": BUF, "command": CMD, "sql": SQL, "format": FMT}

# Variables that hold attacker-controlled data wherever they appear.
SOURCE_VARS = frozenset({"argv", "envp", "optarg"})

# Calls that read external input. Value: indices of the arguments they write the input into
# (the return value is always tainted too).
SOURCE_CALLS: dict[str, tuple[int, ...]] = {
    "getenv": (), "secure_getenv": (), "getpass": (), "readline": (),
    "getchar": (), "getc": (), "fgetc": (), "getwchar": (), "fgetwc": (),
    "gets": (0,), "fgets": (0,), "fgetws": (0,), "gets_s": (0,), "fread": (0,),
    "getline": (0,), "getdelim": (0,),
    "read": (1,), "pread": (1,), "readv": (1,), "recv": (1,), "recvfrom": (1,), "recvmsg": (1,),
    "SSL_read": (1,), "BIO_read": (1,),
    "scanf": (), "vscanf": (), "fscanf": (), "vfscanf": (), "wscanf": (), "fwscanf": (),
}

# Calls that copy data into an output argument; the written argument is (re)defined by the
# statement and carries whatever taint the statement reads.
WRITER_CALLS: dict[str, tuple[int, ...]] = {
    "strcpy": (0,), "strcat": (0,), "stpcpy": (0,), "wcscpy": (0,), "wcscat": (0,),
    "strncpy": (0,), "strncat": (0,), "strlcpy": (0,), "strlcat": (0,), "stpncpy": (0,),
    "memcpy": (0,), "memmove": (0,), "memset": (0,), "bcopy": (1,), "wmemcpy": (0,),
    "sprintf": (0,), "vsprintf": (0,), "snprintf": (0,), "vsnprintf": (0,), "swprintf": (0,),
    "asprintf": (0,), "vasprintf": (0,), "sqlite3_snprintf": (1,),
    "mysql_real_escape_string": (1,), "mysql_escape_string": (0,), "mysql_real_escape_string_quote": (1,),
    "PQescapeStringConn": (1,), "PQescapeString": (0,),
}

# Calls whose variadic arguments from this index on are outputs (the scanf family).
VARIADIC_OUT: dict[str, int] = {
    "scanf": 1, "vscanf": 1, "wscanf": 1, "fscanf": 2, "vfscanf": 2, "fwscanf": 2,
    "sscanf": 2, "vsscanf": 2, "swscanf": 2,
}

# Sinks: (classes, arguments that must not carry taint). The arguments are a tuple of indices,
# or an int k meaning "argument k and all after it".
ArgSpec = tuple[int, ...] | int
SINK_CALLS: dict[str, tuple[int, ArgSpec]] = {
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
_EXEC_SINK = re.compile(r"^_?w?exec(?:l|lp|le|v|vp|ve|vpe)$")

# printf family: index of the format argument; a non-literal format is a format-string sink.
FORMAT_ARG: dict[str, int] = {
    "printf": 0, "vprintf": 0, "wprintf": 0, "vwprintf": 0, "printk": 0, "g_print": 0, "g_printf": 0,
    "warn": 0, "warnx": 0, "error_report": 0, "qemu_log": 0,
    "fprintf": 1, "vfprintf": 1, "fwprintf": 1, "sprintf": 1, "vsprintf": 1, "dprintf": 1,
    "vdprintf": 1, "syslog": 1, "vsyslog": 1, "asprintf": 1, "vasprintf": 1, "err": 1, "errx": 1,
    "snprintf": 2, "vsnprintf": 2, "swprintf": 2, "vswprintf": 2, "av_log": 2,
}

# Known sanitizers: the classes they cut from everything the statement defines.
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
_QUOTE_DIRECTIVE = re.compile(r"%[-+ #0-9.*]*[qQw]")
# Project-specific helpers: sanitize_input(), escape_shell(), av_escape(), validate_len(), ...
_CUSTOM_SANITIZER = re.compile(r"(?:^|_)(?:sanitiz|escape|validat)", re.IGNORECASE)


def is_custom_sanitizer(name: str) -> bool:
    """A project-specific sanitizer by name (catalogued library sanitizers excluded)."""
    return name not in SANITIZER_CALLS and name not in QUOTE_FORMAT_SANITIZERS and bool(_CUSTOM_SANITIZER.search(name))


_RELEVANT = frozenset(SOURCE_CALLS) | frozenset(WRITER_CALLS) | frozenset(VARIADIC_OUT) | frozenset(SINK_CALLS) \
    | frozenset(FORMAT_ARG) | frozenset(SANITIZER_CALLS) | frozenset(QUOTE_FORMAT_SANITIZERS)


@functools.lru_cache(maxsize=65536)
def is_relevant(name: str) -> bool:
    """Whether a call can play any taint role (the builder describes only these calls' arguments)."""
    return name in _RELEVANT or bool(_EXEC_SINK.match(name)) or bool(_CUSTOM_SANITIZER.search(name))


def _spec_args(spec: ArgSpec, args: list) -> list:
    if isinstance(spec, int):
        return args[spec:]
    return [args[i] for i in spec if i < len(args)]


def sinks(name: str, args: list[tuple[str, str | None, tuple[str, ...]]]) -> tuple[int, dict[str, int]]:
    """(classes for which the call is a sink, {variable read by a sensitive argument: classes})."""
    mask, spec = SINK_CALLS.get(name, (0, ()))
    if not mask and _EXEC_SINK.match(name):
        mask, spec = CMD, 0
    watched: dict[str, int] = {}
    for _, _, names in _spec_args(spec, args):
        for v in names:
            watched[v] = watched.get(v, 0) | mask
    fmt = FORMAT_ARG.get(name)
    if fmt is not None and fmt < len(args) and args[fmt][0] != "lit":
        mask |= FMT
        for v in args[fmt][2]:
            watched[v] = watched.get(v, 0) | FMT
    return mask, watched


def sanitize_mask(name: str, args: list[tuple[str, str | None, tuple[str, ...]]]) -> int:
    """Classes a call cuts from the data it produces (0 when it is no sanitizer)."""
    mask = SANITIZER_CALLS.get(name, 0)
    fmt = QUOTE_FORMAT_SANITIZERS.get(name)
    if fmt is not None and fmt < len(args) and args[fmt][0] == "lit" and _QUOTE_DIRECTIVE.search(args[fmt][1] or ""):
        mask |= SQL
    if is_custom_sanitizer(name):
        mask = ALL
    return mask


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


def call_effects(calls: list[tuple[str, list[tuple[str, str | None, tuple[str, ...]]]]]) -> Effects:
    """Combine the taint roles of the calls one statement makes."""
    if not calls:
        return NO_EFFECTS
    eff = Effects()
    for name, args in calls:
        out: tuple[int, ...] = ()
        if name in SOURCE_CALLS:
            eff.source = True
            out = SOURCE_CALLS[name]
        out = out or WRITER_CALLS.get(name, ())
        for i in out:
            if i < len(args) and args[i][1]:
                eff.writes.append(args[i][1])
        start = VARIADIC_OUT.get(name)
        if start is not None:
            eff.writes.extend(a[1] for a in args[start:] if a[1])
        mask, watched = sinks(name, args)
        eff.sink_mask |= mask
        for v, m in watched.items():
            eff.sink_vars[v] = eff.sink_vars.get(v, 0) | m
        san = sanitize_mask(name, args)
        if san:
            eff.sanitize_mask |= san
            if is_custom_sanitizer(name):
                eff.in_place.extend(a[1] for a in args if a[1] and a[0] != "lit")
    return eff


def propagate(
    n: int,
    deps: list[tuple[int, int, str]],
    source: list[bool],
    sanitize: list[int],
    sink_vars: list[dict[str, int]],
) -> tuple[list[int], list[int], list[tuple[int, int]]]:
    """Run taint over def -> use edges `(def node, use node, variable)`.

    A statement's definitions carry `(ALL if it is a source else OR of the taint it reads)` minus
    the classes it sanitizes. Returns `(incoming, outgoing, taint_edges)`: the taint masks each
    statement reads and defines, and the (def node, use node) edges on a path that carries taint
    of a class into a sensitive argument of a sink of that class.
    """
    into: list[list[tuple[int, str]]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for d, u, v in deps:
        into[u].append((d, v))
        succs[d].append(u)
    preds = [[d for d, _ in into[u]] for u in range(n)]
    incoming, out = forward_fixpoint(preds, succs, lambda i, m: (ALL if source[i] else m) & ~sanitize[i])
    # Keep only flows that end in a sink of their class: backward search per class.
    edges: set[tuple[int, int]] = set()
    for cls in TAINT_CLASSES.values():
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
