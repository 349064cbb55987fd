"""The prepare pipeline: read -> normalize -> dedup -> split -> tokenize -> graphs -> data/processed/.

`prepare()` is the batch stage; `encoder.FunctionEncoder` applies the very same normalization,
tokenizer and graph vocabulary to functions at scan time, so training and inference share one code path.

Output layout (all written into a temporary sibling directory that replaces `out_dir` only once
everything succeeded, so a failure or an interrupt never leaves a half-written `data/processed/`;
`swap.py` does the replacing and cleans what killed runs left):

    splits/{train,valid,test}.jsonl   normalized records
    tokenizer/                        Hugging Face fast tokenizer (save_pretrained)
    tokens/{split}.pt                 flat int32 ids + lengths + labels (+ uint8 flow tags)
    graphs/{split}.pt                 packed statement graphs (see graphs.store)
    graph_vocab.json                  node-feature vocabularies (train split only)
    lexical/                          TF-IDF + LR fit on train and its logit per function (see lexical.py)
    prepare_meta.json                 settings that inference must reuse (max_length, max_windows, max_nodes, ...)
    dataset_stats.json                counts, duplicates, skips, parse failures, truncation, graph stats
"""
from __future__ import annotations

import json
import logging
import pathlib
import shutil
import time
from dataclasses import asdict

from ..config import Config
from ..errors import DataError, StreamGuardError, WriteError, one_line
from ..graphs.features import GraphVocab, encode_graphs, line_flow_tags
from ..graphs.parallel import build_graphs
from ..graphs.store import graph_statistics, pack_graphs
from ..io import save_torch_atomic, write_json_atomic, write_text_atomic
from . import clean, synthetic
from .checks import check_splits
from .lexical import DIR as LEXICAL_DIR, write_lexical
from .sources import ReadStats, read_records
from .swap import clean_stale, make_temp, replace_dir
from .tokenizer import encode_split, load_tokenizer, train_bpe

log = logging.getLogger("streamguard.data")
SPLITS = clean.SPLITS


def load_splits(cfg: Config) -> tuple[dict[str, list[dict]], dict]:
    """Read the configured source and return normalized, de-duplicated train/valid/test records."""
    d = cfg.data
    stats: dict = {"source": d.source}
    read = ReadStats()
    if d.source == "synthetic":
        records = synthetic.generate(d.synthetic.n_functions, seed=cfg.seed, vuln_ratio=d.synthetic.vuln_ratio,
                                     cwes=d.synthetic.cwes, language=cfg.graph.language)
        official = None
    else:
        f = d.files
        kwargs = dict(fields=f.fields, fmt=f.format, max_code_chars=d.max_code_chars, stats=read,
                      language=cfg.graph.language)
        if f.train:
            if not (f.valid and f.test):
                raise DataError("data.files.train is set: data.files.valid and data.files.test must be set too")
            official = {s: read_records(getattr(f, s), **kwargs) for s in SPLITS}
            records = None
        else:
            records, official = read_records(f.path, **kwargs), None
    def normalized(recs: list[dict]) -> list[dict]:
        kept = []
        for r in recs:
            r["code"] = clean.normalize_code(r["code"])
            if r["code"].strip():
                kept.append(r)
            else:  # nothing left once comments are gone: a counted skip, like empty code
                read.skip("empty", r["id"])
        return kept

    if official:
        official = {s: normalized(r) for s, r in official.items()}
    else:
        records = normalized(records)
    stats.update(read=read.read, skipped_empty=read.skipped_empty, skipped_oversized=read.skipped_oversized,
                 skipped_examples=read.skipped_lines)
    if official:
        splits, dd = clean.dedup(official)
        stats["split_method"] = "official"
    else:
        deduped, dd = clean.dedup({"all": records})
        if d.split.test_projects:
            splits = clean.cross_project_split(deduped["all"], d.split.test_projects, d.split.valid_fraction, cfg.seed)
            stats["split_method"] = f"cross_project(test={list(d.split.test_projects)})"
        else:
            splits = clean.grouped_split(deduped["all"], d.split.valid_fraction, d.split.test_fraction, cfg.seed)
            stats["split_method"] = "grouped_stratified"
    if d.limit:
        splits = {s: clean.subsample(r, d.limit, cfg.seed) for s, r in splits.items()}
    warnings = check_splits(splits)
    stats.update(asdict(dd))
    if warnings:  # only when there are any: data that raises none keeps its dataset_stats.json
        stats["warnings"] = warnings
    return splits, stats


def _label_counts(records: list[dict]) -> dict:
    pos = sum(r["label"] for r in records)
    return {"total": len(records), "vulnerable": pos, "safe": len(records) - pos}


def _stmt_token_fn(tokenizer, graphs_by_split: dict) -> callable:
    """Tokenize every distinct statement text once, in one parallel batch."""
    texts = sorted({n.text for graphs in graphs_by_split.values() for g in graphs for n in g.nodes})
    ids = tokenizer.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    table = {t: e.ids for t, e in zip(texts, ids)}
    return lambda text: table[text] if text in table else tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids


def prepare(cfg: Config, out_dir: str | pathlib.Path) -> dict:
    """Run the whole prepare stage into `out_dir`; returns dataset_stats."""
    out_dir = pathlib.Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out_dir)
    t0 = time.perf_counter()
    tmp = make_temp(out_dir)
    try:
        stats = _prepare_into(cfg, tmp)
        # Timings vary run to run: they are returned and logged, never written into the output,
        # so identical inputs give a byte-identical data/processed (and the same DVC hash).
        timings = stats.pop("timings_s")
        write_json_atomic(tmp / "dataset_stats.json", stats)
        replace_dir(tmp, out_dir)
        timings["total"] = round(time.perf_counter() - t0, 3)
        stats["timings_s"] = timings
        log.info("prepare timings (s): %s", timings)
    except OSError as exc:  # disk full, I/O error: one line naming the file (atomic writes already do)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, StreamGuardError):
            raise
        reason = one_line(exc.strerror or exc)
        raise WriteError(f"{exc.filename or tmp}: {reason} (while preparing {out_dir})", exc.errno) from exc
    except BaseException:  # errors, Ctrl-C, SIGTERM (runner.guarded): the temp dir goes
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stats


def _prepare_into(cfg: Config, out: pathlib.Path) -> dict:
    timings = {}
    t = time.perf_counter()
    splits, stats = load_splits(cfg)
    timings["read_clean_split"] = round(time.perf_counter() - t, 3)
    stats["splits"] = {s: _label_counts(splits[s]) for s in SPLITS}

    for s in SPLITS:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in splits[s])
        write_text_atomic(out / "splits" / f"{s}.jsonl", lines)

    t = time.perf_counter()
    tk = cfg.tokenizer
    if tk.kind == "pretrained":
        tokenizer = load_tokenizer(tk.pretrained)
    else:
        tokenizer = train_bpe((r["code"] for r in splits["train"]), tk.vocab_size, tk.min_frequency)
    tokenizer.save_pretrained(str(out / "tokenizer"))
    stats["tokenizer"] = {"kind": tk.kind, "source": tk.pretrained or "bpe(train split)",
                          "vocab_size": len(tokenizer), "max_length": tk.max_length, "max_windows": tk.max_windows,
                          "flow_tags": tk.flow_tags}
    tokenizer_s = time.perf_counter() - t

    # Graphs before tokens: the flow tags of the token view come from the statement graphs.
    t = time.perf_counter()
    g = cfg.graph
    graphs = {s: build_graphs([r["code"] for r in splits[s]], g.max_nodes, workers=g.workers, language=g.language)
              for s in SPLITS}
    timings["build_graphs"] = round(time.perf_counter() - t, 3)

    t = time.perf_counter()
    trunc = {}
    for s in SPLITS:
        line_tags = [line_flow_tags(graph) for graph in graphs[s]] if tk.flow_tags else None
        enc = encode_split(tokenizer, [r["code"] for r in splits[s]], [r["label"] for r in splits[s]],
                           tk.max_length * tk.max_windows, line_tags)
        n_trunc = int(enc.pop("n_truncated"))
        trunc[s] = {"truncated": n_trunc, "rate": n_trunc / len(splits[s]),
                    "mean_length": float(enc["lengths"].float().mean())}
        save_torch_atomic(out / "tokens" / f"{s}.pt", enc)
    stats["truncation"] = trunc
    timings["tokenize"] = round(tokenizer_s + time.perf_counter() - t, 3)

    t = time.perf_counter()
    vocab = GraphVocab.fit(graphs["train"], min_freq=g.min_feature_freq)
    write_json_atomic(out / "graph_vocab.json", vocab.to_dict())
    token_fn = _stmt_token_fn(tokenizer, graphs)
    stats["graphs"] = {}
    for s in SPLITS:
        encoded = encode_graphs(graphs[s], vocab, token_fn, g.max_stmt_tokens, pad_id=tokenizer.pad_token_id)
        packed = pack_graphs(encoded, [r["label"] for r in splits[s]])
        save_torch_atomic(out / "graphs" / f"{s}.pt", packed)
        n_fail = sum(not gr.parse_ok for gr in graphs[s])
        stats["graphs"][s] = {**graph_statistics(packed), "parse_failures": n_fail,
                              "parse_failure_rate": n_fail / len(graphs[s])}
    timings["encode_graphs"] = round(time.perf_counter() - t, 3)

    if cfg.lexical.enabled:
        t = time.perf_counter()
        stats["lexical"] = write_lexical(splits, out / LEXICAL_DIR, cfg.lexical.folds, cfg.seed)
        timings["lexical"] = round(time.perf_counter() - t, 3)

    write_json_atomic(out / "prepare_meta.json", {
        "max_length": tk.max_length, "max_windows": tk.max_windows, "flow_tags": tk.flow_tags, "max_nodes": g.max_nodes,
        "max_stmt_tokens": g.max_stmt_tokens, "pad_id": tokenizer.pad_token_id, "seed": cfg.seed, "language": g.language})
    stats["timings_s"] = timings
    return stats
