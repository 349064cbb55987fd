"""Language registry, the shared function extractor, and the language-neutral core."""
import ast
import pathlib
import threading

import pytest

from streamguard.errors import ConfigError
from streamguard.graphs import languages
from streamguard.graphs.builder import build_statement_graph
from streamguard.graphs.languages import (LANGUAGES, Function, extract_functions, get_language, language_for_path,
                                          parser)
from streamguard.graphs.languages.c import SPEC as C
from streamguard.graphs.parallel import build_graphs

GRAPHS = pathlib.Path(languages.__file__).resolve().parents[1]


def test_registry_and_unknown_language():
    assert get_language("c") is C and LANGUAGES["c"] is C and list(LANGUAGES) == ["c", "java", "python"]
    with pytest.raises(ConfigError) as err:
        get_language("cobol")
    msg = str(err.value)
    assert "\n" not in msg and "'cobol'" in msg and msg.endswith("known: c, java, python")
    with pytest.raises(TypeError):
        LANGUAGES["java"] = C  # read-only: languages are registered in the package itself


def test_unknown_language_fails_in_every_entry_point():
    for call in (lambda: build_statement_graph("int x;", language="rust"),
                 lambda: build_graphs(["int x;"], 8, workers=1, language="rust"),
                 lambda: extract_functions(b"int f(void){return 0;}", "rust")):
        with pytest.raises(ConfigError, match="unknown language 'rust'"):
            call()


def test_language_for_path():
    for name in ("a.c", "inc/a.h", "x.CC", "x.cpp", "x.cxx", "x.hpp", "x.hh", pathlib.Path("dir/y.C")):
        assert language_for_path(name) is C, name
    for name in ("a.rs", "a.go", "Makefile", "a.c.orig", "README"):
        assert language_for_path(name) is None, name
    assert C.suffixes == (".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh")


def test_extract_functions_names_through_declarators():
    src = (b"char *get(void) { return 0; }\n"
           b"static char **pp(int a)\n{\n    return 0;\n}\n"
           b"void (*handler(int sig))(int) { return 0; }\n"
           b"int (*(*table(void))[4])(void) { return 0; }\n"
           b"int x;\nint proto(int);\n")
    found = extract_functions(src)
    assert [(f.name, f.start_line, f.end_line) for f in found] == [
        ("get", 1, 1), ("pp", 2, 5), ("handler", 6, 6), ("table", 7, 7)]
    assert found[1].code == "static char **pp(int a)\n{\n    return 0;\n}"
    name, l0, l1, code = found[0]  # still a plain 4-tuple
    assert (name, l0, l1, code) == ("get", 1, 1, "char *get(void) { return 0; }") and isinstance(found[0], Function)
    assert extract_functions(src.decode()) == found  # str is encoded as UTF-8


def test_extract_functions_from_broken_code():
    # An unterminated body swallows its function, but what follows is still found.
    src = "int ok1(void) { return 1; }\nint broken(void) { if (x) { y = ;\nint ok2(void) { return 2; }\n"
    assert [(f.name, f.start_line) for f in extract_functions(src)] == [("ok1", 1), ("ok2", 3)]
    # A syntax error inside a body, garbage between functions, a preprocessor conditional.
    src = "int ok1(void) { return 1; }\n@@@ junk ###\nint bad(void) { x = (1 + ; }\n#if X\nint ok2(int a) { return a; }\n#endif\n"
    assert [(f.name, f.start_line) for f in extract_functions(src)] == [("ok1", 1), ("bad", 3), ("ok2", 5)]
    assert extract_functions(src)[1].code == "int bad(void) { x = (1 + ; }"
    assert [f.name for f in extract_functions("int ok1(void) { return 1; }\n}}}\nint ok2(void) { return 2; }")] == [
        "ok1", "ok2"]
    assert extract_functions(b"") == [] and extract_functions(b"int x;") == []
    assert [f.name for f in extract_functions(b"int (*)(void) { return 0; }")] == ["<anonymous>"]


def test_parser_is_per_thread():
    here = parser("c")
    assert parser("c") is here
    other = []
    t = threading.Thread(target=lambda: other.append(parser("c")))
    t.start()
    t.join()
    assert other[0] is not here


def test_extracted_functions_build_the_same_graph():
    src = b"void a(char *s) { system(s); }\n\nint b(int n) { return n + 1; }\n"
    for f in extract_functions(src):
        assert build_statement_graph(f.code) == build_statement_graph(f.code, language="c")
    assert build_statement_graph(extract_functions(src)[0].code).edges_of("taint") == [(0, 1)]


def _c_node_types() -> set[str]:
    sx = C.syntax
    names: set[str] = set()
    for value in vars(sx).values():
        if isinstance(value, (dict, frozenset, set)):
            names.update(k for k in value if isinstance(k, str))
        elif isinstance(value, tuple):
            names.update(v for v in value if isinstance(v, str))
        elif isinstance(value, str):
            names.add(value)
    # Tokens shared with the core's own vocabulary (statement kinds, operators) are not grammar-specific.
    return {n for n in names if "_" in n or n in ("identifier", "translation_unit")}


@pytest.mark.parametrize("module", ["graph", "builder", "cfg", "statements", "dataflow", "taint", "select",
                                    "features", "store", "parallel", "languages/__init__", "languages/spec"])
def test_core_names_no_c_node_type(module):
    tree = ast.parse((GRAPHS / f"{module}.py").read_text())
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    c_types = _c_node_types()
    assert len(c_types) > 50
    # Docstrings may mention C constructs; code may not name C node types.
    assert not {s for s in strings if s in c_types}, module
