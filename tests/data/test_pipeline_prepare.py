"""prepare end to end on tiny synthetic data: determinism, no leakage across splits, single-function path."""
import json
import shutil

import pytest
import torch

from streamguard.data import clean
from streamguard.data.identity import dataset_hash
from streamguard.data.encoder import FunctionEncoder, moved_line_tags
from streamguard.data.pipeline import prepare
from streamguard.errors import DataError
from streamguard.graphs.features import FLAG_NAMES
from streamguard.graphs.store import GraphStore
from streamguard.io import load_torch, read_json

from ..fixtures import make_processed, tiny_config


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    return make_processed(tmp_path_factory.mktemp("prep"))[0]


def test_prepare_is_byte_for_byte_deterministic(processed, tmp_path):
    again, _ = make_processed(tmp_path)
    assert dataset_hash(processed) == dataset_hash(again)


def test_no_sample_sits_in_two_splits_after_normalization(processed):
    keys = {}
    for split in ("train", "valid", "test"):
        rows = [json.loads(line) for line in (processed / "splits" / f"{split}.jsonl").open()]
        keys[split] = {clean.dedup_key(clean.normalize_code(r["code"])) for r in rows}
        groups = {r["group"] for r in rows}
        keys[split + "_groups"] = groups
    assert not keys["train"] & keys["valid"] and not keys["train"] & keys["test"] and not keys["valid"] & keys["test"]
    assert not keys["train_groups"] & keys["test_groups"] and not keys["train_groups"] & keys["valid_groups"]


def test_outputs_line_up_and_stats_are_reported(processed):
    stats = read_json(processed / "dataset_stats.json")
    for split in ("train", "valid", "test"):
        tokens = load_torch(processed / "tokens" / f"{split}.pt")
        graphs = GraphStore(load_torch(processed / "graphs" / f"{split}.pt"))
        assert len(tokens["lengths"]) == len(graphs) == stats["splits"][split]["total"]
        assert torch.equal(tokens["labels"], graphs.packed["y"])
        assert 0 <= stats["truncation"][split]["rate"] <= 1
        assert stats["graphs"][split]["parse_failure_rate"] == 0  # generated code always parses
    assert "timings_s" not in stats


def test_single_function_encoding_matches_the_batch_stage(processed):
    enc = FunctionEncoder(processed)
    row = json.loads((processed / "splits" / "test.jsonl").open().readline())
    ids, graph, ok = enc.encode(row["code"])
    tokens = load_torch(processed / "tokens" / "test.pt")
    n = int(tokens["lengths"][0])
    first = torch.stack([tokens["input_ids"][:n].long(), tokens["flow_tags"][:n].long()])  # ids; flow tags
    assert ok and torch.equal(ids, first)
    assert first[1].any() and not first[1, [0, -1]].any()  # some tokens tagged; <s> and </s> never
    stored = GraphStore(load_torch(processed / "graphs" / "test.pt"))[0]
    for key in ("x_kind", "x_feat", "x_tok", "edge_index", "edge_type"):
        assert torch.equal(graph[key], stored[key]), key


def test_moved_line_tags_follow_the_lines_that_move_up():
    tags = {1: 1, 2: 2, 3: 4}
    assert moved_line_tags("a\nb\nc", "a\nc", tags) == {1: 1, 2: 4}  # line 2 gone: line 3 is now 2
    assert moved_line_tags("a\nb", "a", {1: 1, 2: 2}) == {1: 1}
    assert moved_line_tags("a\nb", "a\nb", tags) == tags
    assert moved_line_tags("a\nb\nc", "a", tags) is None  # two lines gone
    assert moved_line_tags("a\nb\nc", "a\nx", tags) is None  # not the same function


def test_an_occluded_function_keeps_the_flow_tags_of_the_function_as_written(processed):
    """Blanking the source line: without `tags_from` the sink loses its tainted tag (its own graph has
    no flow); with it the sink line keeps sink | tainted and only the blanked line's tokens are gone."""
    enc = FunctionEncoder(processed)
    code = ("int f(void)\n{\n    char buf[64];\n    char *in = getenv(\"X\");\n    int n = 3;\n"
            "    strcpy(buf, in);\n    return n;\n}\n")
    blanked = code.replace('    char *in = getenv("X");', "")
    (own, kept), _, _ = enc.encode_many([blanked, blanked], workers=1, tags_from=[None, code])
    bit = {name: 1 << i for i, name in enumerate(FLAG_NAMES)}
    assert torch.equal(own[0], kept[0])  # the same tokens
    assert bit["sink"] | bit["tainted"] in kept[1].tolist()
    assert not any(t & bit["tainted"] for t in own[1].tolist())
    assert not any(t & bit["source"] for t in kept[1].tolist())  # the blanked source line has no tokens
    (full,), _, _ = enc.encode_many([code], workers=1)
    assert set(kept[1].tolist()) == set(full[1].tolist()) - {bit["source"] | bit["tainted"]}


def test_failed_prepare_leaves_previous_output_untouched(processed, tmp_path):
    out, cfg = make_processed(tmp_path)
    before = dataset_hash(out)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"func": "int a;", "target": 0}\n{"func": "int b;"\n')
    cfg = tiny_config(**{"data.source": "files", "data.files.path": str(bad)})
    with pytest.raises(DataError, match=r"bad\.jsonl:2: malformed JSON"):
        prepare(cfg, out)
    assert dataset_hash(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "processed"]


def test_pretrained_tokenizer_by_path(processed, tmp_path):
    """tokenizer.kind=pretrained loads a tokenizer directory instead of training one."""
    out, _ = make_processed(tmp_path, **{"tokenizer.kind": "pretrained", "tokenizer.pretrained": str(processed / "tokenizer")})
    assert read_json(out / "dataset_stats.json")["tokenizer"]["source"] == str(processed / "tokenizer")
    assert torch.equal(load_torch(out / "tokens" / "train.pt")["input_ids"], load_torch(processed / "tokens" / "train.pt")["input_ids"])


def test_comment_only_functions_are_counted_skips(tmp_path):
    rows = [{"func": f"int f{i}(int a) {{ return a + {i}; }}", "target": i % 2, "commit_id": f"c{i}"} for i in range(60)]
    rows.append({"func": "/* nothing but a comment */\n// and another", "target": 1, "commit_id": "cx"})
    data = tmp_path / "fns.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = tiny_config(**{"data.source": "files", "data.files.path": str(data), "tokenizer.vocab_size": 300})
    stats = prepare(cfg, tmp_path / "out")
    assert stats["skipped_empty"] == 1
    assert sum(v["total"] for v in stats["splits"].values()) == 60


def test_prepare_meta_records_the_language_and_the_encoder_reads_it(processed, tmp_path):
    assert read_json(processed / "prepare_meta.json")["language"] == "c"
    assert FunctionEncoder(processed).language == "c"
    # Data prepared before the setting existed has no "language": it is C.
    old = tmp_path / "old"
    shutil.copytree(processed, old)
    meta = read_json(old / "prepare_meta.json")
    del meta["language"]
    (old / "prepare_meta.json").write_text(json.dumps(meta))
    code = json.loads((processed / "splits" / "test.jsonl").open().readline())["code"]
    enc_old, enc_new = FunctionEncoder(old), FunctionEncoder(processed)
    assert enc_old.language == "c"
    (ids_a, g_a, _), (ids_b, g_b, _) = enc_old.encode(code), enc_new.encode(code)
    assert torch.equal(ids_a, ids_b) and all(torch.equal(g_a[k], g_b[k]) for k in g_a)
    meta["language"] = "cobol"
    (old / "prepare_meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"prepare_meta\.json, field 'language': unknown language 'cobol'"):
        FunctionEncoder(old)
