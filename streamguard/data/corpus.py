"""An unlabelled corpus for masked-token pretraining: every function of a directory of source files.

The user's own code base (`pretrain.corpus`) adds functions to pretrain on beside the training split.
Functions whose normalized text equals a valid or test function are dropped, so pretraining never
sees evaluation code through the corpus either. Files are read in sorted path order (the same corpus
gives the same functions in the same order); files of other languages, symlinks, undecodable files
and functions over `max_code_chars` are skipped and counted.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
from typing import Iterable

from ..errors import DataError
from ..graphs.languages import extract_functions, language_for_path
from .clean import dedup_key, normalize_code


@dataclasses.dataclass
class CorpusStats:
    files: int = 0
    functions: int = 0
    skipped_files: int = 0
    dropped_in_valid_or_test: int = 0
    dropped_oversized: int = 0
    sha256: str = ""  # of the kept functions' text: what pretrain.json records of the corpus

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _source_files(base: pathlib.Path) -> list[pathlib.Path]:
    """Every file under `base`, sorted; symlinked directories are not entered (no loops, no escapes)."""
    found = []
    for dirpath, _dirs, files in os.walk(base, followlinks=False):
        found.extend(pathlib.Path(dirpath) / name for name in files)
    return sorted(found)


def read_corpus(root: str | pathlib.Path, language: str, exclude: Iterable[str],
                max_code_chars: int) -> tuple[list[str], CorpusStats]:
    """Functions of the `language` files under `root`, minus those equal (normalized) to `exclude`."""
    base = pathlib.Path(root)
    if not base.is_dir():
        raise DataError("not a directory of source files", base, field="pretrain.corpus")
    held_out = {dedup_key(normalize_code(code)) for code in exclude}
    stats = CorpusStats()
    digest = hashlib.sha256()
    codes: list[str] = []
    for path in _source_files(base):
        spec = language_for_path(path)
        if spec is None or spec.name != language:
            continue
        if path.is_symlink():
            stats.skipped_files += 1
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            stats.skipped_files += 1
            continue
        stats.files += 1
        for fn in extract_functions(text, language):
            if len(fn.code) > max_code_chars:
                stats.dropped_oversized += 1
            elif dedup_key(normalize_code(fn.code)) in held_out:
                stats.dropped_in_valid_or_test += 1
            else:
                codes.append(fn.code)
                digest.update(fn.code.encode("utf-8") + b"\0")
    if not codes:
        raise DataError(f"no {language} functions found (graph.language decides which files count)", base,
                        field="pretrain.corpus")
    stats.functions = len(codes)
    stats.sha256 = digest.hexdigest()
    return codes, stats
