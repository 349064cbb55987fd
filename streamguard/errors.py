"""Error types. The CLI and the stages print a StreamGuardError as one line and exit 2."""
from __future__ import annotations


class StreamGuardError(Exception):
    """A user-facing error: the message names the file, line and field, and what to do."""

    exit_code = 2


class ConfigError(StreamGuardError):
    """params.yaml or a config override is invalid."""


def one_line(text: object) -> str:
    """`text` (an exception, a message) on one line: every run of whitespace made one space."""
    return " ".join(str(text).split())


class DataError(StreamGuardError):
    """An input data file is missing or malformed."""

    def __init__(self, message: str, path: object = None, line: int | None = None, field: str | None = None):
        where = []
        if path is not None:
            where.append(str(path) + (f":{line}" if line is not None else ""))
        if field is not None:
            where.append(f"field '{field}'")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)
        self.path, self.line, self.field = path, line, field


def pretrained_unavailable(name: object, what: str, exc: BaseException) -> StreamGuardError:
    """One line for a pretrained checkpoint that cannot be loaded, naming the settings that fix it.

    A hub id needs the Hugging Face hub (or its cache); on a machine without it, a copy saved once with
    `save_pretrained` (or `huggingface-cli download ID --local-dir DIR`) is a directory to point at.
    """
    reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
    return StreamGuardError(
        f"{name}: cannot load the pretrained {what} ({reason}); if it is a hub id and the hub cannot be reached, "
        f"save the checkpoint to a local directory and set both 'tokenizer.pretrained' and 'transformer.pretrained' "
        f"to it (e.g. dvc exp run -S tokenizer.pretrained=DIR -S transformer.pretrained=DIR); "
        f"HF_HUB_OFFLINE=1 makes an unreachable hub fail at once instead of after a minute of retries")


class SerializationError(StreamGuardError):
    """A value cannot be written as strict JSON."""


class CheckpointError(StreamGuardError):
    """A checkpoint is missing, corrupt or belongs to another run."""


class CorruptFileError(CheckpointError):
    """A saved file exists but cannot be read back (truncated, damaged, not ours): never a reason to
    delete anything or to report a collapse."""


class WriteError(StreamGuardError, OSError):
    """An output file cannot be written (disk full, I/O error): names the file; still an OSError."""

    def __init__(self, message: str, errno: int | None = None):
        super().__init__(message)
        self.errno = errno


class Terminated(BaseException):
    """SIGTERM arrived: raised in the main thread like KeyboardInterrupt, so cleanup code runs."""
