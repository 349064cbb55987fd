"""DVC stage `aggregate`: every run directory -> paths.summary (production_summary/) and paths.metrics."""
import logging
import pathlib
import sys

from streamguard.baselines.run import NAME
from streamguard.config import load_config
from streamguard.kinds import get_kind, kind_names
from streamguard.report import aggregate
from streamguard.report.headline import write_metrics_files
from streamguard.runner import guarded


def main() -> None:
    cfg = load_config("params.yaml")
    models = [get_kind(name).output_dir for name in kind_names()]
    summary = aggregate(cfg.paths.outputs, cfg.paths.summary, seeds=cfg.seeds, models=models,
                        baseline_dir=pathlib.Path(cfg.paths.outputs) / NAME,
                        test_split=pathlib.Path(cfg.paths.processed) / "splits" / "test.jsonl")
    write_metrics_files(summary, cfg.paths.outputs, models, cfg.seeds, cfg.paths.metrics)
    logging.getLogger("streamguard.stages").info(
        "aggregate: best model %s (mean F1 %s)", summary["best_overall_model"], summary["best_overall_f1"])


if __name__ == "__main__":
    sys.exit(guarded(main))
