"""The Java front-end: real tree-sitter-java parses, taint edges on vulnerable / safe snippets, methods."""
import random

import pytest

from streamguard.graphs.builder import build_statement_graph
from streamguard.graphs.languages import extract_functions, get_language, language_for_path
from tests.graphs.test_fuzz import assert_valid


def graph(code: str):
    return build_statement_graph(code, language="java")


def node_of(g, text: str) -> int:
    return next(i for i, n in enumerate(g.nodes) if text in n.text)


def tainted_sinks(g) -> set[int]:
    return {d for _, d in g.edges_of("taint") if g.nodes[d].is_sink}


def test_registered_with_suffix():
    assert get_language("java").name == "java"
    assert language_for_path("src/main/A.JAVA").name == "java"


def test_concatenated_query_is_tainted():
    g = graph('void f(HttpServletRequest request, Statement stmt) throws Exception {\n'
              '    String q = "SELECT a FROM t WHERE id=" + request.getParameter("id");\n'
              '    stmt.executeQuery(q);\n}\n')
    assert g.parse_ok
    decl, sink = node_of(g, "String q"), node_of(g, "executeQuery")
    assert g.nodes[decl].is_source and g.nodes[sink].is_sink
    assert (decl, sink) in g.edges_of("taint")


def test_inline_source_in_sink_argument_is_tainted():
    g = graph('void f(HttpServletRequest request, Statement stmt) {\n'
              '    stmt.executeQuery("SELECT a FROM t WHERE id=" + request.getParameter("id"));\n}\n')
    sink = node_of(g, "executeQuery")
    assert g.nodes[sink].is_tainted and (0, sink) in g.edges_of("taint")  # through the request parameter


def test_prepared_statement_with_bound_parameter_is_not_tainted():
    g = graph('void f(HttpServletRequest request, Connection conn) throws SQLException {\n'
              '    String id = request.getParameter("id");\n'
              '    PreparedStatement ps = conn.prepareStatement("SELECT a FROM t WHERE id = ?");\n'
              '    ps.setString(1, id);\n'
              '    ResultSet rs = ps.executeQuery();\n}\n')
    assert g.nodes[node_of(g, "ps.executeQuery")].is_sink
    assert g.nodes[node_of(g, "prepareStatement")].is_sink
    assert not g.edges_of("taint")


def test_prepared_statement_built_from_input_is_tainted():
    g = graph('void f(HttpServletRequest request, Connection conn) throws SQLException {\n'
              '    String id = request.getParameter("id");\n'
              '    PreparedStatement ps = conn.prepareStatement("SELECT a FROM t WHERE id = " + id);\n'
              '    ps.executeQuery();\n}\n')
    assert node_of(g, "prepareStatement") in tainted_sinks(g)


def test_parse_int_sanitizes_and_string_builder_carries_taint():
    g = graph('void f(HttpServletRequest request, Statement st) throws Exception {\n'
              '    int n = Integer.parseInt(request.getParameter("n"));\n'
              '    st.executeUpdate("DELETE FROM t WHERE id = " + n);\n'
              '    StringBuilder sb = new StringBuilder("SELECT * FROM t WHERE name = \'");\n'
              '    sb.append(request.getHeader("X-User"));\n'
              '    st.executeQuery(sb.toString());\n}\n')
    assert g.nodes[node_of(g, "parseInt")].is_sanitizer
    assert node_of(g, "executeUpdate") not in tainted_sinks(g)
    assert (node_of(g, "sb.append"), node_of(g, "st.executeQuery")) in g.edges_of("taint")


def test_command_sinks_and_allow_list_validator():
    g = graph('void f(String host) throws IOException {\n'
              '    Runtime.getRuntime().exec("ping -c 1 " + host);\n'
              '    new ProcessBuilder("sh", "-c", host).start();\n}\n')
    assert tainted_sinks(g) == {node_of(g, ".exec("), node_of(g, "ProcessBuilder")}
    safe = graph('void f(String host) throws IOException {\n'
                 '    if (!isValidHostname(host)) {\n        return;\n    }\n'
                 '    Runtime.getRuntime().exec("ping -c 1 " + host);\n}\n')
    assert not tainted_sinks(safe)


def test_overwrite_by_constant_cuts_taint():
    vuln = graph('void f(String user, Statement st) throws Exception {\n'
                 '    String v = "guest";\n    v = user;\n    st.execute("SELECT 1 FROM t WHERE u = \'" + v + "\'");\n}\n')
    safe = graph('void f(String user, Statement st) throws Exception {\n'
                 '    String v = user;\n    v = "guest";\n    st.execute("SELECT 1 FROM t WHERE u = \'" + v + "\'");\n}\n')
    assert tainted_sinks(vuln) and not tainted_sinks(safe)


def test_control_flow_try_catch_finally_and_enhanced_for():
    g = graph('int f(List<String> xs, Statement st) {\n'
              '    for (String s : xs) {\n        st.addBatch(s);\n    }\n'
              '    try {\n        st.executeBatch();\n    } catch (SQLException e) {\n        log(e);\n        return -1;\n'
              '    } finally {\n        st.close();\n    }\n    return 0;\n}\n')
    loop, batch = node_of(g, "for (String s"), node_of(g, "addBatch")
    assert "s" in g.nodes[loop].defs and "s" not in g.nodes[loop].uses
    assert (loop, batch) in g.edges_of("data_dep") and (batch, loop) in g.edges_of("cfg_loop")
    catch, run, close = node_of(g, "catch (SQLException e)"), node_of(g, "executeBatch"), node_of(g, "st.close")
    assert g.nodes[catch].kind == "case" and "e" in g.nodes[catch].defs
    assert (run, catch) in g.edges_of("cfg_branch")
    assert (run, close) in g.edges_of("cfg_seq") and (catch, node_of(g, "log(e)")) in g.edges_of("data_dep")


def test_extract_methods_and_constructors_in_classes():
    src = ('package p;\npublic class Users {\n  private final DataSource ds;\n'
           '  public Users(DataSource ds) { this.ds = ds; }\n'
           '  public String find(String id) { Runnable r = () -> helper(id); return id; }\n'
           '  static class Inner { void run() { } }\n}\n'
           'interface Repo { default int size() { return 0; } }\n')
    found = extract_functions(src, "java")
    assert [f.name for f in found] == ["Users.Users", "Users.find", "Users.Inner.run", "Repo.size"]
    assert found[1].start_line == 5 and found[1].code.startswith("public String find")
    g = graph(found[1].code)  # an extracted method parses on its own
    assert g.parse_ok and g.nodes[0].kind == "function" and g.nodes[0].defs == ["id"]
    assert "find" not in g.nodes[0].uses  # the method's own name is no variable


def test_whole_file_gives_one_flow_per_method():
    g = graph("class A { void a(String s) { Runtime.getRuntime().exec(s); } void b() { int x = 1; } }")
    headers = [i for i, n in enumerate(g.nodes) if n.kind == "function"]
    assert len(headers) == 2 and g.edges_of("taint") == [(headers[0], headers[0] + 1)]


JAVA_TOKENS = ["if", "(", ")", "{", "}", "else", "while", "for", ";", "x", "=", "try", "catch", "finally", "class",
               "void", "String", "s", ":", "->", "new", "return", "stmt.executeQuery", "request.getParameter",
               '"', "'", ",", ".", "switch", "case", "default", "break", "@Override", "/*", "*/", "<", ">", "+"]


def test_fuzzed_and_partial_java_still_gives_graphs():
    rng = random.Random(5)
    base = ('void f(HttpServletRequest request, Statement st) throws Exception {\n'
            '    String q = "SELECT a FROM t WHERE id=" + request.getParameter("id");\n'
            '    for (String s : xs) { if (s.isEmpty()) { continue; } st.addBatch(q + s); }\n'
            '    try { st.executeQuery(q); } catch (SQLException e) { throw e; } finally { st.close(); }\n}\n')
    failures = 0
    for i in range(300):
        if i % 3 == 0:
            code = " ".join(rng.choice(JAVA_TOKENS) for _ in range(rng.randint(0, 120)))
        elif i % 3 == 1:
            a = rng.randint(0, len(base))
            code = base[a:rng.randint(a, len(base))]
        else:
            chars = list(base)
            for _ in range(rng.randint(1, 8)):
                chars[rng.randrange(len(chars))] = rng.choice("{}();,\n\"'/*@ ")
            code = "".join(chars)
        max_nodes = rng.choice([None, 5])
        g = build_statement_graph(code, max_nodes, language="java")
        assert_valid(g, max_nodes)
        failures += not g.parse_ok
    assert 0 < failures < 300  # partial parses happen, are counted, and still give graphs
    assert_valid(build_statement_graph(bytes(range(256)) * 4, language="java"))


@pytest.mark.parametrize("code", ["", "}", "class", "void f(", '"unterminated', "\x00\ud800"])
def test_degenerate_inputs(code):
    assert_valid(graph(code))
