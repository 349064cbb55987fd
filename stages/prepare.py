"""DVC stage `prepare`: params.yaml (seed, data, tokenizer, graph) -> paths.processed (data/processed/)."""
import logging
import sys

from streamguard.config import load_config
from streamguard.data.pipeline import prepare
from streamguard.runner import guarded


def main() -> None:
    cfg = load_config("params.yaml")
    stats = prepare(cfg, cfg.paths.processed)
    sizes = {s: v["total"] for s, v in stats["splits"].items()}
    logging.getLogger("streamguard.stages").info(
        "prepare: %s samples %s, %d duplicates and %d conflicting removed, %.1f s", stats["source"], sizes,
        stats["duplicates_removed"], stats["conflicting_removed"], stats["timings_s"]["total"])


if __name__ == "__main__":
    sys.exit(guarded(main))
