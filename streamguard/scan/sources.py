"""What scan reads: the source files under the given paths and the functions in them.

Everything that cannot be scored is reported as a `Skipped` entry with its reason, never silently
dropped and never fatal: binary files, invalid UTF-8, unreadable files, symlink loops, files over
the size budget, files whose code tree-sitter could not turn into any function, functions over the
character budget, and files of a language no bundle covers.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Iterable, Iterator

from ..errors import StreamGuardError
from ..graphs.languages import Function, extract_functions, language_for_path, parser

BINARY_SNIFF_BYTES = 8192


@dataclasses.dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Unit:
    """One function to score: where it lives and its code."""

    path: pathlib.Path  # as found (absolute or relative to the working directory)
    uri: str  # relative to the scanned root, '/'-separated
    language: str
    function: Function
    start_column: int  # 1-based
    end_column: int


def _walk(path: pathlib.Path, skipped: list[Skipped]) -> Iterator[pathlib.Path]:
    """Files under `path` in sorted order; symlinked directories are reported, not followed (no loops)."""
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        here = pathlib.Path(dirpath)
        for d in sorted(dirnames):
            if (here / d).is_symlink():
                skipped.append(Skipped(str(here / d), "symbolic link to a directory: not followed"))
        dirnames[:] = sorted(d for d in dirnames if not (here / d).is_symlink() and not d.startswith("."))
        for name in sorted(filenames):
            yield here / name


def _uri(file: pathlib.Path, root: pathlib.Path) -> str:
    try:
        return file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # outside the root (a symlinked file): keep the path as given
        return file.as_posix()


def _read(file: pathlib.Path, max_file_bytes: int, skipped: list[Skipped]) -> bytes | None:
    try:
        size = file.stat().st_size  # follows a symlinked file; a loop or dangling link raises here
        if size > max_file_bytes:
            skipped.append(Skipped(str(file), f"{size} bytes, over the {max_file_bytes}-byte file budget (--max-file-bytes)"))
            return None
        data = file.read_bytes()
    except OSError as exc:
        skipped.append(Skipped(str(file), f"unreadable ({exc.strerror or type(exc).__name__})"))
        return None
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        skipped.append(Skipped(str(file), "binary file (NUL bytes)"))
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        skipped.append(Skipped(str(file), f"not valid UTF-8 (line {line}, byte {exc.start})"))
        return None
    return data


def _columns(lines: list[bytes], fn: Function) -> tuple[int, int]:
    first = lines[fn.start_line - 1] if fn.start_line <= len(lines) else b""
    last = lines[fn.end_line - 1] if fn.end_line <= len(lines) else b""
    start = len(first) - len(first.lstrip()) + 1
    # SARIF columns count characters; endColumn is one past the last character.
    return len(first[:start - 1].decode("utf-8", "replace")) + 1, len(last.rstrip().decode("utf-8", "replace")) + 1


def _mostly_unparsable(data: bytes, language: str) -> bool:
    """Whether tree-sitter's error regions cover at least half of the file's text."""
    root = parser(language).parse(data).root_node
    if not root.has_error:
        return False
    if root.type == "ERROR":
        return True
    broken = sum(c.end_byte - c.start_byte for c in root.children if c.type == "ERROR" or c.is_missing)
    return 2 * broken >= len(data.strip())


def collect(paths: Iterable[str | pathlib.Path], root: pathlib.Path, languages: set[str], *,
            max_file_bytes: int, max_function_chars: int) -> tuple[list[Unit], list[Skipped], int]:
    """Every function to score under `paths` -> (units, skipped, number of source files read)."""
    units: list[Unit] = []
    skipped: list[Skipped] = []
    n_files = 0
    for given in paths:
        path = pathlib.Path(given)
        if not path.exists() and not path.is_symlink():
            raise StreamGuardError(f"{path}: no such file or directory")
        files = [path] if not path.is_dir() else _walk(path, skipped)
        for file in files:
            spec = language_for_path(file)
            if spec is None:
                if file == path:  # named explicitly: say why it is not scanned
                    skipped.append(Skipped(str(file), "not a source file of a known language (by suffix)"))
                continue
            if spec.name not in languages:
                skipped.append(Skipped(str(file), f"no bundle for language {spec.name!r} (bundles cover: "
                                                  f"{', '.join(sorted(languages))})"))
                continue
            data = _read(file, max_file_bytes, skipped)
            if data is None:
                continue
            n_files += 1
            functions = extract_functions(data, spec.name)
            if not functions:
                if _mostly_unparsable(data, spec.name):  # a file of tables or declarations is fine
                    skipped.append(Skipped(str(file), "does not parse: no function could be recovered"))
                continue
            uri = _uri(file, root)
            lines = data.split(b"\n")  # once per file: a file may hold tens of thousands of functions
            for fn in functions:
                if len(fn.code) > max_function_chars:
                    skipped.append(Skipped(f"{file}:{fn.start_line}", f"function {fn.name!r} has {len(fn.code)} "
                                           f"characters, over the {max_function_chars} budget (--max-function-chars)"))
                    continue
                start_col, end_col = _columns(lines, fn)
                units.append(Unit(file, uri, spec.name, fn, start_col, end_col))
    return units, skipped, n_files
