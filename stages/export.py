"""DVC stage `export`: the summary's best run of `export.model` -> paths.bundle (a self-contained model bundle)."""
import logging
import sys

from streamguard.bundle import bundle_summary, export_run, load_bundle
from streamguard.config import load_config
from streamguard.runner import guarded


def main() -> None:
    cfg = load_config("params.yaml")
    p = cfg.paths
    out = export_run(cfg.export.model, None, p.outputs, p.processed, p.bundle, summary_dir=p.summary)
    logging.getLogger("streamguard.stages").info("export: %s: %s", out, bundle_summary(load_bundle(out)))


if __name__ == "__main__":
    sys.exit(guarded(main))
