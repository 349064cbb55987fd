"""DVC stage `baseline`: TF-IDF + logistic regression on the prepared splits -> paths.outputs/tfidf_lr/.

The same split and threshold policy as the neural runs, so every report says whether they earn their cost.
"""
import logging
import pathlib
import sys

from streamguard.baselines.run import NAME, run_tfidf_baseline
from streamguard.config import load_config
from streamguard.runner import guarded


def main() -> None:
    cfg = load_config("params.yaml")
    metrics = run_tfidf_baseline(cfg.paths.processed, pathlib.Path(cfg.paths.outputs) / NAME, cfg.seed,
                                 cfg.train.threshold_policy, cfg.train.target_fpr, cfg.paths.logs)
    logging.getLogger("streamguard.stages").info("baseline %s: test roc_auc=%s f1=%s", NAME,
                                                 metrics["test"]["roc_auc"], metrics["test"]["f1"])


if __name__ == "__main__":
    sys.exit(guarded(main))
