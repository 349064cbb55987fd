"""Deterministic generator of C functions with injected vulnerabilities and their patched twins.

Each pair is one C function in two versions built from the same random draws: the vulnerable one lets
tainted input (getenv, argv, fgets, recv, read, scanf) reach a sink, the safe twin does not. The twins
call the same functions and use the same literals; only the data flow differs (which variable reaches
the sink, the order of an overwrite or a check, whether a check rejects). A bag-of-tokens model therefore
sees near-identical inputs for the two labels, while a model that follows data flow can separate them.

Families: CWE-89 (SQL built from input reaching mysql_query / sqlite3_exec / PQexec / sqlite3_prepare_v2),
CWE-78 (system / popen / execl), CWE-134 (printf / fprintf / syslog with a tainted format),
CWE-120 (strcpy / strcat / sprintf into a fixed stack buffer), CWE-121 (memcpy / memmove / strncpy into a
stack buffer with a tainted length).

Everything is drawn from one `random.Random(seed)`, so a seed gives byte-identical output.
"""
from __future__ import annotations

import math
import random
import re
from typing import Callable, Sequence

from ..errors import ConfigError

CWE_FAMILIES: tuple[str, ...] = ("CWE-89", "CWE-78", "CWE-134", "CWE-120", "CWE-121")

# Safe-twin strategies. Every strategy keeps the twins' called-function sets equal.
#  swap      the sink gets a constant (or a bounded length) in the safe twin, the tainted value in the
#            vulnerable one; the other value is used harmlessly in both
#  overwrite the taint is overwritten by a constant before the sink (vulnerable: the reverse order)
#  guard     a sanitizer / bounds check guards the sink (vulnerable: checked too late or checks the
#            wrong variable)
#  flag      the check result is computed in both, but only the safe twin rejects on it
#  fmt       CWE-134 only: "%s" format for the tainted value, the constant as the format
#  prepared  CWE-89 only: the tainted value is bound as a parameter, the constant is spliced into SQL
_STRATEGIES: dict[str, tuple[tuple[str, int], ...]] = {
    "CWE-89": (("swap", 3), ("overwrite", 2), ("guard", 3), ("flag", 3), ("prepared", 2)),
    "CWE-78": (("swap", 3), ("overwrite", 2), ("guard", 3), ("flag", 3)),
    "CWE-134": (("swap", 2), ("overwrite", 2), ("guard", 2), ("flag", 3), ("fmt", 3)),
    "CWE-120": (("swap", 3), ("overwrite", 2), ("guard", 3), ("flag", 3)),
    "CWE-121": (("swap", 3), ("overwrite", 2), ("guard", 3), ("flag", 3)),
}

# --- identifier pools (one shared pool per kind so a name says nothing about its role) -------------
_STR_NAMES = (
    "name", "user", "input", "arg", "path", "value", "host", "entry", "token", "field", "param", "text",
    "item", "key", "label", "title", "target", "source", "line", "word", "msg", "data", "payload",
    "request", "file", "dir", "url", "login", "account", "owner", "comment", "filter", "pattern",
    "option", "spec", "alias", "nick", "tag", "topic", "query_arg", "selector", "locale", "theme",
)
_STR_SUFFIXES = ("", "", "", "_str", "_s", "_in", "_val", "2", "_ptr", "_p")
_BUF_NAMES = ("buf", "dst", "out", "tmp", "line_buf", "scratch", "local", "dest", "copy", "work", "store",
              "result", "holder", "space", "field_buf", "name_buf", "msg_buf", "block")
_INT_NAMES = ("i", "j", "k", "n", "len", "count", "total", "rc", "status", "flags", "idx", "pos", "size",
              "limit", "depth", "retries", "acc", "sum", "hits", "misses", "width", "step", "off", "cnt")
_LEN_NAMES = ("n", "len", "want", "nbytes", "copy_len", "safe_len", "bounded", "capped", "room", "amount",
              "sz", "span", "extent", "need")
_INT_SUFFIXES = ("", "", "_n", "2", "_v", "_cur")
_VERBS = ("handle", "process", "load", "parse", "update", "run", "exec", "build", "read", "apply", "check",
          "store", "fetch", "render", "init", "dispatch", "lookup", "save", "open", "sync", "emit", "prepare")
_NOUNS = ("user", "config", "request", "session", "record", "entry", "profile", "query", "command", "path",
          "message", "header", "account", "item", "log", "job", "report", "token", "file", "option", "task")
_PREFIXES = ("", "", "srv_", "db_", "cli_", "app_", "net_", "util_", "core_", "mod_")
_HELPERS = ("trim_spaces", "normalize_input", "skip_ws", "canonicalize", "lowercase_copy", "unescape_str",
            "strip_quotes", "decode_field", "next_token", "collapse_slashes")
_LOGGERS = ("log_debug", "trace_msg", "debug_print", "audit_note", "log_verbose")
_VALIDATORS = {  # project-specific predicates: true when the value is acceptable
    "CWE-78": ("validate_filename", "validate_hostname", "is_safe_arg", "check_shell_chars"),
    "CWE-89": ("validate_ident", "validate_username", "is_alnum_string", "check_sql_chars"),
}
_ENV_NAMES = ("USER_NAME", "APP_TARGET", "HOME_DIR", "REQ_PATH", "SESSION_ID", "LOG_TAG", "QUERY_KEY",
              "REMOTE_HOST", "BACKUP_DIR", "DISPLAY_NAME", "CFG_VALUE", "EDITOR_CMD")
_LITERALS = {
    "CWE-89": ("guest", "admin", "anonymous", "default", "system", "nobody"),
    "CWE-78": ("/tmp/cache", "/var/log", "localhost", "report.txt", "/srv/data", "backup.tar"),
    "CWE-78-direct": ("uptime", "ls -l /tmp", "date", "df -h", "whoami", "sync"),
    "CWE-134": ("starting up\n", "request done\n", "no data\n", "retrying\n", "connection closed\n", "idle\n"),
    "CWE-120": ("guest", "default", "none", "local", "unknown", "empty"),
}
_SQL = ("SELECT id FROM users WHERE name = '%s'", "DELETE FROM sessions WHERE token = '%s'",
        "UPDATE accounts SET last_login = 0 WHERE login = '%s'",
        "SELECT * FROM items WHERE tag = '%s' ORDER BY id", "INSERT INTO audit(actor) VALUES ('%s')",
        "SELECT email FROM profiles WHERE nick = '%s' LIMIT 1")
# One column spliced in with %s, one bound with ?: the prepared-statement strategy swaps which gets the input.
_SQL_BIND = ("SELECT id FROM users WHERE name = '%s' AND role = ?",
             "DELETE FROM sessions WHERE owner = '%s' AND token = ?",
             "UPDATE accounts SET status = ? WHERE login = '%s'",
             "SELECT * FROM items WHERE tag = '%s' AND region = ? ORDER BY id",
             "INSERT INTO audit(actor, action) VALUES ('%s', ?)")
_CMDS = ("ls -l %s", "tar czf /tmp/backup.tgz %s", "ping -c 1 %s", "grep -n error %s", "du -sh %s", "cat %s")
_SHELL_META = '";|&$`<>"'
_SQL_ALLOWED = '"abcdefghijklmnopqrstuvwxyz0123456789_"'
_MESSAGES = ("starting", "done", "skip", "retry", "ready", "flush")

Lines = list[tuple[int, str]]  # (relative indentation depth, text)


class _Fn:
    """Random draws and the set of names used in one function (shared by both twins)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()
        self.params: list[str] = []  # "type name" entries of the signature
        self.int_params: list[str] = []  # int flags/counters the wrappers and dead code test
        self.bufs: list[str] = []  # scratch buffers declared at the top (distractors may memset them)
        self.buf_decls: Lines = []

    def fresh(self, pool: Sequence[str], suffixes: Sequence[str] = ("",)) -> str:
        for _ in range(20):
            name = self.rng.choice(pool) + self.rng.choice(suffixes)
            if name not in self.used:
                self.used.add(name)
                return name
        base = self.rng.choice(pool)
        k = 2
        while f"{base}{k}" in self.used:
            k += 1
        self.used.add(f"{base}{k}")
        return f"{base}{k}"

    def s(self) -> str:
        return self.fresh(_STR_NAMES, _STR_SUFFIXES)

    def i(self) -> str:
        return self.fresh(_INT_NAMES, _INT_SUFFIXES)

    def b(self) -> str:
        return self.fresh(_BUF_NAMES)

    def pick(self, seq: Sequence):
        return self.rng.choice(seq)


def _c_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _block(head: str, body: Lines, tail: str = "}") -> Lines:
    return [(0, head)] + [(d + 1, t) for d, t in body] + [(0, tail)]


# --- shared statements: distractors, harmless uses, dead code -------------------------------------------
def _distractor(f: _Fn) -> Lines:
    a, r = f.i(), f.rng
    kind = r.randrange(8)
    k, m = r.randint(2, 9), r.randint(3, 97)
    if kind == 0:
        return [(0, f"int {a} = {k};"), (0, f"{a} = ({a} * {m}) % {r.randint(5, 251)};")]
    if kind == 1:
        i = f.i()
        return [(0, f"unsigned {a} = 0;")] + _block(f"for (int {i} = 0; {i} < {k}; {i}++) {{",
                                                    [(0, f"{a} += (unsigned){i} * {m}u;")])
    if kind == 2:
        return [(0, f"{f.pick(_LOGGERS)}({_c_str(f.pick(_MESSAGES) + ' ' + str(m))});")]
    if kind == 3 and f.bufs:
        buf = f.pick(f.bufs)
        return [(0, f"memset({buf}, 0, sizeof({buf}));")]
    if kind == 4:
        return [(0, f"long {a} = {m}L;")] + _block(f"if ({a} > {k * 10}) {{", [(0, f"{a} -= {k};")])
    if kind == 5:
        return [(0, f"double {a} = {m}.{k};"), (0, f"{a} = {a} / 2.0;")]
    if kind == 6:
        b = f.i()
        return [(0, f"const int {a}[3] = {{ {k}, {m}, {k + m} }};"), (0, f"int {b} = {a}[0] + {a}[2];")]
    c = f.i()
    return [(0, f"int {a} = {k};"), (0, f"int {c} = 0;")] + _block(
        f"while ({a}-- > 0) {{", [(0, f"{c} += {a} & {m};")])


def _harmless_use(f: _Fn, numeric: bool) -> Callable[[str], Lines]:
    """A use of a value that is no sink, drawn once so both twins can apply it to different values."""
    v = f.i()
    if numeric:
        m = f.rng.randint(3, 61)
        return lambda x: [(0, f"unsigned long {v} = (unsigned long){x} * {m}u;")]
    kind = f.rng.randrange(4)
    if kind == 0:
        return lambda x: [(0, f"size_t {v} = strlen({x});")]
    if kind == 1:
        return lambda x: [(0, f"int {v} = ({x}[0] == '\\0');")]
    if kind == 2:
        word = _c_str(f.pick(_MESSAGES))
        return lambda x: [(0, f"int {v} = strcmp({x}, {word}) == 0;")]
    p, ch = f.s(), f.pick("/.:=-")
    return lambda x: [(0, f"const char *{p} = strchr({x}, '{ch}');")]


def _dead_code(f: _Fn) -> Lines:
    body = _distractor(f)
    kind = f.rng.randrange(3)
    if kind == 0:
        return _block("if (0) {", body)
    if kind == 1:
        return _block("while (0) {", body)
    if f.int_params:
        p = f.pick(f.int_params)
        return _block(f"if ({p} < 0 && {p} > 0) {{", body)
    return _block("if (0) {", body)


# --- taint sources -----------------------------------------------------------------------------------
def _source(f: _Fn, fail: str) -> tuple[Lines, str]:
    """Lines that read attacker-controlled text into a fresh variable; returns (lines, variable)."""
    t, r = f.s(), f.rng
    kind = r.randrange(6)
    if kind == 0:
        lines = [(0, f"const char *{t} = getenv({_c_str(f.pick(_ENV_NAMES))});")]
        return lines + _block(f"if ({t} == NULL) {{", [(0, fail)]), t
    if kind == 1:
        f.params.append("int argc, char **argv")  # kept together when the signature is shuffled
        k = r.randint(1, 3)
        return _block(f"if (argc <= {k}) {{", [(0, fail)]) + [(0, f"const char *{t} = argv[{k}];")], t
    size = r.choice((128, 256, 512, 1024))
    if kind == 2:
        lines = [(0, f"char {t}[{size}];")] + _block(f"if (fgets({t}, sizeof({t}), stdin) == NULL) {{",
                                                      [(0, fail)])
        if r.random() < 0.5:
            lines.append((0, f"{t}[strcspn({t}, \"\\n\")] = '\\0';"))
        return lines, t
    if kind in (3, 4):
        fd, fn = ("sock", "recv") if kind == 3 else ("fd", "read")
        f.params.append(f"int {fd}")
        got = f.i()
        extra = ", 0" if kind == 3 else ""
        lines = [(0, f"char {t}[{size}];"),
                 (0, f"ssize_t {got} = {fn}({fd}, {t}, sizeof({t}) - 1{extra});")]
        return lines + _block(f"if ({got} <= 0) {{", [(0, fail)]) + [(0, f"{t}[{got}] = '\\0';")], t
    lines = [(0, f"char {t}[{size}];")]
    return lines + _block(f"if (scanf(\"%{size - 1}s\", {t}) != 1) {{", [(0, fail)]), t


def _hops(f: _Fn, start: str) -> tuple[list[Lines], str]:
    """Copy the tainted value through 0-3 variables, helpers, buffers and branches."""
    units, cur = [], start
    for _ in range(f.rng.choice((0, 1, 1, 2, 2, 3))):
        nxt, kind = f.s(), f.rng.randrange(4)
        if kind == 0:
            units.append([(0, f"const char *{nxt} = {cur};")])
        elif kind == 1:
            units.append([(0, f"const char *{nxt} = {f.pick(_HELPERS)}({cur});")])
        elif kind == 2:
            tmp = f.b()
            f.bufs.append(tmp)
            f.buf_decls.append((0, f"char {tmp}[{f.rng.choice((256, 512, 1024))}];"))
            units.append([(0, f"snprintf({tmp}, sizeof({tmp}), \"%s\", {cur});"),
                          (0, f"const char *{nxt} = {tmp};")])
        else:
            ch = f.pick(" /-")
            units.append([(0, f"const char *{nxt};")]
                         + _block(f"if ({cur}[0] == '{ch}') {{", [(0, f"{nxt} = {cur} + 1;")], "} else {")
                         + [(1, f"{nxt} = {cur};"), (0, "}")])
        cur = nxt
    return units, cur


# --- sinks -------------------------------------------------------------------------------------------
class _Sink:
    """How one sink is declared and called, and what makes a value unsafe for it."""

    def __init__(self, decls: Lines, render: Callable[[str], Lines], bad: Callable[[str], str],
                 literal_pool: str, numeric: bool = False):
        self.decls, self.render, self.bad = decls, render, bad
        self.literal_pool, self.numeric = literal_pool, numeric
        self.head = ""  # CWE-134: the call prefix, reused by the "%s" strategy
        self.buf = ""  # CWE-121: destination buffer
        self.src = ""  # CWE-121: bytes copied (the length is the tainted value)


def _sink_89(f: _Fn, fail: str) -> _Sink:
    q, sql, api = f.b(), f.pick(_SQL), f.rng.randrange(3)
    decls = [(0, f"char {q}[{f.rng.choice((256, 512, 1024))}];")]
    if api == 0:
        conn = f.fresh(("conn", "mysql", "handle", "dbh"))
        f.params.append(f"MYSQL *{conn}")
        run = _block(f"if (mysql_query({conn}, {q}) != 0) {{", [(0, fail)])
    elif api == 1:
        db, err = f.fresh(("db", "sqlite", "store_db", "dbh")), f.fresh(("err", "errmsg", "zerr"))
        f.params.append(f"sqlite3 *{db}")
        decls.append((0, f"char *{err} = NULL;"))
        run = _block(f"if (sqlite3_exec({db}, {q}, NULL, NULL, &{err}) != SQLITE_OK) {{",
                     [(0, f"sqlite3_free({err});"), (0, fail)])
    else:
        conn, res = f.fresh(("conn", "pg", "pgconn", "link")), f.fresh(("res", "result_set", "pgres"))
        f.params.append(f"PGconn *{conn}")
        run = [(0, f"PGresult *{res} = PQexec({conn}, {q});"), (0, f"PQclear({res});")]

    def render(x: str) -> Lines:
        return [(0, f"snprintf({q}, sizeof({q}), {_c_str(sql)}, {x});")] + run

    return _Sink(decls, render, _validator_check(f, "CWE-89"), "CWE-89")


def _validator_check(f: _Fn, cwe: str) -> Callable[[str], str]:
    kind = f.rng.randrange(3)
    if kind == 0:
        name = f.pick(_VALIDATORS[cwe])
        return lambda x: f"!{name}({x})"
    if cwe == "CWE-78":
        return lambda x: f"strpbrk({x}, {_SHELL_META}) != NULL"
    return lambda x: f"strspn({x}, {_SQL_ALLOWED}) != strlen({x})"


def _sink_78(f: _Fn, fail: str) -> _Sink:
    api, built = f.rng.randrange(3), f.rng.random() < 0.6
    decls: Lines = []
    cmd = f.b() if built else None
    if built:
        decls.append((0, f"char {cmd}[{f.rng.choice((256, 512, 1024))}];"))
    fmt = f.pick(_CMDS)
    fp = f.fresh(("fp", "pipe_fp", "proc", "stream"))
    st = f.i()

    def render(x: str) -> Lines:
        lines: Lines = []
        arg = x
        if built:
            lines.append((0, f"snprintf({cmd}, sizeof({cmd}), {_c_str(fmt)}, {x});"))
            arg = cmd
        if api == 0:
            return lines + [(0, f"int {st} = system({arg});")] + _block(f"if ({st} != 0) {{", [(0, fail)])
        if api == 1:
            return lines + [(0, f"FILE *{fp} = popen({arg}, \"r\");")] + _block(
                f"if ({fp} != NULL) {{", [(0, f"pclose({fp});")])
        return lines + [(0, f"execl(\"/bin/sh\", \"sh\", \"-c\", {arg}, (char *)NULL);")]

    return _Sink(decls, render, _validator_check(f, "CWE-78"), "CWE-78" if built else "CWE-78-direct")


def _sink_134(f: _Fn, fail: str) -> _Sink:
    api = f.rng.randrange(3)
    head = ("printf(", "fprintf(stderr, ", "syslog(LOG_WARNING, ")[api]

    def render(x: str) -> Lines:
        return [(0, f"{head}{x});")]

    sink = _Sink([], render, lambda x: f"strchr({x}, '%') != NULL", "CWE-134")
    sink.head = head
    return sink


def _sink_120(f: _Fn, fail: str) -> _Sink:
    buf, size, api = f.b(), f.rng.choice((32, 48, 64, 100, 128)), f.rng.randrange(3)
    pre = f.pick(("id=", "user:", "name ", "key=", "tag:"))
    if api == 0:
        extra = 0
        render = lambda x: [(0, f"strcpy({buf}, {x});")]  # noqa: E731
    elif api == 1:
        extra = len(pre)
        render = lambda x: [(0, f"strcpy({buf}, {_c_str(pre)});"), (0, f"strcat({buf}, {x});")]  # noqa: E731
    else:
        post = f.pick(("", ";", "]", "\n"))
        extra = len(pre) + len(post)
        render = lambda x: [(0, f"sprintf({buf}, {_c_str(pre + '%s' + post)}, {x});")]  # noqa: E731
    room = f"sizeof({buf})" + (f" - {extra}" if extra else "")
    return _Sink([(0, f"char {buf}[{size}];")], render, lambda x: f"strlen({x}) >= {room}", "CWE-120")


def _sink_121(f: _Fn, fail: str) -> _Sink:
    buf, size = f.b(), f.rng.choice((16, 32, 48, 64, 100, 128))
    call = f.pick(("memcpy", "memmove", "strncpy"))
    sink = _Sink([(0, f"char {buf}[{size}];")], lambda n: [(0, f"{call}({buf}, {sink.src}, {n});")],
                 lambda n: f"{n} > sizeof({buf})", "CWE-121", numeric=True)
    sink.buf = buf
    return sink


_SINKS = {"CWE-89": _sink_89, "CWE-78": _sink_78, "CWE-134": _sink_134, "CWE-120": _sink_120,
          "CWE-121": _sink_121}


# --- one pair ------------------------------------------------------------------------------------------
def _weighted(rng: random.Random, options: Sequence[tuple[str, int]]) -> str:
    total = sum(w for _, w in options)
    x = rng.randrange(total)
    for name, w in options:
        if x < w:
            return name
        x -= w
    raise AssertionError("unreachable")


def _core(f: _Fn, strategy: str, sink: _Sink, tv: str, cv: str, fail: str) -> tuple[Lines, Lines, Lines]:
    """(shared prefix, vulnerable core, safe core) for the chosen strategy."""
    num, r = sink.numeric, f.rng
    shared: Lines = []
    if strategy == "swap":
        use_first, use = r.random() < 0.5, _harmless_use(f, num)

        def swap(to_sink: str, to_use: str) -> Lines:
            return use(to_use) + sink.render(to_sink) if use_first else sink.render(to_sink) + use(to_use)

        return shared, swap(tv, cv), swap(cv, tv)
    if strategy == "overwrite":
        v = f.fresh(_LEN_NAMES, _INT_SUFFIXES) if num else f.s()
        decl = "size_t" if num else "const char *"
        gap = _distractor(f) if r.random() < 0.5 else []
        sep = "" if decl.endswith("*") else " "

        def ow(first: str, second: str) -> Lines:
            return [(0, f"{decl}{sep}{v} = {first};")] + gap + [(0, f"{v} = {second};")] + sink.render(v)

        return shared, ow(cv, tv), ow(tv, cv)
    if strategy == "guard":
        guard_t = _block(f"if ({sink.bad(tv)}) {{", [(0, fail)])
        if r.random() < 0.5:
            vuln = sink.render(tv) + guard_t  # checked too late
        else:
            vuln = _block(f"if ({sink.bad(cv)}) {{", [(0, fail)]) + sink.render(tv)  # checks the wrong value
        return shared, vuln, guard_t + sink.render(tv)
    if strategy == "flag":
        ok, warn = f.i(), f.i()
        shared = [(0, f"int {warn} = 0;"), (0, f"int {ok} = {sink.bad(tv)};")]
        vuln = _block(f"if ({ok}) {{", [(0, f"{warn}++;")]) + sink.render(tv)
        safe = _block(f"if ({ok}) {{", [(0, f"{warn}++;"), (0, fail)]) + sink.render(tv)
        return shared, vuln, safe
    if strategy == "fmt":
        nl = r.choice(("%s", "%s\n", "[%s]\n"))

        def fmt(as_format: str, as_arg: str) -> Lines:
            return [(0, f"{sink.head}{_c_str(nl)}, {as_arg});"), (0, f"{sink.head}{as_format});")]

        return shared, fmt(tv, cv), fmt(cv, tv)
    # prepared (CWE-89): the twin that splices the constant and binds the input is safe
    db, stmt = f.fresh(("db", "sqlite", "store_db", "dbh")), f.fresh(("stmt", "st", "prep", "query_stmt"))
    sql, fmt_sql = f.b(), f.pick(_SQL_BIND)
    f.params.append(f"sqlite3 *{db}")
    shared = [(0, f"char {sql}[512];"), (0, f"sqlite3_stmt *{stmt} = NULL;")]

    def prep(spliced: str, bound: str) -> Lines:
        return ([(0, f"snprintf({sql}, sizeof({sql}), {_c_str(fmt_sql)}, {spliced});")]
                + _block(f"if (sqlite3_prepare_v2({db}, {sql}, -1, &{stmt}, NULL) != SQLITE_OK) {{", [(0, fail)])
                + [(0, f"sqlite3_bind_text({stmt}, 1, {bound}, -1, SQLITE_TRANSIENT);"),
                   (0, f"sqlite3_step({stmt});"), (0, f"sqlite3_finalize({stmt});")])

    return shared, prep(tv, cv), prep(cv, tv)


def _wrapper(f: _Fn) -> Callable[[Lines], Lines]:
    """A branch or loop around the core, drawn once and applied to both twins."""
    kind = f.rng.randrange(5)
    if kind == 0:
        return lambda body: body
    if kind == 1:
        m = f.fresh(("mode", "verbose", "enabled", "level"))
        f.int_params.append(m)
        return lambda body: _block(f"if ({m} != 0) {{", body)
    if kind == 2:
        c, i = f.fresh(("count", "rounds", "attempts", "times")), f.i()
        f.int_params.append(c)
        return lambda body: _block(f"for (int {i} = 0; {i} < {c}; {i}++) {{", body)
    if kind == 3:
        return lambda body: _block("do {", body, "} while (0);")
    m, case = f.fresh(("op", "action", "cmd_id", "kind")), f.rng.randint(1, 9)
    f.int_params.append(m)
    return lambda body: _block(f"switch ({m}) {{", [(0, f"case {case}: {{")] + [(d + 1, t) for d, t in body]
                               + [(1, "break;"), (0, "}"), (0, "default:"), (1, "break;")])


def _render(ret: str, name: str, params: Sequence[str], body: Lines) -> str:
    out = [f"{ret} {name}({', '.join(params) if params else 'void'})", "{"]
    out += ["    " * (d + 1) + t for d, t in body]
    out.append("}")
    return "\n".join(out) + "\n"


def _pair(rng: random.Random, cwe: str) -> tuple[str, str]:
    """One (vulnerable, safe) pair of C functions built from the same draws."""
    f = _Fn(rng)
    ret = rng.choice(("int", "int", "static int", "long"))
    fname = f.pick(_PREFIXES) + f.pick(_VERBS) + "_" + f.pick(_NOUNS)
    f.used.add(fname)
    fail = f"return {rng.choice((-1, -1, -2, 1))};"

    strategy = _weighted(rng, _STRATEGIES[cwe])
    if strategy == "prepared":  # _core writes the whole statement; only the literal pool is needed
        sink = _Sink([], lambda x: [], lambda x: "", "CWE-89")
    else:
        sink = _SINKS[cwe](f, fail)
    src_lines, t = _source(f, fail)
    hop_units, tv = _hops(f, t)
    units: list[Lines] = [src_lines] + hop_units
    if sink.numeric:  # CWE-121: the tainted value is a length derived from the input
        n, kind = f.fresh(_LEN_NAMES, _INT_SUFFIXES), rng.randrange(3)
        expr = (f"strlen({tv})", f"(size_t)atoi({tv})", f"(size_t)strtoul({tv}, NULL, 10)")[kind]
        units.append([(0, f"size_t {n} = {expr};")])
        sink.src = tv
        if kind:  # the input is a number; the bytes come from a large local block, so clamping is enough
            sink.src = f.b()
            f.buf_decls.append((0, f"char {sink.src}[4096];"))
            units.append([(0, f"memset({sink.src}, 'A', sizeof({sink.src}));")])
        cv = f.fresh(_LEN_NAMES, _INT_SUFFIXES)
        units.append([(0, f"size_t {cv} = {n} < sizeof({sink.buf}) ? {n} : sizeof({sink.buf}) - 1;")])
        tv = n
    else:
        cv = f.s()
        const = [(0, f"const char *{cv} = {_c_str(f.pick(_LITERALS[sink.literal_pool]))};")]
        units.insert(0 if rng.random() < 0.5 else len(units), const)
    for _ in range(rng.choice((0, 1, 1, 2, 3))):  # distractors may sit anywhere before the core
        units.insert(rng.randrange(len(units) + 1), _distractor(f))
    shared, vuln_core, safe_core = _core(f, strategy, sink, tv, cv, fail)
    wrap = _wrapper(f)
    tail: Lines = []
    if rng.random() < 0.4:
        tail += _dead_code(f)
    if rng.random() < 0.3:
        tail += _distractor(f)
    tail.append((0, "return 0;"))
    head = f.buf_decls + sink.decls + [line for u in units for line in u]
    params = f.params + [f"int {p}" for p in f.int_params]
    rng.shuffle(params)
    vuln = _render(ret, fname, params, head + wrap(shared + vuln_core) + tail)
    safe = _render(ret, fname, params, head + wrap(shared + safe_core) + tail)
    return vuln, safe


# --- public API ----------------------------------------------------------------------------------------
_SPACE = re.compile(r"\s+")


def _normalized(code: str) -> str:
    return _SPACE.sub("", code)


def _resolve_cwes(cwes: Sequence[str] | None) -> tuple[str, ...]:
    if cwes is None:
        return CWE_FAMILIES
    if isinstance(cwes, str) or len(cwes) == 0:
        raise ConfigError("synthetic: 'cwes' must be a non-empty list of CWE ids, e.g. [CWE-89, CWE-78]")
    out = []
    for c in cwes:
        key = str(c).strip().upper()
        key = key if key.startswith("CWE-") else "CWE-" + key
        if key not in CWE_FAMILIES:
            raise ConfigError(f"synthetic: unknown CWE {c!r} in 'cwes'; choose from {', '.join(CWE_FAMILIES)}")
        if key not in out:
            out.append(key)
    return tuple(out)


def generate(n: int, seed: int, vuln_ratio: float = 0.5, cwes: Sequence[str] | None = None) -> list[dict]:
    """`n` synthetic C functions, deterministic in `seed`.

    Functions come as (vulnerable, safe) twins sharing `group` (the pair id). With `vuln_ratio` != 0.5
    the surplus label is filled by pairs that keep only one member, so `n * vuln_ratio` (rounded half up)
    functions are vulnerable. CWE families are used round-robin over the pairs. Codes are unique even after all
    whitespace is removed.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"synthetic: 'n_functions' must be a non-negative integer, got {n!r}")
    if not (isinstance(vuln_ratio, (int, float)) and 0.0 <= float(vuln_ratio) <= 1.0):
        raise ConfigError(f"synthetic: 'vuln_ratio' must be in [0, 1], got {vuln_ratio!r}")
    families = _resolve_cwes(cwes)
    rng = random.Random(seed)
    n_vuln = int(math.floor(n * float(vuln_ratio) + 0.5))
    n_pairs = min(n_vuln, n - n_vuln)
    single_label = 1 if n_vuln > n - n_vuln else 0
    slots = [2] * n_pairs + [1] * (n - 2 * n_pairs)  # 2: both twins, 1: only the surplus label
    rng.shuffle(slots)

    seen: set[str] = set()
    records: list[dict] = []
    for p, slot in enumerate(slots):
        cwe = families[p % len(families)]
        for _ in range(100):
            vuln, safe = _pair(rng, cwe)
            keys = (_normalized(vuln), _normalized(safe))
            if keys[0] != keys[1] and not (set(keys) & seen):
                break
        else:  # pools are large; reaching this means the generator lost its variety
            raise RuntimeError(f"synthetic: could not draw a unique pair for {cwe} after 100 tries")
        members = [(vuln, 1), (safe, 0)] if slot == 2 else [((vuln, 1) if single_label else (safe, 0))]
        if slot == 2 and rng.random() < 0.5:
            members.reverse()
        seen.update(_normalized(code) for code, _ in members)
        for code, label in members:
            records.append({"id": f"syn-{seed}-{len(records):06d}", "code": code, "label": label,
                            "group": f"syn-{seed}-p{p:06d}", "cwe": cwe, "project": "synthetic"})
    return records
