"""DVC stage `aggregate`: nine run dirs -> training/outputs/production_summary/."""
import logging
import sys

from streamguard.config import load_config
from streamguard.report import aggregate
from streamguard.runner import guarded


def main() -> None:
    cfg = load_config("params.yaml")
    summary = aggregate("training/outputs", "training/outputs/production_summary", seeds=cfg.seeds)
    logging.getLogger("streamguard.stages").info(
        "aggregate: best model %s (mean F1 %s)", summary["best_overall_model"], summary["best_overall_f1"])


if __name__ == "__main__":
    sys.exit(guarded(main))
