"""One sink builder per CWE family: declarations, the sink call, and what makes a value unsafe for it."""
from __future__ import annotations

from typing import Callable

from .pools import CMDS, SHELL_META, SQL, SQL_ALLOWED, VALIDATORS
from .statements import Fn, Lines, block, c_str


class Sink:
    """How one sink is declared and called, and what makes a value unsafe for it."""

    def __init__(self, decls: Lines, render: Callable[[str], Lines], bad: Callable[[str], str],
                 literal_pool: str, numeric: bool = False):
        self.decls, self.render, self.bad = decls, render, bad
        self.literal_pool, self.numeric = literal_pool, numeric
        self.head = ""  # CWE-134: the call prefix, reused by the "%s" strategy
        self.buf = ""  # CWE-121: destination buffer
        self.src = ""  # CWE-121: bytes copied (the length is the tainted value)


def sink_89(f: Fn, fail: str) -> Sink:
    q, sql, api = f.b(), f.pick(SQL), f.rng.randrange(3)
    decls = [(0, f"char {q}[{f.rng.choice((256, 512, 1024))}];")]
    if api == 0:
        conn = f.fresh(("conn", "mysql", "handle", "dbh"))
        f.params.append(f"MYSQL *{conn}")
        run = block(f"if (mysql_query({conn}, {q}) != 0) {{", [(0, fail)])
    elif api == 1:
        db, err = f.fresh(("db", "sqlite", "store_db", "dbh")), f.fresh(("err", "errmsg", "zerr"))
        f.params.append(f"sqlite3 *{db}")
        decls.append((0, f"char *{err} = NULL;"))
        run = block(f"if (sqlite3_exec({db}, {q}, NULL, NULL, &{err}) != SQLITE_OK) {{",
                     [(0, f"sqlite3_free({err});"), (0, fail)])
    else:
        conn, res = f.fresh(("conn", "pg", "pgconn", "link")), f.fresh(("res", "result_set", "pgres"))
        f.params.append(f"PGconn *{conn}")
        run = [(0, f"PGresult *{res} = PQexec({conn}, {q});"), (0, f"PQclear({res});")]

    def render(x: str) -> Lines:
        return [(0, f"snprintf({q}, sizeof({q}), {c_str(sql)}, {x});")] + run

    return Sink(decls, render, _validator_check(f, "CWE-89"), "CWE-89")


def _validator_check(f: Fn, cwe: str) -> Callable[[str], str]:
    kind = f.rng.randrange(3)
    if kind == 0:
        name = f.pick(VALIDATORS[cwe])
        return lambda x: f"!{name}({x})"
    if cwe == "CWE-78":
        return lambda x: f"strpbrk({x}, {SHELL_META}) != NULL"
    return lambda x: f"strspn({x}, {SQL_ALLOWED}) != strlen({x})"


def sink_78(f: Fn, fail: str) -> Sink:
    api, built = f.rng.randrange(3), f.rng.random() < 0.6
    decls: Lines = []
    cmd = f.b() if built else None
    if built:
        decls.append((0, f"char {cmd}[{f.rng.choice((256, 512, 1024))}];"))
    fmt = f.pick(CMDS)
    fp = f.fresh(("fp", "pipe_fp", "proc", "stream"))
    st = f.i()

    def render(x: str) -> Lines:
        lines: Lines = []
        arg = x
        if built:
            lines.append((0, f"snprintf({cmd}, sizeof({cmd}), {c_str(fmt)}, {x});"))
            arg = cmd
        if api == 0:
            return lines + [(0, f"int {st} = system({arg});")] + block(f"if ({st} != 0) {{", [(0, fail)])
        if api == 1:
            return lines + [(0, f"FILE *{fp} = popen({arg}, \"r\");")] + block(
                f"if ({fp} != NULL) {{", [(0, f"pclose({fp});")])
        return lines + [(0, f"execl(\"/bin/sh\", \"sh\", \"-c\", {arg}, (char *)NULL);")]

    return Sink(decls, render, _validator_check(f, "CWE-78"), "CWE-78" if built else "CWE-78-direct")


def sink_134(f: Fn, fail: str) -> Sink:
    api = f.rng.randrange(3)
    head = ("printf(", "fprintf(stderr, ", "syslog(LOG_WARNING, ")[api]

    def render(x: str) -> Lines:
        return [(0, f"{head}{x});")]

    sink = Sink([], render, lambda x: f"strchr({x}, '%') != NULL", "CWE-134")
    sink.head = head
    return sink


def sink_120(f: Fn, fail: str) -> Sink:
    buf, size, api = f.b(), f.rng.choice((32, 48, 64, 100, 128)), f.rng.randrange(3)
    pre = f.pick(("id=", "user:", "name ", "key=", "tag:"))
    if api == 0:
        extra = 0
        render = lambda x: [(0, f"strcpy({buf}, {x});")]  # noqa: E731
    elif api == 1:
        extra = len(pre)
        render = lambda x: [(0, f"strcpy({buf}, {c_str(pre)});"), (0, f"strcat({buf}, {x});")]  # noqa: E731
    else:
        post = f.pick(("", ";", "]", "\n"))
        extra = len(pre) + len(post)
        render = lambda x: [(0, f"sprintf({buf}, {c_str(pre + '%s' + post)}, {x});")]  # noqa: E731
    room = f"sizeof({buf})" + (f" - {extra}" if extra else "")
    return Sink([(0, f"char {buf}[{size}];")], render, lambda x: f"strlen({x}) >= {room}", "CWE-120")


def sink_121(f: Fn, fail: str) -> Sink:
    buf, size = f.b(), f.rng.choice((16, 32, 48, 64, 100, 128))
    call = f.pick(("memcpy", "memmove", "strncpy"))
    sink = Sink([(0, f"char {buf}[{size}];")], lambda n: [(0, f"{call}({buf}, {sink.src}, {n});")],
                 lambda n: f"{n} > sizeof({buf})", "CWE-121", numeric=True)
    sink.buf = buf
    return sink


SINKS = {"CWE-89": sink_89, "CWE-78": sink_78, "CWE-134": sink_134, "CWE-120": sink_120,
          "CWE-121": sink_121}

