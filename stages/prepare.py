"""DVC stage `prepare`: params.yaml (seed, data, tokenizer, graph) -> paths.processed (data/processed/)."""
import logging
import sys

from streamguard.config import load_config
from streamguard.data.pipeline import prepare
from streamguard.errors import StreamGuardError
from streamguard.runner import guarded


def main() -> None:
    cfg = load_config("params.yaml")
    out = cfg.paths.processed
    try:
        stats = prepare(cfg, out)
    except StreamGuardError as exc:
        # prepare swaps its output in only on success, so the previous one is still there; DVC's cache
        # has it too should anything have removed it.
        raise StreamGuardError(f"{exc}; {out} was left as it was (if it is missing: dvc checkout {out})") from exc
    sizes = {s: v["total"] for s, v in stats["splits"].items()}
    logging.getLogger("streamguard.stages").info(
        "prepare: %s samples %s, %d duplicates and %d conflicting removed, %.1f s", stats["source"], sizes,
        stats["duplicates_removed"], stats["conflicting_removed"], stats["timings_s"]["total"])


if __name__ == "__main__":
    sys.exit(guarded(main))
