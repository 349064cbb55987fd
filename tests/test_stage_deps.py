"""dvc.yaml's stage deps cover every project module a stage's script can import, and nothing the
stage never runs (editing the report or scan code must retrain nothing)."""
from __future__ import annotations

import ast
import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _module_file(name: str) -> pathlib.Path | None:
    base = ROOT / pathlib.Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: pathlib.Path) -> set[str]:
    """Project modules imported anywhere in a file (top level or inside functions)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0]
        parent = package
    else:
        parent = package.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parent.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # `from pkg import module`
    return {m for m in found if m.split(".")[0] == "streamguard"}


def reachable_files(script: pathlib.Path) -> set[pathlib.Path]:
    seen: set[pathlib.Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for mod in _imports(path):
            parts = mod.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                f = _module_file(".".join(parts[:i]))
                if f is not None:
                    todo.append(f)
            f = _module_file(mod)
            if f is not None and f.name == "__init__.py" and "pkgutil.iter_modules" in f.read_text(encoding="utf-8"):
                # A package that imports its modules dynamically (the kind registry) is a dep as a whole.
                todo.extend(f.parent.glob("*.py"))
    return {p for p in seen if p != script}


def _stages() -> dict[str, dict]:
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    out = {}
    for name, stage in dvc["stages"].items():
        body = stage.get("do", stage)
        deps = []
        for dep in body.get("deps", []):
            for key, value in params["paths"].items():
                dep = dep.replace("${paths.%s}" % key, value)
            deps.append(dep.replace("${item}", str(params["seeds"][0])))
        out[name] = {"cmd": body["cmd"], "deps": deps}
    return out


def _covered(path: pathlib.Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_stage_deps_cover_every_imported_module(stage):
    body = _stages()[stage]
    script = ROOT / body["cmd"].split()[1]
    assert _covered(script, body["deps"]), f"{stage}: its script is not a dep"
    missing = sorted(p.relative_to(ROOT).as_posix() for p in reachable_files(script) if not _covered(p, body["deps"]))
    assert not missing, f"{stage} imports modules that are not deps in dvc.yaml: {missing}"


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_report_and_scan_code_retrain_nothing(stage):
    deps = _stages()[stage]["deps"]
    never = ["streamguard/scan.py", "streamguard/cli.py"]
    if stage not in ("baseline", "aggregate"):
        never.append("streamguard/baselines")
    if stage != "aggregate":
        never.append("streamguard/report")
    for path in never:
        assert not any(d == path or path.startswith(d.rstrip("/") + "/") or d.startswith(path + "/") for d in deps), \
            f"{stage} depends on {path}"
    assert "streamguard" not in deps, f"{stage} depends on the whole package"
