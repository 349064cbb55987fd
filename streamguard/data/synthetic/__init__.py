"""Deterministic generator of functions with injected vulnerabilities and their patched twins.

`generate(n, seed, vuln_ratio, cwes, language="c")`: C (below), or Java / Python (`twins`, `java`,
`python`: CWE-89 and CWE-78 over the same strategies, see `twins.py`). The C output does not depend
on the other languages.

Each pair is one C function in two versions built from the same random draws: the vulnerable one lets
tainted input (getenv, argv, fgets, recv, read, scanf) reach a sink, the safe twin does not. The twins
call the same functions and use the same literals; only the data flow differs (which variable reaches
the sink, the order of an overwrite or a check, whether a check rejects). A bag-of-tokens model therefore
sees near-identical inputs for the two labels, while a model that follows data flow can separate them.

Families: CWE-89 (SQL built from input reaching mysql_query / sqlite3_exec / PQexec / sqlite3_prepare_v2),
CWE-78 (system / popen / execl), CWE-134 (printf / fprintf / syslog with a tainted format),
CWE-120 (strcpy / strcat / sprintf into a fixed stack buffer), CWE-121 (memcpy / memmove / strncpy into a
stack buffer with a tainted length).

Everything is drawn from one `random.Random(seed)`, so a seed gives byte-identical output.

Modules: `pools` (name pools, literals, strategy weights), `statements` (the function's name scope and
the statements every family shares: sources, hops, distractors, dead code), `sinks` (one sink builder
per CWE), `pair` (safe-twin strategies and assembly of one vulnerable/safe pair), `generator` (the
public `generate`: sizes, labels, uniqueness, record schema, the language).
"""
from .generator import generate
from .pools import CWE_FAMILIES

__all__ = ["CWE_FAMILIES", "generate"]
