"""A mixed source tree: each file goes to the bundle of its language, or is reported as not covered."""
import pathlib

from streamguard.scan.sources import collect

FILES = {
    "src/a.c": "int run(char *s) { return system(s); }\n",
    "src/Users.java": "class Users { void find(String id, Statement st) throws Exception { st.execute(id); } }\n",
    "app/views.py": "def view(cursor, uid):\n    cursor.execute('SELECT 1 WHERE id = %s' % uid)\n",
}


def _tree(tmp_path: pathlib.Path) -> pathlib.Path:
    for rel, text in FILES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_each_file_is_scored_in_its_language(tmp_path):
    root = _tree(tmp_path)
    units, skipped, n_files = collect([root], root, {"c", "java", "python"}, max_file_bytes=1 << 20,
                                      max_function_chars=10_000)
    assert not skipped and n_files == 3
    assert sorted((u.uri, u.language, u.function.name) for u in units) == [
        ("app/views.py", "python", "view"), ("src/Users.java", "java", "Users.find"), ("src/a.c", "c", "run")]


def test_a_language_without_bundle_is_reported(tmp_path):
    root = _tree(tmp_path)
    units, skipped, _ = collect([root], root, {"c"}, max_file_bytes=1 << 20, max_function_chars=10_000)
    assert [u.language for u in units] == ["c"]
    reasons = {pathlib.Path(s.path).name: s.reason for s in skipped}
    assert reasons.keys() == {"Users.java", "views.py"}
    assert "no bundle for language 'java'" in reasons["Users.java"]
    assert "no bundle for language 'python'" in reasons["views.py"]


def test_every_taint_class_has_its_own_sarif_rule():
    from streamguard.graphs.languages import LANGUAGES
    from streamguard.scan.sarif import RULES, rule_for

    for spec in LANGUAGES.values():
        for cls in spec.catalog.classes:
            assert cls in RULES and rule_for(cls).id != RULES["generic"].id, (spec.name, cls)
    assert rule_for("code").cwes == ("CWE-94",) and rule_for("path").cwes == ("CWE-22",)
