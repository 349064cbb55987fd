"""Name pools, literals and safe-twin strategy weights the generator draws from.

Changing any tuple here (content or order) changes every generated data set for a given seed.
"""
from __future__ import annotations

CWE_FAMILIES: tuple[str, ...] = ("CWE-89", "CWE-78", "CWE-134", "CWE-120", "CWE-121")

# Safe-twin strategies. Every strategy keeps the twins' called-function sets equal.
#  swap      the sink gets a constant (or a bounded length) in the safe twin, the tainted value in the
#            vulnerable one; the other value is used harmlessly in both
#  overwrite the taint is overwritten by a constant before the sink (vulnerable: the reverse order)
#  guard     a sanitizer / bounds check guards the sink (vulnerable: checked too late or checks the
#            wrong variable)
#  flag      the check result is computed in both, but only the safe twin rejects on it
#  fmt       CWE-134 only: "%s" format for the tainted value, the constant as the format
#  prepared  CWE-89 only: the tainted value is bound as a parameter, the constant is spliced into SQL
STRATEGIES: dict[str, tuple[tuple[str, int], ...]] = {
    "CWE-89": (("swap", 3), ("overwrite", 2), ("guard", 3), ("flag", 3), ("prepared", 2)),
    "CWE-78": (("swap", 3), ("overwrite", 2), ("guard", 3), ("flag", 3)),
    "CWE-134": (("swap", 2), ("overwrite", 2), ("guard", 2), ("flag", 3), ("fmt", 3)),
    "CWE-120": (("swap", 3), ("overwrite", 2), ("guard", 3), ("flag", 3)),
    "CWE-121": (("swap", 3), ("overwrite", 2), ("guard", 3), ("flag", 3)),
}

# --- identifier pools (one shared pool per kind so a name says nothing about its role) -------------
STR_NAMES = (
    "name", "user", "input", "arg", "path", "value", "host", "entry", "token", "field", "param", "text",
    "item", "key", "label", "title", "target", "source", "line", "word", "msg", "data", "payload",
    "request", "file", "dir", "url", "login", "account", "owner", "comment", "filter", "pattern",
    "option", "spec", "alias", "nick", "tag", "topic", "query_arg", "selector", "locale", "theme",
)
STR_SUFFIXES = ("", "", "", "_str", "_s", "_in", "_val", "2", "_ptr", "_p")
BUF_NAMES = ("buf", "dst", "out", "tmp", "line_buf", "scratch", "local", "dest", "copy", "work", "store",
              "result", "holder", "space", "field_buf", "name_buf", "msg_buf", "block")
INT_NAMES = ("i", "j", "k", "n", "len", "count", "total", "rc", "status", "flags", "idx", "pos", "size",
              "limit", "depth", "retries", "acc", "sum", "hits", "misses", "width", "step", "off", "cnt")
LEN_NAMES = ("n", "len", "want", "nbytes", "copy_len", "safe_len", "bounded", "capped", "room", "amount",
              "sz", "span", "extent", "need")
INT_SUFFIXES = ("", "", "_n", "2", "_v", "_cur")
VERBS = ("handle", "process", "load", "parse", "update", "run", "exec", "build", "read", "apply", "check",
          "store", "fetch", "render", "init", "dispatch", "lookup", "save", "open", "sync", "emit", "prepare")
NOUNS = ("user", "config", "request", "session", "record", "entry", "profile", "query", "command", "path",
          "message", "header", "account", "item", "log", "job", "report", "token", "file", "option", "task")
PREFIXES = ("", "", "srv_", "db_", "cli_", "app_", "net_", "util_", "core_", "mod_")
HELPERS = ("trim_spaces", "normalize_input", "skip_ws", "canonicalize", "lowercase_copy", "unescape_str",
            "strip_quotes", "decode_field", "next_token", "collapse_slashes")
LOGGERS = ("log_debug", "trace_msg", "debug_print", "audit_note", "log_verbose")
VALIDATORS = {  # project-specific predicates: true when the value is acceptable
    "CWE-78": ("validate_filename", "validate_hostname", "is_safe_arg", "check_shell_chars"),
    "CWE-89": ("validate_ident", "validate_username", "is_alnum_string", "check_sql_chars"),
}
ENV_NAMES = ("USER_NAME", "APP_TARGET", "HOME_DIR", "REQ_PATH", "SESSION_ID", "LOG_TAG", "QUERY_KEY",
              "REMOTE_HOST", "BACKUP_DIR", "DISPLAY_NAME", "CFG_VALUE", "EDITOR_CMD")
LITERALS = {
    "CWE-89": ("guest", "admin", "anonymous", "default", "system", "nobody"),
    "CWE-78": ("/tmp/cache", "/var/log", "localhost", "report.txt", "/srv/data", "backup.tar"),
    "CWE-78-direct": ("uptime", "ls -l /tmp", "date", "df -h", "whoami", "sync"),
    "CWE-134": ("starting up\n", "request done\n", "no data\n", "retrying\n", "connection closed\n", "idle\n"),
    "CWE-120": ("guest", "default", "none", "local", "unknown", "empty"),
}
SQL = ("SELECT id FROM users WHERE name = '%s'", "DELETE FROM sessions WHERE token = '%s'",
        "UPDATE accounts SET last_login = 0 WHERE login = '%s'",
        "SELECT * FROM items WHERE tag = '%s' ORDER BY id", "INSERT INTO audit(actor) VALUES ('%s')",
        "SELECT email FROM profiles WHERE nick = '%s' LIMIT 1")
# One column spliced in with %s, one bound with ?: the prepared-statement strategy swaps which gets the input.
SQL_BIND = ("SELECT id FROM users WHERE name = '%s' AND role = ?",
             "DELETE FROM sessions WHERE owner = '%s' AND token = ?",
             "UPDATE accounts SET status = ? WHERE login = '%s'",
             "SELECT * FROM items WHERE tag = '%s' AND region = ? ORDER BY id",
             "INSERT INTO audit(actor, action) VALUES ('%s', ?)")
CMDS = ("ls -l %s", "tar czf /tmp/backup.tgz %s", "ping -c 1 %s", "grep -n error %s", "du -sh %s", "cat %s")
SHELL_META = '";|&$`<>"'
SQL_ALLOWED = '"abcdefghijklmnopqrstuvwxyz0123456789_"'
MESSAGES = ("starting", "done", "skip", "retry", "ready", "flush")
