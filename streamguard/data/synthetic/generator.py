"""`generate`: argument checks, label balance, unique codes and the record schema."""
from __future__ import annotations

import math
import random
import re
from typing import Sequence

from ...errors import ConfigError
from . import java, python, twins
from .pair import make_pair
from .pools import CWE_FAMILIES

# Language -> (families, pair maker); C keeps its own generator (its output must not change).
LANGUAGE_FAMILIES: dict[str, tuple[str, ...]] = {"c": CWE_FAMILIES, "java": java.FAMILIES, "python": python.FAMILIES}
_DIALECTS = {"java": java, "python": python}

_SPACE = re.compile(r"\s+")


def _normalized(code: str) -> str:
    return _SPACE.sub("", code)


def _resolve_cwes(cwes: Sequence[str] | None, language: str = "c") -> tuple[str, ...]:
    families = LANGUAGE_FAMILIES[language]
    if cwes is None:
        return families
    if isinstance(cwes, str) or len(cwes) == 0:
        raise ConfigError("synthetic: 'cwes' must be a non-empty list of CWE ids, e.g. [CWE-89, CWE-78]")
    out = []
    for c in cwes:
        key = str(c).strip().upper()
        key = key if key.startswith("CWE-") else "CWE-" + key
        if key not in families:
            raise ConfigError(f"synthetic: unknown CWE {c!r} in 'cwes' for language {language!r}; choose from "
                              f"{', '.join(families)}")
        if key not in out:
            out.append(key)
    return tuple(out)


def generate(n: int, seed: int, vuln_ratio: float = 0.5, cwes: Sequence[str] | None = None,
             language: str = "c") -> list[dict]:
    """`n` synthetic functions in `language` (c, java, python), deterministic in `seed`.

    Functions come as (vulnerable, safe) twins sharing `group` (the pair id). With `vuln_ratio` != 0.5
    the surplus label is filled by pairs that keep only one member, so `n * vuln_ratio` (rounded half up)
    functions are vulnerable. CWE families are used round-robin over the pairs. Codes are unique even after all
    whitespace is removed.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigError(f"synthetic: 'n_functions' must be a non-negative integer, got {n!r}")
    if not (isinstance(vuln_ratio, (int, float)) and 0.0 <= float(vuln_ratio) <= 1.0):
        raise ConfigError(f"synthetic: 'vuln_ratio' must be in [0, 1], got {vuln_ratio!r}")
    if language not in LANGUAGE_FAMILIES:
        raise ConfigError(f"synthetic: no generator for language {language!r}; known: "
                          f"{', '.join(sorted(LANGUAGE_FAMILIES))}")
    families = _resolve_cwes(cwes, language)
    dialect = _DIALECTS.get(language)
    rng = random.Random(seed)
    n_vuln = int(math.floor(n * float(vuln_ratio) + 0.5))
    n_pairs = min(n_vuln, n - n_vuln)
    single_label = 1 if n_vuln > n - n_vuln else 0
    slots = [2] * n_pairs + [1] * (n - 2 * n_pairs)  # 2: both twins, 1: only the surplus label
    rng.shuffle(slots)

    seen: set[str] = set()
    records: list[dict] = []
    for p, slot in enumerate(slots):
        cwe = families[p % len(families)]
        for _ in range(100):
            vuln, safe = make_pair(rng, cwe) if dialect is None else twins.make_pair(dialect, rng, cwe)
            keys = (_normalized(vuln), _normalized(safe))
            if keys[0] != keys[1] and not (set(keys) & seen):
                break
        else:  # pools are large; reaching this means the generator lost its variety
            raise RuntimeError(f"synthetic: could not draw a unique pair for {cwe} after 100 tries")
        members = [(vuln, 1), (safe, 0)] if slot == 2 else [((vuln, 1) if single_label else (safe, 0))]
        if slot == 2 and rng.random() < 0.5:
            members.reverse()
        seen.update(_normalized(code) for code, _ in members)
        for code, label in members:
            records.append({"id": f"syn-{seed}-{len(records):06d}", "code": code, "label": label,
                            "group": f"syn-{seed}-p{p:06d}", "cwe": cwe, "project": "synthetic"})
    return records
