import pytest

from streamguard.graphs.builder import build_statement_graph
from streamguard.graphs.graph import EDGE_TYPES, StatementGraph


def idx(g: StatementGraph, text: str) -> int:
    """Index of the one node whose text starts with `text`."""
    hits = [i for i, n in enumerate(g.nodes) if n.text.startswith(text)]
    assert len(hits) == 1, (text, [n.text for n in g.nodes])
    return hits[0]


def assert_valid(g: StatementGraph) -> None:
    n = len(g.nodes)
    assert g.n_nodes_before_cap >= n
    assert g.edges == sorted(set(g.edges))
    for s, d, t in g.edges:
        assert 0 <= s < n and 0 <= d < n and 0 <= t < len(EDGE_TYPES)


# --- taint ---------------------------------------------------------------------------------

def test_parameter_flows_into_strcpy_sink():
    g = build_statement_graph("void f(char *in){ char buf[8]; strcpy(buf, in); }")
    assert_valid(g)
    assert [n.kind for n in g.nodes] == ["function", "declaration", "call"]
    fn, sink = idx(g, "void f"), idx(g, "strcpy")
    assert g.nodes[fn].is_source and g.nodes[fn].defs == ["in"]
    assert g.nodes[sink].is_sink and g.nodes[sink].is_tainted
    assert g.edges_of("taint") == [(fn, sink)]
    assert (fn, sink) in g.edges_of("data_dep")


def test_sanitizer_cuts_the_flow():
    g = build_statement_graph("void f(char *in){ char buf[8]; char *s = sanitize_input(in); strcpy(buf, s); }")
    san, sink = idx(g, "char *s"), idx(g, "strcpy")
    assert g.nodes[san].is_sanitizer and g.nodes[san].is_tainted  # taint reaches it, and stops there
    assert (san, sink) in g.edges_of("data_dep")
    assert g.nodes[sink].is_sink and not g.nodes[sink].is_tainted
    assert g.edges_of("taint") == []


def test_in_place_sanitizer_and_validator_clean_their_argument():
    g = build_statement_graph("void f(char *in){ char b[8]; escape_html(in); strcpy(b, in); }")
    assert g.edges_of("taint") == [] and not g.nodes[idx(g, "strcpy")].is_tainted
    g = build_statement_graph("void f(char *in){ char b[8]; if (!validate_name(in)) return; strcpy(b, in); }")
    cond, sink = idx(g, "if"), idx(g, "strcpy")
    assert g.nodes[cond].is_sanitizer and g.nodes[cond].defs == ["in"]
    assert g.edges_of("taint") == []


def test_constant_overwrite_cuts_the_flow():
    g = build_statement_graph('void f(char *in){ char buf[8]; in = "safe"; strcpy(buf, in); }')
    over, sink = idx(g, "in ="), idx(g, "strcpy")
    assert g.nodes[over].literal_kinds == ["string"] and not g.nodes[over].is_tainted
    assert (over, sink) in g.edges_of("data_dep")
    assert (idx(g, "void f"), sink) not in g.edges_of("data_dep")  # the parameter's definition is killed
    assert g.edges_of("taint") == []


def test_partial_write_keeps_taint():
    g = build_statement_graph("void f(char *in){ char buf[8]; in[0] = 0; strcpy(buf, in); }")
    fn, write, sink = idx(g, "void f"), idx(g, "in[0]"), idx(g, "strcpy")
    assert g.edges_of("taint") == [(fn, write), (write, sink)]


def test_taint_through_intermediate_variables_and_sources():
    code = """void f(int s){
        char buf[64], cmd[128];
        recv(s, buf, sizeof buf, 0);
        sprintf(cmd, "echo %s", buf);
        system(cmd);
    }"""
    g = build_statement_graph(code)
    rcv, spr, sys_ = idx(g, "recv"), idx(g, "sprintf"), idx(g, "system")
    assert g.nodes[rcv].is_source and g.nodes[rcv].defs == ["buf"]
    assert {(rcv, spr), (spr, sys_)} <= set(g.edges_of("taint"))
    assert g.nodes[sys_].is_sink and g.nodes[sys_].is_tainted


def test_sanitizers_only_cut_their_own_class():
    # snprintf bounds the copy but does not make the string safe for SQL.
    code = """void f(MYSQL *c, char *name){
        char q[256];
        snprintf(q, sizeof q, "SELECT * FROM t WHERE n='%s'", name);
        mysql_query(c, q);
    }"""
    g = build_statement_graph(code)
    snp, sink = idx(g, "snprintf"), idx(g, "mysql_query")
    assert g.nodes[snp].is_sanitizer and not g.nodes[snp].is_sink  # literal format
    assert (snp, sink) in g.edges_of("taint")
    # ... while escaping does.
    code = """void f(MYSQL *c, char *name){
        char e[128], q[256];
        mysql_real_escape_string(c, e, name, strlen(name));
        snprintf(q, sizeof q, "SELECT * FROM t WHERE n='%s'", e);
        mysql_query(c, q);
    }"""
    g = build_statement_graph(code)
    assert g.nodes[idx(g, "mysql_real_escape_string")].is_sanitizer
    assert g.edges_of("taint") == []
    # The connection handle is a tainted parameter too, but not a sensitive argument.
    assert g.nodes[idx(g, "mysql_query")].is_tainted


def test_sink_only_watches_its_sensitive_arguments():
    g = build_statement_graph("void f(char *dst){ char src[8] = \"abc\"; strcpy(dst, src); memcpy(dst, src, 4); }")
    assert g.nodes[idx(g, "strcpy")].is_sink and g.nodes[idx(g, "strcpy")].is_tainted
    assert g.edges_of("taint") == []  # only the destination is tainted
    g = build_statement_graph("void f(char *in){ char d[8]; memcpy(d, \"abcdefgh\", strlen(in)); system(build(in)); }")
    assert set(g.edges_of("taint")) == {(0, idx(g, "memcpy")), (0, idx(g, "system"))}


def test_sqlite_mprintf_sanitizes_only_with_q():
    base = ("void f(sqlite3 *db, char *n){{ char *q = sqlite3_mprintf(\"SELECT %{} \", n); "
            "sqlite3_exec(db, q, 0, 0, 0); }}")
    safe, unsafe = build_statement_graph(base.format("q")), build_statement_graph(base.format("s"))
    assert safe.edges_of("taint") == [] and safe.nodes[idx(safe, "char *q")].is_sanitizer
    assert len(unsafe.edges_of("taint")) == 2 and not unsafe.nodes[idx(unsafe, "char *q")].is_sanitizer


def test_format_string_sink_needs_a_non_literal_format():
    g = build_statement_graph('void f(char *s){ printf("%s", s); printf(s); fprintf(stderr, s); }')
    assert not g.nodes[idx(g, 'printf("%s"')].is_sink
    assert g.nodes[idx(g, "printf(s)")].is_sink and g.nodes[idx(g, "fprintf")].is_sink
    assert len(g.edges_of("taint")) == 2


def test_fragment_without_function_wrapper():
    g = build_statement_graph("char buf[8];\nstrcpy(buf, argv[1]);\nif (n > 0) system(buf);")
    assert g.parse_ok and [n.kind for n in g.nodes] == ["declaration", "call", "if", "call"]
    cpy, cond, sys_ = idx(g, "strcpy"), idx(g, "if"), idx(g, "system")
    assert g.nodes[cpy].is_source and g.nodes[cpy].is_sink  # argv is a source
    assert g.nodes[cpy].line == 2 and g.nodes[sys_].depth == 1
    assert (cpy, sys_) in g.edges_of("taint") and (cond, sys_) in g.edges_of("ast")


# --- control flow and data dependence ------------------------------------------------------------

def test_if_else_branches():
    g = build_statement_graph("int f(int a){ int x; if (a > 0) { x = 1; } else { x = 2; } return x; }")
    cond, t, e, ret = idx(g, "if"), idx(g, "x = 1"), idx(g, "x = 2"), idx(g, "return")
    assert set(g.edges_of("cfg_branch")) == {(cond, t), (cond, e)}
    assert {(t, ret), (e, ret)} <= set(g.edges_of("cfg_seq"))
    assert {(cond, t), (cond, e)} <= set(g.edges_of("ast"))
    assert g.nodes[cond].depth == 1 and g.nodes[t].depth == 2
    assert {(t, ret), (e, ret)} <= set(g.edges_of("data_dep"))  # both definitions of x reach the return
    assert (idx(g, "int x"), ret) not in g.edges_of("data_dep")


def test_if_without_else_falls_through_on_the_false_branch():
    g = build_statement_graph("void f(int a){ if (a) g(); h(); }")
    cond, then, after = idx(g, "if"), idx(g, "g()"), idx(g, "h()")
    assert set(g.edges_of("cfg_branch")) == {(cond, then), (cond, after)}
    assert (then, after) in g.edges_of("cfg_seq")


def test_else_if_chain_is_flat():
    g = build_statement_graph("void f(int a){ if (a == 1) x(); else if (a == 2) y(); else z(); }")
    c1, c2 = idx(g, "if (a == 1)"), idx(g, "if (a == 2)")
    assert (c1, c2) in g.edges_of("cfg_branch") and (c1, c2) in g.edges_of("ast")
    assert g.nodes[c1].depth == g.nodes[c2].depth == 1
    assert (c2, idx(g, "z()")) in g.edges_of("cfg_branch")


def test_while_loop_back_edge_and_loop_carried_dependence():
    g = build_statement_graph("int f(int n){ int i = 0; while (i < n) { i++; } return i; }")
    cond, inc, ret = idx(g, "while"), idx(g, "i++"), idx(g, "return")
    assert g.edges_of("cfg_loop") == [(inc, cond)]
    assert {(cond, inc), (cond, ret)} <= set(g.edges_of("cfg_branch"))
    dd = set(g.edges_of("data_dep"))
    assert {(idx(g, "int i"), cond), (inc, cond), (inc, inc), (inc, ret)} <= dd


def test_for_header_break_and_continue():
    g = build_statement_graph(
        "void f(int n){ for (int i = 0; i < n; i++) { if (i == 3) continue; if (i == 5) break; g(i); } done(); }")
    hdr, cont, brk, call, done = idx(g, "for"), idx(g, "continue"), idx(g, "break"), idx(g, "g(i)"), idx(g, "done")
    assert g.nodes[hdr].kind == "for" and g.nodes[hdr].defs == ["i"]
    assert {(cont, hdr), (call, hdr)} == set(g.edges_of("cfg_loop"))
    assert (brk, done) in g.edges_of("cfg_seq") and (hdr, done) in g.edges_of("cfg_branch")
    assert (hdr, call) in g.edges_of("data_dep")


def test_do_while():
    g = build_statement_graph("void f(int n){ do { n--; } while (n > 0); end(n); }")
    body, cond, end = idx(g, "n--"), idx(g, "while"), idx(g, "end")
    assert g.nodes[cond].kind == "do"
    assert (body, cond) in g.edges_of("cfg_seq") and g.edges_of("cfg_loop") == [(cond, body)]
    assert (cond, end) in g.edges_of("cfg_branch") and (cond, body) in g.edges_of("ast")
    assert {(body, cond), (body, body), (body, end)} <= set(g.edges_of("data_dep"))


def test_switch_cases_fallthrough_and_break():
    g = build_statement_graph(
        "int f(int c){ int x = 0; switch (c) { case 1: x = 1; case 2: x = 2; break; default: x = 3; } return x; }")
    sw, c1, c2, dflt, ret = idx(g, "switch"), idx(g, "case 1"), idx(g, "case 2"), idx(g, "default"), idx(g, "return")
    assert {(sw, c1), (sw, c2), (sw, dflt)} == set(g.edges_of("cfg_branch"))
    assert (idx(g, "x = 1"), c2) in g.edges_of("cfg_seq")  # fall-through
    assert (idx(g, "break"), ret) in g.edges_of("cfg_seq")
    assert (sw, ret) not in g.edges_of("cfg_branch")  # a default exists
    dd = set(g.edges_of("data_dep"))
    assert {(idx(g, "x = 2"), ret), (idx(g, "x = 3"), ret)} <= dd and (idx(g, "x = 1"), ret) not in dd


def test_goto_and_label():
    g = build_statement_graph("int f(int a){ if (a) goto fail; a = 2; fail: return a; }")
    gt, lbl, ret = idx(g, "goto"), idx(g, "fail:"), idx(g, "return")
    assert (gt, lbl) in g.edges_of("cfg_seq") and (lbl, ret) in g.edges_of("cfg_seq")
    assert {(idx(g, "int f"), ret), (idx(g, "a = 2"), ret)} <= set(g.edges_of("data_dep"))


def test_return_ends_the_flow():
    g = build_statement_graph("int f(int a){ return a; a = 1; }")
    assert not [e for e in g.edges if e[0] == idx(g, "return") and e[2] in (1, 2, 3)]


def test_node_features():
    g = build_statement_graph("void f(char *p, struct s *o){ int n = strlen(p) + 0x10; o->len = -n; *p = 'a'; }")
    decl = g.nodes[idx(g, "int n")]
    assert decl.kind == "declaration" and decl.apis == ["strlen"]
    assert set(decl.operators) == {"=", "+"} and decl.literal_kinds == ["int"] and decl.types == ["int"]
    assert decl.defs == ["n"] and decl.uses == ["p"]
    fld = g.nodes[idx(g, "o->len")]
    assert set(fld.operators) == {"=", "->", "u-"} and fld.defs == ["o"] and set(fld.uses) == {"o", "n"}
    deref = g.nodes[idx(g, "*p")]
    assert "u*" in deref.operators and deref.literal_kinds == ["char"]
    assert "ptr" in g.nodes[0].types


# --- cap -------------------------------------------------------------------------------------

def _long_function(n_before: int, n_after: int) -> str:
    before = "".join(f"a{i} = {i};\n" for i in range(n_before))
    after = "".join(f"b{i} = {i};\n" for i in range(n_after))
    return "void f(char *in){\nchar buf[4];\n" + before + "strcpy(buf, in);\n" + after + "}\n"


def test_max_nodes_keeps_nodes_nearest_the_sink():
    code = _long_function(30, 30)
    full = build_statement_graph(code)
    g = build_statement_graph(code, max_nodes=5)
    assert g.n_nodes_before_cap == len(full.nodes) == 63 and len(g.nodes) == 5
    assert_valid(g)
    texts = [n.text for n in g.nodes]
    # The sink, its control-flow neighbours and the nodes its data depends on; source order kept.
    assert texts == ["void f(char *in)", "char buf[4];", "a29 = 29;", "strcpy(buf, in);", "b0 = 0;"]
    assert (0, 3) in g.edges_of("taint") and (2, 3) in g.edges_of("cfg_seq")
    assert build_statement_graph(code, max_nodes=100) == full
    # Two steps away along the flow: a0 (after the declaration), a28, b1; ties in source order.
    # (AST edges do not count, or every statement would be two steps away through the header.)
    g = build_statement_graph(code, max_nodes=7)
    assert [n.text for n in g.nodes] == ["void f(char *in)", "char buf[4];", "a0 = 0;", "a28 = 28;", "a29 = 29;",
                                         "strcpy(buf, in);", "b0 = 0;"]
    assert g.edges_of("taint") == [(0, 5)] and (3, 4) in g.edges_of("cfg_seq")


def test_max_nodes_without_sinks_keeps_the_first_nodes():
    g = build_statement_graph("void f(int a){ a = 1; a = 2; a = 3; a = 4; }", max_nodes=3)
    assert [n.text for n in g.nodes] == ["void f(int a)", "a = 1;", "a = 2;"]
    assert set(g.edges_of("cfg_seq")) == {(0, 1), (1, 2)} and g.n_nodes_before_cap == 5


def test_bad_max_nodes_and_input_types():
    with pytest.raises(ValueError):
        build_statement_graph("int x;", max_nodes=0)
    with pytest.raises(TypeError):
        build_statement_graph(None)


# --- robustness ------------------------------------------------------------------------------

def test_unparsable_code_still_yields_a_graph():
    code = "static int QEMU_PACKED f(int a)\n{\n    if (a) {\n        g(a);\n    x = a +;\n    return a;\n"
    g = build_statement_graph(code)
    assert not g.parse_ok
    assert_valid(g)
    kinds = [n.kind for n in g.nodes]
    assert "function" in kinds and "if" in kinds and "call" in kinds
    assert any(n.uses == ["a"] and n.kind == "return" for n in g.nodes)


def test_flat_error_region_recovers_conditions():
    # Missing closing braces make tree-sitter give up on nesting: keywords and statements come flat.
    code = "int f(int n)\n{\n int i;\n while (i < n) {\n  i++;\n  if (i > 3) {\n   g(i);\n\n return i;\n"
    g = build_statement_graph(code)
    assert not g.parse_ok and [n.kind for n in g.nodes][0] == "function"
    assert {"while", "if", "return"} <= {n.kind for n in g.nodes}
    assert_valid(g)
    cfg_targets = {d for s, d, t in g.edges if EDGE_TYPES[t].startswith("cfg")}
    assert cfg_targets >= set(range(1, len(g.nodes)))  # still one connected flow
    assert (idx(g, "i++"), idx(g, "return")) in g.edges_of("data_dep")


def test_jumps_inside_error_regions_do_not_cut_the_flow():
    code = "int f(int a)\n{\n if (a) {\n  a = 1;\n  return a;\n\n a = a + 2;\n g(a);\n"
    g = build_statement_graph(code)
    assert not g.parse_ok
    assert (idx(g, "a = a + 2"), idx(g, "g(a)")) in g.edges_of("data_dep")
    assert any(d == idx(g, "a = a + 2") for _, d in g.edges_of("cfg_seq") + g.edges_of("cfg_branch"))


def test_empty_and_comment_only_code():
    for code in ("", "   \n", "/* nothing */", b"", "#include <stdio.h>\n"):
        g = build_statement_graph(code)
        assert g.nodes == [] and g.edges == [] and g.n_nodes_before_cap == 0


def test_deep_nesting_is_bounded():
    g = build_statement_graph("void f(){" + "if (a) " * 3000 + "x = 1; }")
    assert_valid(g)
    assert g.nodes[-1].kind == "nested" and len(g.nodes) < 100
    g = build_statement_graph("void f(){" + "{" * 5000 + "x = 1;" + "}" * 5000 + "}")
    assert_valid(g)
    assert g.parse_ok
    assert [n.kind for n in g.nodes] == ["function", "nested"] and g.nodes[-1].defs == ["x"]
