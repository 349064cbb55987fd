"""Java twins: servlet / JDBC / JPA / Runtime.exec methods with CWE-89 and CWE-78 flows.

Sources: `request.getParameter` / `getHeader` / `getQueryString` / cookies, `System.getenv`,
`Scanner.nextLine`, `BufferedReader.readLine`, or a plain `String` parameter. Hops: copies, string
methods, project helpers, a StringBuilder, a conditional. Sinks: `Statement.executeQuery` /
`executeUpdate` / `addBatch`, `EntityManager.createNativeQuery` / `createQuery`,
`Connection.prepareStatement` with bound parameters (the `bind` strategy), `Runtime.exec`,
`ProcessBuilder`. The twins are methods (no class around them), as `extract_functions` yields them.
"""
from __future__ import annotations

import random
from typing import Callable, Sequence

from .pools import CMDS, ENV_NAMES, MESSAGES, NOUNS, STR_NAMES, STR_SUFFIXES, VERBS
from .statements import Fn, Lines
from .twins import Sink

LITERALS = {
    "CWE-89": ("guest", "admin", "anonymous", "default", "system", "nobody"),
    "CWE-78": ("/tmp/cache", "/var/log", "localhost", "report.txt", "/srv/data", "backup.tar"),
}
SQL = ("SELECT id FROM users WHERE name = '", "DELETE FROM sessions WHERE token = '",
       "UPDATE accounts SET last_login = 0 WHERE login = '", "SELECT * FROM items WHERE tag = '",
       "SELECT email FROM profiles WHERE nick = '")
SQL_BIND = (("SELECT id FROM users WHERE name = '", "' AND role = ?"),
            ("DELETE FROM sessions WHERE owner = '", "' AND token = ?"),
            ("SELECT * FROM items WHERE tag = '", "' AND region = ? ORDER BY id"),
            ("UPDATE accounts SET status = 1 WHERE login = '", "' AND tenant = ?"))
PARAM_NAMES = ("id", "user", "name", "q", "sort", "host", "file", "tag", "key", "filter")
HEADERS = ("X-User", "X-Forwarded-Host", "Referer", "X-Request-Id", "X-Tenant")
HELPERS = ("normalize", "trimQuotes", "canonicalize", "stripSlashes", "decodeField", "collapseSpaces",
           "lowercaseCopy", "firstToken")
LOGGERS = ("log.debug", "LOG.info", "logger.trace", "audit.note")
VALIDATORS = {"CWE-89": ("isValidIdentifier", "isValidUsername", "validateColumn", "isSafeName"),
              "CWE-78": ("isValidHostname", "isSafeFilename", "validateArgument", "isValidPath")}
ALLOWED = ("ALLOWED_NAMES", "KNOWN_TABLES", "PERMITTED_VALUES", "ALLOWED_HOSTS")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


def str_lit(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def block(head: str, body: Lines, tail: str = "}") -> Lines:
    return [(0, head)] + [(d + 1, t) for d, t in body] + [(0, tail)]


_TYPES = {"str": "String", "int": "int", "bool": "boolean"}


def decl(name: str, expr: str, kind: str = "str") -> Lines:
    return [(0, f"{_TYPES[kind]} {name} = {expr};")]


def assign(name: str, expr: str) -> Lines:
    return [(0, f"{name} = {expr};")]


def if_block(cond: str, body: Lines) -> Lines:
    return block(f"if ({cond}) {{", body)


def not_(cond: str) -> str:
    return f"!{cond}"


def increment(name: str) -> Lines:
    return [(0, f"{name}++;")]


def int_param(name: str) -> str:
    return f"int {name}"


class _Names(Fn):
    """Fn with Java-style (camelCase) names drawn from the shared pools."""

    def s(self) -> str:
        return _camel(self.fresh(STR_NAMES, STR_SUFFIXES))


def signature(f: Fn, rng: random.Random) -> tuple[str, str, str]:
    name = f.pick(VERBS) + f.pick(NOUNS).capitalize() + f.pick(("", "", "Safe", "ById", "Async"))
    f.used.add(name)
    ret, fail, ok = rng.choice((("void", "return;", ""), ("int", "return -1;", "return 0;"),
                                ("boolean", "return false;", "return true;")))
    mods = rng.choice(("public ", "public ", "protected ", "", "private ", "public static "))
    throws = rng.choice(("", " throws Exception", " throws SQLException, IOException", " throws IOException"))
    return f"{mods}{ret} {name}(%s){throws}", fail, ok


def render(head: str, params: Sequence[str], body: Lines) -> str:
    out = [head % ", ".join(params) + " {"]
    out += ["    " * (d + 1) + t for d, t in body]
    out.append("}")
    return "\n".join(out) + "\n"


def _param(f: Fn, typ: str, pool: Sequence[str]) -> str:
    for p in f.params:
        if p.startswith(typ + " "):
            return p.split(" ", 1)[1]
    name = f.fresh(pool)
    f.params.append(f"{typ} {name}")
    return name


def source(f: Fn, fail: str) -> tuple[Lines, str]:
    t, r = f.s(), f.rng
    kind = r.randrange(7)
    if kind <= 1:
        req = _param(f, "HttpServletRequest", ("request", "req", "httpRequest"))
        lines = decl(t, f"{req}.getParameter({str_lit(f.pick(PARAM_NAMES))})")
        return lines + if_block(f"{t} == null", [(0, fail)]), t
    if kind == 2:
        req = _param(f, "HttpServletRequest", ("request", "req", "httpRequest"))
        return decl(t, f"{req}.getHeader({str_lit(f.pick(HEADERS))})") + if_block(f"{t} == null", [(0, fail)]), t
    if kind == 3:
        lines = decl(t, f"System.getenv({str_lit(f.pick(ENV_NAMES))})")
        return lines + if_block(f"{t} == null || {t}.isEmpty()", [(0, fail)]), t
    if kind == 4:
        sc = _param(f, "Scanner", ("scanner", "in", "input"))
        return decl(t, f"{sc}.nextLine().trim()"), t
    if kind == 5:
        rd = _param(f, "BufferedReader", ("reader", "br", "lines"))
        return decl(t, f"{rd}.readLine()") + if_block(f"{t} == null", [(0, fail)]), t
    req = _param(f, "HttpServletRequest", ("request", "req", "httpRequest"))
    c, name = f.fresh(("c", "cookie", "ck")), f.pick(PARAM_NAMES)
    return (decl(t, "null") + block(f"for (Cookie {c} : {req}.getCookies()) {{",
                                    if_block(f"{c}.getName().equals({str_lit(name)})", assign(t, f"{c}.getValue()")))
            + if_block(f"{t} == null", [(0, fail)])), t


def hops(f: Fn, start: str) -> tuple[list[Lines], str]:
    units, cur = [], start
    for _ in range(f.rng.choice((0, 1, 1, 2, 2, 3))):
        nxt, kind = f.s(), f.rng.randrange(5)
        if kind == 0:
            units.append(decl(nxt, cur))
        elif kind == 1:
            units.append(decl(nxt, f"{f.pick(HELPERS)}({cur})"))
        elif kind == 2:
            units.append(decl(nxt, f"{cur}.{f.pick(('trim()', 'toLowerCase()', 'strip()'))}"))
        elif kind == 3:
            sb = f.fresh(("sb", "builder", "buf"))
            units.append([(0, f"StringBuilder {sb} = new StringBuilder();"), (0, f"{sb}.append({cur});")]
                         + decl(nxt, f"{sb}.toString()"))
        else:
            ch = f.pick(("/", "-", " "))
            units.append(decl(nxt, "null") + block(f"if ({cur}.startsWith({str_lit(ch)})) {{",
                                                  assign(nxt, f"{cur}.substring(1)"), "} else {")
                         + [(1, f"{nxt} = {cur};"), (0, "}")])
        cur = nxt
    return units, cur


def distractor(f: Fn) -> Lines:
    a, r = f.i(), f.rng
    kind, k, m = r.randrange(5), r.randint(2, 9), r.randint(3, 97)
    if kind == 0:
        return [(0, f"int {a} = {k};"), (0, f"{a} = ({a} * {m}) % {r.randint(5, 251)};")]
    if kind == 1:
        i = f.i()
        return [(0, f"long {a} = 0;")] + block(f"for (int {i} = 0; {i} < {k}; {i}++) {{", [(0, f"{a} += {i} * {m};")])
    if kind == 2:
        return [(0, f"{f.pick(LOGGERS)}({str_lit(f.pick(MESSAGES) + ' ' + str(m))});")]
    if kind == 3:
        lst = f.fresh(("items", "names", "seen", "batch"))
        return [(0, f"List<String> {lst} = new ArrayList<>();"), (0, f"{lst}.add({str_lit(f.pick(MESSAGES))});")]
    return [(0, f"double {a} = {m}.{k};"), (0, f"{a} = {a} / 2.0;")]


def harmless_use(f: Fn) -> Callable[[str], Lines]:
    v, kind = f.i(), f.rng.randrange(4)
    if kind == 0:
        return lambda x: [(0, f"int {v} = {x}.length();")]
    if kind == 1:
        word = str_lit(f.pick(MESSAGES))
        return lambda x: [(0, f"boolean {v} = {x}.equals({word});")]
    if kind == 2:
        logger = f.pick(LOGGERS)
        return lambda x: [(0, f"{logger}(\"value: \" + {x});")]
    ch = f.pick("/.:=-")
    return lambda x: [(0, f"int {v} = {x}.indexOf('{ch}');")]


def wrapper(f: Fn) -> Callable[[Lines], Lines]:
    kind = f.rng.randrange(5)
    if kind == 0:
        return lambda body: body
    if kind == 1:
        m = f.fresh(("mode", "verbose", "enabled", "level"))
        f.int_params.append(m)
        return lambda body: block(f"if ({m} != 0) {{", body)
    if kind == 2:
        c, i = f.fresh(("count", "rounds", "attempts", "times")), f.i()
        f.int_params.append(c)
        return lambda body: block(f"for (int {i} = 0; {i} < {c}; {i}++) {{", body)
    if kind == 3:
        e = f.fresh(("e", "ex", "err"))
        logger = f.pick(LOGGERS)
        return lambda body: block("try {", body, "} catch (RuntimeException " + e + ") {") + [
            (1, f"{logger}({e}.getMessage());"), (0, "}")]
    lock = f.fresh(("lock", "mutex", "guard"))
    f.params.append(f"Object {lock}")
    return lambda body: block(f"synchronized ({lock}) {{", body)


def dead_code(f: Fn) -> Lines:
    body = distractor(f)
    if f.int_params and f.rng.random() < 0.5:
        p = f.pick(f.int_params)
        return block(f"if ({p} < 0 && {p} > 0) {{", body)
    return block("if (false) {", body)


def _checker(f: Fn, cwe: str) -> Callable[[str], str]:
    kind = f.rng.randrange(3)
    if kind == 0:
        name = f.pick(VALIDATORS[cwe])
        return lambda x: f"!{name}({x})"
    if kind == 1:
        allowed = f.pick(ALLOWED)
        return lambda x: f"!{allowed}.contains({x})"
    pattern = '".*[;|&$`].*"' if cwe == "CWE-78" else '".*[\'\\";].*"'
    return lambda x: f"{x}.matches({pattern})"


def sink_89(f: Fn) -> Sink:
    api = f.rng.randrange(4)
    q, prefix = f.fresh(("sql", "query", "stmtText", "queryText")), f.pick(SQL)
    bad = _checker(f, "CWE-89")
    build = f.rng.randrange(3)

    def text(x: str) -> Lines:
        if build == 0:
            return decl(q, f"{str_lit(prefix)} + {x} + \"'\"")
        if build == 1:
            return decl(q, f"String.format({str_lit(prefix + '%s' + chr(39))}, {x})")
        return [(0, f"StringBuilder {q}Sb = new StringBuilder({str_lit(prefix)});"),
                (0, f"{q}Sb.append({x}).append(\"'\");")] + decl(q, f"{q}Sb.toString()")

    if api == 3:  # JPA
        em = _param(f, "EntityManager", ("em", "entityManager", "manager"))
        call = f.pick(("createNativeQuery", "createQuery"))
        rows = f.fresh(("rows", "results", "found"))
        run = [(0, f"List<?> {rows} = {em}.{call}({q}).getResultList();")]
    else:
        conn = _param(f, "Connection", ("conn", "connection", "db", "dbConn"))
        st, rs = f.fresh(("st", "stmt", "statement")), f.fresh(("rs", "result", "rows"))
        head = [(0, f"Statement {st} = {conn}.createStatement();")]
        if api == 0:
            run = head + [(0, f"ResultSet {rs} = {st}.executeQuery({q});")] + block(
                f"while ({rs}.next()) {{", [(0, f"{f.pick(LOGGERS)}({rs}.getString(1));")])
        elif api == 1:
            run = head + [(0, f"int {rs} = {st}.executeUpdate({q});")]
        else:
            run = head + [(0, f"{st}.addBatch({q});"), (0, f"{st}.executeBatch();")]

    def render(x: str) -> Lines:
        return text(x) + run

    conn_b = _param(f, "Connection", ("conn", "connection", "db", "dbConn"))
    ps, (pre, post) = f.fresh(("ps", "prepared", "pstmt")), f.pick(SQL_BIND)

    def bind(spliced: str, bound: str) -> Lines:
        return ([(0, f"PreparedStatement {ps} = {conn_b}.prepareStatement({str_lit(pre)} + {spliced} + "
                     f"{str_lit(post)});"), (0, f"{ps}.setString(1, {bound});"),
                 (0, f"ResultSet {ps}Rs = {ps}.executeQuery();")])

    return Sink([], render, bad, bind)


def sink_78(f: Fn) -> Sink:
    api, built = f.rng.randrange(3), f.rng.random() < 0.7
    cmd, fmt = f.fresh(("cmd", "command", "cmdLine", "shellCmd")), f.pick(CMDS)
    proc = f.fresh(("proc", "process", "child"))
    bad = _checker(f, "CWE-78")

    def render(x: str) -> Lines:
        lines = decl(cmd, f"{str_lit(fmt.replace('%s', ''))} + {x}" if built else x)
        if api == 0:
            return lines + [(0, f"Process {proc} = Runtime.getRuntime().exec({cmd});"), (0, f"{proc}.waitFor();")]
        if api == 1:
            return lines + [(0, f"Process {proc} = new ProcessBuilder(\"sh\", \"-c\", {cmd}).start();")]
        return lines + [(0, f"Process {proc} = Runtime.getRuntime().exec(new String[] {{\"/bin/sh\", \"-c\", {cmd}}});")]

    return Sink([], render, bad)


SINKS = {"CWE-89": sink_89, "CWE-78": sink_78}
FAMILIES = tuple(SINKS)


def new_fn(rng: random.Random) -> Fn:
    return _Names(rng)
