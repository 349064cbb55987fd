"""`streamguard scan`: score every C function under a path with a trained run -> text, JSON or SARIF.

Functions are cut out of each file with tree-sitter, then encoded by `FunctionEncoder` exactly as the
prepare stage encoded training data, and scored by the run's best weights at its tuned threshold.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
from dataclasses import dataclass

import torch
from torch_geometric.data import Batch, Data

from . import __version__
from .data.datasets import pad_tokens
from .data.pipeline import FunctionEncoder
from .data.identity import dataset_hash
from .errors import StreamGuardError
from .graphs.languages import extract_functions, language_for_path
from .io import dumps_strict, read_json, write_text_atomic
from .kinds import build_model, get_kind
from .runs.setup import run_dir
from .train.checkpoint import CHECKPOINT_FILE, load_best_weights, load_model_spec


@dataclass
class Finding:
    file: str
    function: str
    start_line: int
    end_line: int
    probability: float
    vulnerable: bool
    parse_ok: bool


def iter_sources(path: pathlib.Path, language: str = "c") -> list[pathlib.Path]:
    """The file itself, or every file under a directory whose suffix belongs to `language`."""
    if not path.exists():
        raise StreamGuardError(f"{path}: no such file or directory")
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and getattr(language_for_path(p), "name", None) == language)


class Scorer:
    """A trained run (model + threshold) together with the matching encoder."""

    def __init__(self, model_kind: str, seed: int, outputs: str, processed: str, threshold: float | None):
        rdir = run_dir(outputs, model_kind, seed)
        meta_path = rdir / "training_metadata.json"
        if not meta_path.exists():
            if (rdir / "collapse_report.json").exists():
                raise StreamGuardError(f"{rdir}: this run collapsed and has no model; use --seed or --model for another run")
            raise StreamGuardError(f"{meta_path}: not found; train the {model_kind} model for seed {seed} first (dvc repro)")
        meta = read_json(meta_path)
        if meta.get("dataset_hash") != dataset_hash(processed):
            raise StreamGuardError(f"{processed}: not the data this run was trained on (dataset hash differs from "
                                   f"{meta_path}); re-run training (dvc repro) or point --processed at that data")
        self.kind = model_kind
        ckpt = rdir / CHECKPOINT_FILE  # holds the model spec beside the weights: it alone rebuilds the model
        self.model = build_model(load_model_spec(ckpt))
        self.model.load_state_dict(load_best_weights(ckpt))
        self.model.eval()
        metrics = read_json(rdir / "metrics.json")
        tuned = metrics.get("threshold")
        self.threshold = threshold if threshold is not None else (0.5 if tuned is None else tuned)
        self.encoder = FunctionEncoder(processed)

    @torch.no_grad()
    def score(self, codes: list[str]) -> tuple[list[float], list[bool]]:
        ids, graphs, oks = [], [], []
        for code in codes:
            tok, g, ok = self.encoder.encode(code)
            ids.append(tok)
            graphs.append(Data(**g, num_nodes=g["x_kind"].shape[0]))
            oks.append(ok)
        tokens = pad_tokens(ids, self.encoder.meta["pad_id"])
        graph = Batch.from_data_list(graphs)
        batch = get_kind(self.kind).batch(tokens, graph)
        probs = torch.sigmoid(self.model(batch).float()).tolist()
        return probs, oks


def _default_seed(outputs: str, model_kind: str) -> int:
    summary = pathlib.Path(outputs) / "production_summary" / "production_summary.json"
    if summary.exists():
        best = read_json(summary).get("models", {}).get(get_kind(model_kind).output_dir, {}).get("best_seed")
        if isinstance(best, int):
            return best
    return 42


def scan_path(path: str, model_kind: str = "fusion", seed: int | None = None, outputs: str = "training/outputs",
              processed: str = "data/processed", threshold: float | None = None, batch_size: int = 32) -> tuple[list[Finding], Scorer]:
    seed = _default_seed(outputs, model_kind) if seed is None else seed
    scorer = Scorer(model_kind, seed, outputs, processed, threshold)
    root = pathlib.Path(path)
    findings: list[Finding] = []
    for file in iter_sources(root, scorer.encoder.language):
        functions = extract_functions(file.read_bytes(), scorer.encoder.language)
        for start in range(0, len(functions), batch_size):
            chunk = functions[start:start + batch_size]
            probs, oks = scorer.score([f[3] for f in chunk])
            for (name, l0, l1, _), p, ok in zip(chunk, probs, oks):
                findings.append(Finding(str(file), name, l0, l1, round(p, 6), p >= scorer.threshold, ok))
    return findings, scorer


def to_sarif(findings: list[Finding], scorer: Scorer) -> dict:
    rule = {"id": "SG001", "name": "LikelyVulnerableFunction",
            "shortDescription": {"text": "Function predicted vulnerable by StreamGuard"},
            "properties": {"model": scorer.kind, "threshold": scorer.threshold}}
    results = [{
        "ruleId": "SG001", "level": "warning",
        "message": {"text": f"{f.function}: predicted vulnerable (p={f.probability:.3f})"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": pathlib.Path(f.file).as_posix()},
                                            "region": {"startLine": f.start_line, "endLine": f.end_line}}}],
        "properties": {"probability": f.probability},
    } for f in findings if f.vulnerable]
    return {"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "runs": [{"tool": {"driver": {"name": "StreamGuard", "version": __version__, "rules": [rule]}},
                      "results": results}]}


def render(findings: list[Finding], scorer: Scorer, fmt: str) -> str:
    if fmt == "json":
        return dumps_strict({"model": scorer.kind, "threshold": scorer.threshold, "functions": findings})
    if fmt == "sarif":
        return dumps_strict(to_sarif(findings, scorer))
    lines = [f"{'VULN' if f.vulnerable else 'ok  '}  p={f.probability:.3f}  {f.file}:{f.start_line}  {f.function}"
             for f in findings]
    n_vuln = sum(f.vulnerable for f in findings)
    lines.append(f"{n_vuln} of {len(findings)} functions flagged (model {scorer.kind}, threshold {scorer.threshold:.3f})")
    return "\n".join(lines) + "\n"


def run_scan(args: argparse.Namespace) -> int:
    findings, scorer = scan_path(args.path, args.model, args.seed, args.outputs, args.processed, args.threshold)
    text = render(findings, scorer, args.format)
    if args.output:
        write_text_atomic(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
