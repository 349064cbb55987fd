"""Python twins: Flask / Django views and scripts with CWE-89 and CWE-78 flows.

Sources: `request.args[..]` / `request.args.get(..)` / `request.form[..]` / `request.GET.get(..)`,
`input()`, `sys.argv[..]`, `os.environ[..]` / `os.getenv(..)`, or a plain parameter. Hops: copies,
string methods, project helpers, a list joined back, a conditional. Sinks: DB-API `cursor.execute` /
`executemany` with a query built by `%`, `+`, `.format` or an f-string, SQLAlchemy `text()`,
`execute(sql, params)` with bound parameters (the `bind` strategy), `os.system`, `os.popen`,
`subprocess.run` / `check_output` / `Popen` with `shell=True`.
"""
from __future__ import annotations

import random
from typing import Callable, Sequence

from .pools import CMDS, ENV_NAMES, INT_NAMES, INT_SUFFIXES, MESSAGES, NOUNS, PREFIXES, VERBS
from .statements import Fn, Lines
from .twins import Sink

LITERALS = {
    "CWE-89": ("guest", "admin", "anonymous", "default", "system", "nobody"),
    "CWE-78": ("/tmp/cache", "/var/log", "localhost", "report.txt", "/srv/data", "backup.tar"),
}
SQL = ("SELECT id FROM users WHERE name = '{}'", "DELETE FROM sessions WHERE token = '{}'",
       "UPDATE accounts SET last_login = 0 WHERE login = '{}'", "SELECT * FROM items WHERE tag = '{}'",
       "SELECT email FROM profiles WHERE nick = '{}' LIMIT 1")
SQL_BIND = ("SELECT id FROM users WHERE name = '{}' AND role = %s",
            "DELETE FROM sessions WHERE owner = '{}' AND token = %s",
            "SELECT * FROM items WHERE tag = '{}' AND region = %s ORDER BY id",
            "UPDATE accounts SET status = 1 WHERE login = '{}' AND tenant = %s")
PARAM_NAMES = ("id", "user", "name", "q", "sort", "host", "file", "tag", "key", "filter")
HELPERS = ("normalize", "trim_quotes", "canonicalize", "strip_slashes", "decode_field", "collapse_spaces",
           "lowercase_copy", "first_token")
LOGGERS = ("log.debug", "logger.info", "LOG.warning", "audit.note")
VALIDATORS = {"CWE-89": ("is_valid_identifier", "is_valid_username", "validate_column", "is_safe_name"),
              "CWE-78": ("is_valid_hostname", "is_safe_filename", "validate_argument", "is_valid_path")}
ALLOWED = ("ALLOWED_NAMES", "KNOWN_TABLES", "PERMITTED_VALUES", "ALLOWED_HOSTS")
STR_NAMES = ("name", "user", "value", "host", "entry", "token", "field", "param", "text", "item", "key",
             "label", "target", "line", "word", "msg", "data", "payload", "login", "account", "owner",
             "comment", "pattern", "option", "alias", "nick", "tag", "topic", "selector", "locale")
STR_SUFFIXES = ("", "", "", "_str", "_in", "_val", "2", "_raw")


def str_lit(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def block(head: str, body: Lines) -> Lines:
    return [(0, head)] + ([(d + 1, t) for d, t in body] if body else [(1, "pass")])


def decl(name: str, expr: str, kind: str = "str") -> Lines:
    return [(0, f"{name} = {expr}")]


assign = decl


def if_block(cond: str, body: Lines) -> Lines:
    return block(f"if {cond}:", body)


def not_(cond: str) -> str:
    return f"not {cond}"


def increment(name: str) -> Lines:
    return [(0, f"{name} += 1")]


def int_param(name: str) -> str:
    return name


class _Names(Fn):
    def s(self) -> str:
        return self.fresh(STR_NAMES, STR_SUFFIXES)

    def i(self) -> str:
        return self.fresh(tuple(n for n in INT_NAMES if n not in ("len", "sum")), INT_SUFFIXES)


def new_fn(rng: random.Random) -> Fn:
    return _Names(rng)


def signature(f: Fn, rng: random.Random) -> tuple[str, str, str]:
    name = f.pick(PREFIXES) + f.pick(VERBS) + "_" + f.pick(NOUNS)
    f.used.add(name)
    fail, ok = rng.choice((("return None", "return True"), ("return -1", "return 0"), ("return", ""),
                           ("raise PermissionError", "return 0")))
    if rng.random() < 0.3:  # a method
        f.params.insert(0, "self")
    return f"def {name}(%s):", fail, ok


def render(head: str, params: Sequence[str], body: Lines) -> str:
    params = sorted(params, key=lambda p: p != "self")  # self stays first
    out = [head % ", ".join(params)]
    out += ["    " * (d + 1) + t for d, t in body] or ["    pass"]
    return "\n".join(out) + "\n"


def _param(f: Fn, pool: Sequence[str]) -> str:
    for p in f.params:
        if p in pool:
            return p
    name = f.fresh(pool)
    f.params.append(name)
    return name


def source(f: Fn, fail: str) -> tuple[Lines, str]:
    t, r = f.s(), f.rng
    kind, key = r.randrange(7), str_lit(f.pick(PARAM_NAMES))
    if kind == 0:
        req = _param(f, ("request", "req"))
        return decl(t, f"{req}.args.get({key})") + if_block(f"{t} is None", [(0, fail)]), t
    if kind == 1:
        req = _param(f, ("request", "req"))
        return decl(t, f"{req}.{f.pick(('args', 'form', 'GET', 'POST'))}[{key}]"), t
    if kind == 2:
        return decl(t, f"input({str_lit(f.pick(MESSAGES) + ': ')}).strip()"), t
    if kind == 3:
        k = r.randint(1, 3)
        return if_block(f"len(sys.argv) <= {k}", [(0, fail)]) + decl(t, f"sys.argv[{k}]"), t
    if kind == 4:
        env = str_lit(f.pick(ENV_NAMES))
        expr = f"os.environ[{env}]" if r.random() < 0.5 else f"os.getenv({env})"
        return decl(t, expr) + if_block(f"not {t}", [(0, fail)]), t
    if kind == 5:
        req = _param(f, ("request", "req"))
        return decl(t, f"{req}.GET.get({key}, \"\")"), t
    p = f.s()
    f.params.append(p)
    return decl(t, f"{p}.strip()"), t


def hops(f: Fn, start: str) -> tuple[list[Lines], str]:
    units, cur = [], start
    for _ in range(f.rng.choice((0, 1, 1, 2, 2, 3))):
        nxt, kind = f.s(), f.rng.randrange(5)
        if kind == 0:
            units.append(decl(nxt, cur))
        elif kind == 1:
            units.append(decl(nxt, f"{f.pick(HELPERS)}({cur})"))
        elif kind == 2:
            units.append(decl(nxt, f"{cur}.{f.pick(('strip()', 'lower()', 'replace(chr(9), chr(32))'))}"))
        elif kind == 3:
            parts = f.fresh(("parts", "pieces", "chunks"))
            units.append([(0, f"{parts} = []"), (0, f"{parts}.append({cur})")] + decl(nxt, f"\"\".join({parts})"))
        else:
            ch = str_lit(f.pick(("/", "-", " ")))
            units.append(if_block(f"{cur}.startswith({ch})", decl(nxt, f"{cur}[1:]"))
                         + [(0, "else:"), (1, f"{nxt} = {cur}")])
        cur = nxt
    return units, cur


def distractor(f: Fn) -> Lines:
    a, r = f.i(), f.rng
    kind, k, m = r.randrange(5), r.randint(2, 9), r.randint(3, 97)
    if kind == 0:
        return [(0, f"{a} = {k}"), (0, f"{a} = ({a} * {m}) % {r.randint(5, 251)}")]
    if kind == 1:
        i = f.i()
        return [(0, f"{a} = 0")] + block(f"for {i} in range({k}):", [(0, f"{a} += {i} * {m}")])
    if kind == 2:
        return [(0, f"{f.pick(LOGGERS)}({str_lit(f.pick(MESSAGES) + ' ' + str(m))})")]
    if kind == 3:
        lst = f.fresh(("items", "names", "seen", "batch"))
        return [(0, f"{lst} = [{str_lit(f.pick(MESSAGES))}]"), (0, f"{lst}.append({k})")]
    return [(0, f"{a} = {m}.{k}"), (0, f"{a} = {a} / 2.0")]


def harmless_use(f: Fn) -> Callable[[str], Lines]:
    v, kind = f.i(), f.rng.randrange(4)
    if kind == 0:
        return lambda x: [(0, f"{v} = len({x})")]
    if kind == 1:
        word = str_lit(f.pick(MESSAGES))
        return lambda x: [(0, f"{v} = {x} == {word}")]
    if kind == 2:
        logger = f.pick(LOGGERS)
        return lambda x: [(0, f"{logger}(\"value: %s\", {x})")]
    ch = str_lit(f.pick("/.:=-"))
    return lambda x: [(0, f"{v} = {x}.find({ch})")]


def wrapper(f: Fn) -> Callable[[Lines], Lines]:
    kind = f.rng.randrange(5)
    if kind == 0:
        return lambda body: body
    if kind == 1:
        m = f.fresh(("mode", "verbose", "enabled", "level"))
        f.int_params.append(m)
        return lambda body: block(f"if {m}:", body)
    if kind == 2:
        c, i = f.fresh(("count", "rounds", "attempts", "times")), f.i()
        f.int_params.append(c)
        return lambda body: block(f"for {i} in range({c}):", body)
    if kind == 3:
        e, logger = f.fresh(("e", "exc", "err")), f.pick(LOGGERS)
        return lambda body: block("try:", body) + block(f"except OSError as {e}:", [(0, f"{logger}(str({e}))")])
    lock = f.fresh(("lock", "mutex", "guard"))
    f.params.append(lock)
    return lambda body: block(f"with {lock}:", body)


def dead_code(f: Fn) -> Lines:
    body = distractor(f)
    if f.int_params and f.rng.random() < 0.5:
        p = f.pick(f.int_params)
        return block(f"if {p} < 0 and {p} > 0:", body)
    return block("if False:", body)


def _checker(f: Fn, cwe: str) -> Callable[[str], str]:
    kind = f.rng.randrange(3)
    if kind == 0:
        name = f.pick(VALIDATORS[cwe])
        return lambda x: f"not {name}({x})"
    if kind == 1:
        allowed = f.pick(ALLOWED)
        return lambda x: f"{x} not in {allowed}"
    pattern = "r\"[;|&$`]\"" if cwe == "CWE-78" else "r\"['\\\";]\""
    return lambda x: f"re.search({pattern}, {x}) is not None"


def sink_89(f: Fn) -> Sink:
    api, build = f.rng.randrange(3), f.rng.randrange(4)
    q, tmpl = f.fresh(("sql", "query", "stmt", "query_text")), f.pick(SQL)
    cur = _param(f, ("cursor", "cur", "db", "conn"))
    bad = _checker(f, "CWE-89")

    def text(x: str) -> Lines:
        if build == 0:
            return decl(q, f"{str_lit(tmpl.replace('{}', '%s'))} % {x}")
        if build == 1:
            a, b = tmpl.split("{}")
            return decl(q, f"{str_lit(a)} + {x} + {str_lit(b)}")
        if build == 2:
            return decl(q, f"{str_lit(tmpl)}.format({x})")
        return decl(q, "f" + str_lit(tmpl.replace("{}", "{" + x + "}")))

    rows = f.fresh(("rows", "result", "found"))
    if api == 0:
        run = [(0, f"{cur}.execute({q})"), (0, f"{rows} = {cur}.fetchall()")]
    elif api == 1:
        run = [(0, f"{rows} = {cur}.execute(text({q})).fetchall()")]
    else:
        run = [(0, f"{cur}.executemany({q}, [()])"), (0, f"{rows} = {cur}.rowcount")]

    def render(x: str) -> Lines:
        return text(x) + run

    bq = f.fresh(("bound_sql", "prepared", "stmt_text"))
    btmpl = f.pick(SQL_BIND)

    def bind(spliced: str, bound: str) -> Lines:
        a, b = btmpl.split("{}")
        return [(0, f"{bq} = {str_lit(a)} + {spliced} + {str_lit(b)}"), (0, f"{cur}.execute({bq}, ({bound},))"),
                (0, f"{rows} = {cur}.fetchall()")]

    return Sink([], render, bad, bind)


def sink_78(f: Fn) -> Sink:
    api, built = f.rng.randrange(4), f.rng.random() < 0.7
    cmd, fmt = f.fresh(("cmd", "command", "cmd_line", "shell_cmd")), f.pick(CMDS)
    out = f.fresh(("out", "status", "proc", "rc"))
    bad = _checker(f, "CWE-78")

    def render(x: str) -> Lines:
        lines = decl(cmd, f"{str_lit(fmt.replace('%s', ''))} + {x}" if built else x)
        if api == 0:
            return lines + [(0, f"{out} = os.system({cmd})")]
        if api == 1:
            return lines + [(0, f"{out} = subprocess.run({cmd}, shell=True, check=False)")]
        if api == 2:
            return lines + [(0, f"{out} = subprocess.check_output({cmd}, shell=True)")]
        return lines + [(0, f"{out} = os.popen({cmd}).read()")]

    return Sink([], render, bad)


SINKS = {"CWE-89": sink_89, "CWE-78": sink_78}
FAMILIES = tuple(SINKS)
