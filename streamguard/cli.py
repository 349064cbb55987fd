"""The `streamguard` console command.

    streamguard scan PATH... [--bundle DIR] [--format text|json|sarif] [-o FILE] [--fail-on warning] [--baseline OLD.sarif]
    streamguard export [--model fusion] [--seed S] [-o DIR]
    streamguard validate-outputs [--root training/outputs]
    streamguard lr-cache list|clear [--model transformer|gnn] [--dir training/cache/lr_finder]
    streamguard dataset-hash [PATH]
    streamguard params [-S key=value ...] [--conf conf] [--output params.yaml]

Errors print as one line and exit 2; scan exits 1 when it flags something (see --fail-on).
"""
from __future__ import annotations

import argparse
import pathlib
import sys

from .errors import StreamGuardError
from .runner import guarded

DEFAULT_LR_CACHE = "training/cache/lr_finder"


def _cmd_validate(args: argparse.Namespace) -> int:
    from .report.validate import validate_outputs

    problems = validate_outputs(args.root)
    for p in problems:
        print(p)
    print(f"{len(problems)} problem(s) under {args.root}" if problems else f"ok: every output under {args.root} is strict and finite")
    return 1 if problems else 0


def _cmd_lr_cache(args: argparse.Namespace) -> int:
    from .project import project_root
    from .train.lr_cache import clear_entries, list_entries

    if args.dir is None:  # the project's cache, also from a subdirectory of the checkout
        root = project_root()
        if root is None:
            raise StreamGuardError(f"no StreamGuard project (dvc.yaml) at or above {pathlib.Path.cwd()}; pass --dir")
        args.dir = str(root / DEFAULT_LR_CACHE)
    if args.action == "list":
        entries = list_entries(args.dir)
        for e in entries:
            print("  ".join(f"{k}={v}" for k, v in e.items()))
        print(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'} in {args.dir}")
    else:
        n = clear_entries(args.dir, model_type=args.model)
        print(f"removed {n} entr{'y' if n == 1 else 'ies'} from {args.dir}")
    return 0


def _cmd_dataset_hash(args: argparse.Namespace) -> int:
    from .data.identity import dataset_hash

    print(dataset_hash(args.path))
    return 0


def _cmd_params(args: argparse.Namespace) -> int:
    from .config import compose_params, write_params

    params = compose_params(args.set_param, conf_dir=args.conf)
    write_params(args.output, params)
    print(f"wrote {args.output} from {args.conf}/ ({', '.join(args.set_param) or 'no overrides'})")
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    from .scan import run_scan

    return run_scan(args)


def _cmd_export(args: argparse.Namespace) -> int:
    from .bundle import bundle_summary, export_run, load_bundle

    out = export_run(args.model, args.seed, args.outputs, args.processed, args.output)
    print(f"wrote {out}: {bundle_summary(load_bundle(out))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamguard", description="Train and use vulnerability detectors for C code.")
    sub = parser.add_subparsers(dest="command", required=True)

    scan = sub.add_parser("scan", help="score every function under files or directories with a model bundle",
                          description="Exit status: 0 nothing flagged, 1 something flagged (per --fail-on), 2 error.")
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.add_argument("--bundle", action="append", default=None, metavar="DIR",
                      help="model bundle from `streamguard export` (repeat for one per language); "
                           "default: the project's training/bundle")
    scan.add_argument("--format", choices=["text", "json", "sarif"], default="text")
    scan.add_argument("--output", "-o", default=None, help="write the report here instead of stdout")
    scan.add_argument("--threshold", type=float, default=None, help="default: the bundle's tuned threshold")
    scan.add_argument("--fail-on", default="warning", metavar="LEVEL|P",
                      help="exit 1 when a flagged function reaches this level (note, warning, error), "
                           "this probability, or never (default: warning, i.e. anything flagged)")
    scan.add_argument("--baseline", default=None, metavar="OLD.sarif", help="report only findings not in this earlier report")
    scan.add_argument("--source-root", default=None, metavar="DIR",
                      help="SARIF URIs are relative to this (default: the scanned directory, else the working directory)")
    scan.add_argument("--no-explain", action="store_true", help="skip taint paths and line ranking (faster)")
    scan.add_argument("--batch-size", type=int, default=64)
    scan.add_argument("--workers", type=int, default=None, help="graph-building processes (default: every CPU)")
    scan.add_argument("--max-file-bytes", type=int, default=20_000_000, help="larger files are skipped and reported")
    scan.add_argument("--max-function-chars", type=int, default=200_000, help="longer functions are skipped and reported")
    scan.set_defaults(func=_cmd_scan)

    export = sub.add_parser("export", help="write a trained run as a self-contained model bundle")
    export.add_argument("--model", default="fusion", help="model kind (default: fusion)")
    export.add_argument("--seed", type=int, default=None, help="default: the summary's best seed for the model")
    export.add_argument("--outputs", default="training/outputs")
    export.add_argument("--processed", default="data/processed")
    export.add_argument("--output", "-o", default="training/bundle")
    export.set_defaults(func=_cmd_export)

    val = sub.add_parser("validate-outputs", help="check every JSON is strict and no history has a NaN loss")
    val.add_argument("--root", default="training/outputs")
    val.set_defaults(func=_cmd_validate)

    cache = sub.add_parser("lr-cache", help="list or clear cached LR-finder results")
    cache.add_argument("action", choices=["list", "clear"])
    cache.add_argument("--model", default=None)
    cache.add_argument("--dir", default=None, help=f"default: {DEFAULT_LR_CACHE} of the project (found from dvc.yaml)")
    cache.set_defaults(func=_cmd_lr_cache)

    ds = sub.add_parser("dataset-hash", help="the DVC md5 of data/processed (as in dvc.lock)")
    ds.add_argument("path", nargs="?", default="data/processed")
    ds.set_defaults(func=_cmd_dataset_hash)
    params = sub.add_parser("params", help="write params.yaml from conf/ as `dvc exp run -S` composes it")
    params.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                        help="Hydra override, e.g. profile=production or seed=7 (repeatable)")
    params.add_argument("--conf", default="conf")
    params.add_argument("--output", "-o", default="params.yaml")
    params.set_defaults(func=_cmd_params)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
