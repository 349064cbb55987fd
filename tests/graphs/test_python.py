"""The Python front-end: real tree-sitter-python parses, taint edges on vulnerable / safe snippets, defs."""
import random

import pytest

from streamguard.graphs.builder import build_statement_graph
from streamguard.graphs.languages import extract_functions, get_language, language_for_path
from tests.graphs.test_fuzz import assert_valid


def graph(code: str):
    return build_statement_graph(code, language="python")


def node_of(g, text: str) -> int:
    return next(i for i, n in enumerate(g.nodes) if text in n.text)


def tainted_sinks(g) -> set[int]:
    return {d for _, d in g.edges_of("taint") if g.nodes[d].is_sink}


def view(body: str, params: str = "cursor") -> str:
    return f"def view({params}):\n" + "".join("    " + line + "\n" for line in body.strip("\n").split("\n"))


def test_registered_with_suffix():
    assert get_language("python").name == "python"
    assert language_for_path("app/views.py").name == "python"


@pytest.mark.parametrize("build", [
    'q = "SELECT * FROM t WHERE id = %s" % uid',
    'q = "SELECT * FROM t WHERE id = " + uid',
    'q = "SELECT * FROM t WHERE id = {}".format(uid)',
    'q = f"SELECT * FROM t WHERE id = {uid}"',
])
def test_query_built_from_request_is_tainted(build):
    g = graph(view(f'uid = request.args["id"]\n{build}\ncursor.execute(q)'))
    src, sink = node_of(g, "uid = request"), node_of(g, "cursor.execute")
    assert g.parse_ok and g.nodes[src].is_source and g.nodes[sink].is_sink
    assert (node_of(g, "q = "), sink) in g.edges_of("taint") and (src, node_of(g, "q = ")) in g.edges_of("taint")


def test_inline_interpolation_into_execute_is_tainted():
    g = graph(view('cursor.execute("SELECT * FROM t WHERE id = %s" % request.args["id"])', "cursor, request"))
    sink = node_of(g, "cursor.execute")
    assert g.nodes[sink].is_source and g.nodes[sink].is_tainted and (0, sink) in g.edges_of("taint")


def test_parameterised_execute_is_safe():
    g = graph(view('uid = request.args["id"]\ncursor.execute("SELECT * FROM t WHERE id = %s", (uid,))'))
    assert g.nodes[node_of(g, "cursor.execute")].is_sink
    assert not g.edges_of("taint")
    g = graph(view('sql = "SELECT * FROM t WHERE id = %s"\nuid = request.form["id"]\ncursor.execute(sql, [uid])'))
    assert not g.edges_of("taint")


def test_int_cast_and_validator_sanitize():
    g = graph(view('n = int(request.args.get("n"))\ncursor.execute("DELETE FROM t WHERE id = %d" % n)'))
    assert g.nodes[node_of(g, "n = int")].is_sanitizer and not tainted_sinks(g)
    g = graph(view('col = request.args["sort"]\nif not is_allowed_column(col):\n    return None\n'
                   'cursor.execute("SELECT * FROM t ORDER BY " + col)'))
    assert not tainted_sinks(g)


def test_subprocess_is_a_sink_only_with_shell_true():
    g = graph(view('cmd = "ls " + sys.argv[1]\nsubprocess.run(cmd, shell=True)\nsubprocess.run(["ls", cmd])', ""))
    shell, plain = node_of(g, "shell=True"), node_of(g, '["ls", cmd]')
    assert g.nodes[shell].is_sink and not g.nodes[plain].is_sink
    assert tainted_sinks(g) == {shell}
    assert "shell" not in g.nodes[shell].uses  # a keyword name is no variable


def test_os_system_eval_and_environment_sources():
    g = graph(view('target = os.environ["TARGET"]\nos.system("ping " + target)\nexpr = input()\neval(expr)', ""))
    assert tainted_sinks(g) == {node_of(g, "os.system"), node_of(g, "eval(")}
    assert "os.environ" in g.nodes[node_of(g, "target =")].uses


def test_list_append_carries_taint_and_for_defines_its_target():
    g = graph(view('parts = ["ls"]\nfor a in request.args.getlist("f"):\n    parts.append(a)\n'
                   'os.system(" ".join(parts))', "request"))
    loop = node_of(g, "for a in")
    assert "a" in g.nodes[loop].defs and "a" not in g.nodes[loop].uses
    assert (node_of(g, "parts.append"), node_of(g, "os.system")) in g.edges_of("taint")


def test_elif_else_with_and_try_control_flow():
    g = graph(view('if a:\n    x = 1\nelif b:\n    x = 2\nelse:\n    x = 3\n'
                   'with open(p) as fh:\n    data = fh.read()\n'
                   'try:\n    run(x)\nexcept (ValueError, KeyError) as e:\n    log(e)\nelse:\n    ok()\nfinally:\n'
                   '    done()', "a, b, p"))
    c_if, c_elif = node_of(g, "if a"), node_of(g, "elif b")
    assert g.nodes[c_elif].kind == "if" and g.nodes[c_elif].depth == g.nodes[c_if].depth
    assert (c_if, c_elif) in g.edges_of("cfg_branch") and (c_elif, node_of(g, "x = 3")) in g.edges_of("cfg_branch")
    with_ = node_of(g, "with open")
    assert g.nodes[with_].kind == "declaration" and "fh" in g.nodes[with_].defs
    assert (with_, node_of(g, "data = fh.read")) in g.edges_of("data_dep")
    run, exc, done = node_of(g, "run(x)"), node_of(g, "except"), node_of(g, "done()")
    assert "e" in g.nodes[exc].defs and (run, exc) in g.edges_of("cfg_branch")
    assert (run, node_of(g, "ok()")) in g.edges_of("cfg_seq")
    assert {(node_of(g, "ok()"), done), (node_of(g, "log(e)"), done)} <= set(g.edges_of("cfg_seq"))
    assert {node_of(g, f"x = {k}") for k in (1, 2, 3)} == {d for d, u in g.edges_of("data_dep") if u == run}


def test_extract_functions_methods_and_nested_defs():
    src = ('import os\n\n@app.route("/u")\ndef top(request):\n    def inner(x):\n        return x\n'
           '    return inner(request)\n\nclass Repo:\n    def find(self, uid):\n'
           '        self.cur.execute("SELECT 1 WHERE id = %s" % uid)\n\n    async def close(self):\n        pass\n')
    found = extract_functions(src, "python")
    assert [f.name for f in found] == ["top", "Repo.find", "Repo.close"]
    assert "def inner" in found[0].code and found[1].start_line == 10
    g = graph(found[1].code)  # an extracted method keeps its relative indentation and parses alone
    assert g.parse_ok and g.nodes[0].defs == ["self", "uid"] and tainted_sinks(g)


PY_TOKENS = ["if", "elif", "else", ":", "while", "for", "in", "def", "f", "(", ")", "x", "=", "try", "except",
             "finally", "with", "as", "return", "\n", "\n    ", "\n        ", "cursor.execute", "request.args", '"',
             "'", ",", "[", "]", "lambda", "class", "f\"{", "}", "%", "+", "pass", "#"]


def test_fuzzed_and_partial_python_still_gives_graphs():
    rng = random.Random(6)
    base = view('uid = request.args["id"]\nfor p in parts:\n    if not p:\n        continue\n    q = f"{p} {uid}"\n'
                'try:\n    cursor.execute(q)\nexcept Exception as e:\n    raise\n', "cursor, request")
    failures = 0
    for i in range(300):
        if i % 3 == 0:
            code = " ".join(rng.choice(PY_TOKENS) for _ in range(rng.randint(0, 120)))
        elif i % 3 == 1:
            a = rng.randint(0, len(base))
            code = base[a:rng.randint(a, len(base))]
        else:
            chars = list(base)
            for _ in range(rng.randint(1, 8)):
                chars[rng.randrange(len(chars))] = rng.choice("{}():,\n\"'# \t")
            code = "".join(chars)
        max_nodes = rng.choice([None, 5])
        g = build_statement_graph(code, max_nodes, language="python")
        assert_valid(g, max_nodes)
        failures += not g.parse_ok
    assert 0 < failures < 300
    assert_valid(build_statement_graph(bytes(range(256)) * 4, language="python"))


@pytest.mark.parametrize("code", ["", ":", "def", "def f(", "    x = 1\n  y = 2\n", '"""unterminated', "\x00\ud800"])
def test_degenerate_inputs(code):
    assert_valid(graph(code))
