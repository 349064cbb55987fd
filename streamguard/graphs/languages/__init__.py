"""Language front-ends for the statement graphs, and the one function extractor.

    get_language("c") -> LanguageSpec          unknown name -> ConfigError listing the known ones
    language_for_path("src/x.c") -> LanguageSpec | None   by file suffix
    extract_functions(source, language="c") -> [Function(name, start_line, end_line, code)]
    parser("c") -> tree_sitter.Parser          one per thread and language, created lazily

A language is one module here that builds a `spec.LanguageSpec` (grammar loader, node-type
tables, taint catalog, file suffixes, function names) and is listed in `LANGUAGES`.
"""
from __future__ import annotations

import pathlib
import threading
import types
from typing import Mapping, NamedTuple

from tree_sitter import Parser

from ...errors import ConfigError
from . import c, java, python
from .spec import LanguageSpec, Syntax

__all__ = ["LANGUAGES", "Function", "LanguageSpec", "Syntax", "extract_functions", "get_language",
           "language_for_path", "parser"]

LANGUAGES: Mapping[str, LanguageSpec] = types.MappingProxyType(
    {spec.name: spec for spec in (c.SPEC, java.SPEC, python.SPEC)})
_BY_SUFFIX = {suffix: spec for spec in LANGUAGES.values() for suffix in spec.suffixes}


def get_language(name: str) -> LanguageSpec:
    spec = LANGUAGES.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ConfigError(f"unknown language {name!r}; known: {', '.join(sorted(LANGUAGES))}")
    return spec


def language_for_path(path: str | pathlib.Path) -> LanguageSpec | None:
    """The language of a source file by its suffix (case-insensitive), None when there is none."""
    return _BY_SUFFIX.get(pathlib.PurePath(path).suffix.lower())


_local = threading.local()


def parser(language: str = "c") -> Parser:
    """This thread's parser for `language` (tree-sitter parsers are not thread-safe)."""
    cache = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    p = cache.get(language)
    if p is None:
        p = cache[language] = Parser(get_language(language).grammar())
    return p


class Function(NamedTuple):
    name: str
    start_line: int  # 1-based, inclusive
    end_line: int
    code: str


def extract_functions(source: bytes | str, language: str = "c") -> list[Function]:
    """Every function definition in a file, in file order; what tree-sitter recovers from broken
    code is still returned. Nested definitions stay inside their enclosing function."""
    spec = get_language(language)
    if isinstance(source, str):
        source = source.encode("utf-8", "replace")
    functions = frozenset(t for t, role in spec.syntax.statements.items() if role == "function")
    found = []
    stack = [parser(language).parse(source).root_node]
    while stack:
        node = stack.pop()
        if node.type in functions:
            code = source[node.start_byte:node.end_byte].decode("utf-8", "replace")
            found.append(Function(spec.function_name(node), node.start_point[0] + 1, node.end_point[0] + 1, code))
            continue
        stack.extend(reversed(node.children))
    return found
