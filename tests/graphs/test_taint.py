from streamguard.graphs import taint
from streamguard.graphs.languages.c import ALL, BUF, CATALOG, CMD, FMT, SQL, TAINT_CLASSES


def lit(text):
    return ("lit", text, ())


def var(name):
    return ("expr", name, (name,))


def test_sources_writers_and_variadic_outputs():
    eff = CATALOG.call_effects([("fgets", [var("buf"), ("expr", None, ()), var("stdin")])])
    assert eff.source and eff.writes == ["buf"] and eff.sink_mask == 0
    eff = CATALOG.call_effects([("scanf", [lit('"%d %s"'), ("addr", "n", ("n",)), var("s")])])
    assert eff.source and eff.writes == ["n", "s"]
    eff = CATALOG.call_effects([("sscanf", [var("line"), lit('"%d"'), ("addr", "n", ("n",))])])
    assert not eff.source and eff.writes == ["n"]


def test_sinks_watch_sensitive_arguments_only():
    mask, watched = CATALOG.sinks("strcpy", [var("dst"), ("expr", "src", ("src", "i"))])
    assert mask == BUF and watched == {"src": BUF, "i": BUF}
    assert CATALOG.sinks("mysql_query", [var("conn"), var("q")]) == (SQL, {"q": SQL})
    assert CATALOG.sinks("execvp", [var("file"), var("argv")]) == (CMD, {"file": CMD, "argv": CMD})
    assert CATALOG.sinks("printf", [lit('"%s"'), var("s")]) == (0, {})
    assert CATALOG.sinks("fprintf", [var("f"), var("fmt")]) == (FMT, {"fmt": FMT})
    assert CATALOG.sinks("sprintf", [var("d"), var("fmt"), var("x")]) == (BUF | FMT, {"fmt": BUF | FMT, "x": BUF})
    assert CATALOG.sinks("my_helper", [var("x")]) == (0, {})


def test_sanitizer_classes():
    assert CATALOG.sanitize_mask("strncpy", [var("d"), var("s"), var("n")]) == BUF
    assert CATALOG.sanitize_mask("mysql_real_escape_string", []) == SQL  # catalogued: not a custom sanitizer
    assert CATALOG.sanitize_mask("sqlite3_mprintf", [lit('"WHERE a=%Q"'), var("a")]) == SQL
    assert CATALOG.sanitize_mask("sqlite3_mprintf", [lit('"WHERE a=%s"'), var("a")]) == 0
    for name in ("sanitize", "escape_shell_arg", "av_escape", "validate_input", "Sanitize_Path"):
        assert CATALOG.sanitize_mask(name, [var("x")]) == ALL, name
    for name in ("unescape", "invalidate_cache", "strlen"):
        assert CATALOG.sanitize_mask(name, [var("x")]) == 0, name
    eff = CATALOG.call_effects([("sanitize_path", [var("p"), lit('"x"')])])
    assert eff.in_place == ["p"] and eff.sanitize_mask == ALL


def test_relevance_filter_matches_catalogs():
    assert CATALOG.is_relevant("strcpy") and CATALOG.is_relevant("execve") and CATALOG.is_relevant("escape_html")
    assert not CATALOG.is_relevant("av_log_set_level") and not CATALOG.is_relevant("foo")


def test_propagate_classes_sanitizers_and_sink_paths():
    # 0 source -> 1 (cuts BUF) -> 2 strcpy sink (BUF): cut;  1 -> 3 system sink (CMD): flows.
    # 0 -> 4 -> 5 (no sink downstream): tainted, but not a taint edge.
    deps = [(0, 1, "a"), (1, 2, "b"), (1, 3, "b"), (0, 4, "a"), (4, 5, "c")]
    source = [True, False, False, False, False, False]
    sanitize = [0, BUF, 0, 0, 0, 0]
    sinks = [{}, {}, {"b": BUF}, {"b": CMD}, {}, {}]
    incoming, out, edges = taint.propagate(6, deps, source, sanitize, sinks, TAINT_CLASSES.values())
    assert out[0] == ALL and out[1] == ALL & ~BUF and incoming[5] == ALL
    assert edges == [(0, 1), (1, 3)]


def test_propagate_loops_reach_a_fixpoint():
    deps = [(0, 1, "x"), (1, 2, "x"), (2, 1, "x"), (2, 3, "x")]
    incoming, out, edges = taint.propagate(4, deps, [True, False, False, False], [0] * 4,
                                           [{}, {}, {}, {"x": SQL}], TAINT_CLASSES.values())
    assert all(incoming[i] == ALL for i in (1, 2, 3))
    assert edges == [(0, 1), (1, 2), (2, 1), (2, 3)]


def test_catalog_classes_and_empty_catalog():
    assert CATALOG.all_classes == ALL and sorted(TAINT_CLASSES) == ["buffer", "command", "format", "sql"]
    # A language without taint rules: nothing is relevant, no call has a role.
    empty = taint.TaintCatalog(classes={"x": 1}, source_vars=frozenset(), source_calls={}, writer_calls={},
                               variadic_out={}, sink_calls={})
    assert not empty.is_relevant("strcpy") and not empty.is_custom_sanitizer("sanitize")
    assert empty.call_effects([("strcpy", [var("d"), var("s")])]) == taint.Effects()
