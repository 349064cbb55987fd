"""The pretrain stage's work on a tiny real dataset: masked-token pretraining of the transformer's
trunk on train only, the runs starting from it, and the errors around it."""
import dataclasses
import json
import math
import shutil

import pytest
import torch

from streamguard import runs
from streamguard.data.datasets import ProcessedData
from streamguard.errors import CorruptFileError, StreamGuardError
from streamguard.io import read_json, save_torch_atomic, write_json_atomic
from streamguard.kinds import get_kind
from streamguard.models.mlm import MaskedLM, load_trunk, trunk_state
from streamguard.runs.pretrain import META_FILE, STATE_FILE, WEIGHTS_FILE, pretrain, read_trunk
from streamguard.train import engine

from .fixtures import make_processed

EPOCHS = 6


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    processed, cfg = make_processed(root, **{"pretrain.enabled": True, "pretrain.epochs": EPOCHS, "pretrain.lr": 3e-3, "pretrain.batch_size": 8, "transformer.epochs": 1})
    meta = pretrain(cfg, processed, root / "pretrain")
    return root, processed, cfg, meta


def _spec(cfg, processed):
    return get_kind("transformer").spec(cfg, ProcessedData(processed))["transformer"]


def test_pretraining_lowers_the_held_out_masked_loss(pretrained):
    root, processed, cfg, meta = pretrained
    assert meta["status"] == "ok" and (root / "pretrain" / WEIGHTS_FILE).is_file()
    assert read_json(root / "pretrain" / META_FILE) == meta
    history = meta["history"]
    assert [row["epoch"] for row in history] == list(range(EPOCHS + 1))
    # Before training the masked tokens are guessed at chance (vocabulary of 400); after it, much better.
    assert history[0]["valid_accuracy"] < 0.05
    assert history[-1]["valid_loss"] < history[0]["valid_loss"] - 1.0
    assert history[-1]["valid_accuracy"] > history[0]["valid_accuracy"] + 0.05
    assert meta["spec"] == _spec(cfg, processed)


def test_pretraining_reads_no_valid_or_test_code(pretrained, tmp_path):
    root, processed, cfg, meta = pretrained
    other = tmp_path / "processed"
    shutil.copytree(processed, other)
    train = torch.load(processed / "tokens" / "train.pt")
    for split in ("valid", "test"):  # other code in valid and test: the trunk must not move
        n = 10
        ids = train["input_ids"][: int(train["lengths"][:n].sum())]
        save_torch_atomic(other / "tokens" / f"{split}.pt", {**train, "input_ids": ids, "lengths": train["lengths"][:n],
                                                             "labels": train["labels"][:n]})
    again = pretrain(cfg, other, tmp_path / "pretrain")
    assert (tmp_path / "pretrain" / WEIGHTS_FILE).read_bytes() == (root / "pretrain" / WEIGHTS_FILE).read_bytes()
    assert again["sha256"] == meta["sha256"]
    assert again["history"][-1]["valid_loss"] != meta["history"][-1]["valid_loss"]  # it did measure the new valid


def test_transformer_run_starts_from_the_pretrained_trunk(pretrained, monkeypatch):
    root, processed, cfg, meta = pretrained
    trunk = read_trunk(root / "pretrain", _spec(cfg, processed))
    starts = []
    real_train = engine.train

    def spy(model, *args, **kwargs):
        starts.append({k: v.clone() for k, v in trunk_state(model).items()})
        return real_train(model, *args, **kwargs)

    monkeypatch.setattr(engine, "train", spy)
    lr_dir = root / "lr"
    write_json_atomic(lr_dir / "transformer" / "recommended_lr.json", {"lr": 1e-3})
    runs.train_run("transformer", cfg, 42, root / "outputs", processed, lr_dir=lr_dir, pretrain_dir=root / "pretrain")
    assert starts and set(starts[0]) == set(trunk.state)
    assert all(torch.equal(starts[0][k], trunk.state[k]) for k in trunk.state)
    run_meta = read_json(runs.run_dir(root / "outputs", "transformer", 42) / "training_metadata.json")
    assert run_meta["extra"]["init_from"]["sha256"] == meta["sha256"]
    assert run_meta["config"]["run"]["init"] == {"pretrain_sha256": meta["sha256"]}
    # The GNN has no trunk to start from: the pretrain directory is not read for it.
    assert runs.pretrained_trunk(get_kind("gnn"), {}, root / "pretrain") is None


def test_a_changed_trunk_restarts_rather_than_resumes(pretrained):
    root, processed, cfg, meta = pretrained
    hw = runs.hardware_for("transformer", cfg)
    spec = {"kind": "transformer", "transformer": _spec(cfg, processed)}
    a = runs.run_info("transformer", cfg, 42, "h", spec, hw, {}, init_sha256="a" * 64)
    b = runs.run_info("transformer", cfg, 42, "h", spec, hw, {}, init_sha256="b" * 64)
    assert a.config != b.config  # the checkpoint compares configs: other weights, no resume


def test_skipped_pretraining_writes_its_reason_and_no_weights(tmp_path, pretrained):
    _, processed, cfg, _ = pretrained
    off = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, enabled=False))
    meta = pretrain(off, processed, tmp_path / "off")
    assert meta == {"status": "skipped", "reason": "pretrain.enabled is false"}
    assert not (tmp_path / "off" / WEIGHTS_FILE).exists()
    assert read_trunk(tmp_path / "off", _spec(cfg, processed)) is None
    ckpt = dataclasses.replace(cfg, models={**cfg.models, "transformer": dataclasses.replace(cfg.transformer, pretrained="x")})
    assert "transformer.pretrained is set" in pretrain(ckpt, processed, tmp_path / "ckpt")["reason"]


def test_missing_altered_or_foreign_trunks_are_one_line_errors(pretrained, tmp_path):
    root, processed, cfg, _ = pretrained
    spec = _spec(cfg, processed)
    with pytest.raises(StreamGuardError, match=r"pretrain\.json: not found; run the pretrain stage"):
        read_trunk(tmp_path / "nowhere", spec)
    copy = tmp_path / "copy"
    shutil.copytree(root / "pretrain", copy)
    with pytest.raises(StreamGuardError, match="another transformer architecture"):
        read_trunk(copy, {**spec, "hidden_size": 64})
    blob = bytearray((copy / WEIGHTS_FILE).read_bytes())
    blob[-1] ^= 0xFF
    (copy / WEIGHTS_FILE).write_bytes(bytes(blob))
    with pytest.raises(CorruptFileError, match=r"trunk\.safetensors: sha256 differs"):
        read_trunk(copy, spec)


def test_a_trunk_of_another_shape_is_refused_whole(pretrained):
    root, processed, cfg, _ = pretrained
    kind = get_kind("transformer")
    trunk = read_trunk(root / "pretrain", _spec(cfg, processed))
    other = kind.build({"kind": "transformer", "transformer": {**_spec(cfg, processed), "conv_kernel": 3}})
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match="does not fit"):
        load_trunk(other, trunk.state)
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())


def _corpus(tmp_path, processed):
    """A source tree: new C functions, a copy of a valid function, a Python file, a non-UTF-8 file, a symlinked dir."""
    valid_code = json.loads((processed / "splits" / "valid.jsonl").read_text().splitlines()[0])["code"]
    root = tmp_path / "corpus"
    (root / "src" / "deep").mkdir(parents=True)
    (root / "src" / "a.c").write_text("int add(int a, int b) { return a + b; }\n\nvoid zero(char *p) { *p = 0; }\n")
    (root / "src" / "deep" / "b.c").write_text("/* from elsewhere */\n" + valid_code + "\n")
    (root / "src" / "tool.py").write_text("def f():\n    return 1\n")
    (root / "src" / "latin1.c").write_bytes(b"int caf\xe9(void) { return 1; }\n")
    (root / "loop").symlink_to(root / "src", target_is_directory=True)
    return root


def test_corpus_adds_functions_but_never_a_valid_or_test_one(pretrained, tmp_path):
    _, processed, cfg, meta = pretrained
    from streamguard.data.corpus import read_corpus

    root = _corpus(tmp_path, processed)
    held_out = [json.loads(line)["code"] for s in ("valid", "test")
                for line in (processed / "splits" / f"{s}.jsonl").read_text().splitlines()]
    codes, stats = read_corpus(root, "c", held_out, 10_000)
    assert [c.split("(")[0] for c in codes] == ["int add", "void zero"]  # sorted files, file order
    assert (stats.files, stats.skipped_files, stats.dropped_in_valid_or_test) == (2, 1, 1)
    with_corpus = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, corpus=str(root)))
    again = pretrain(with_corpus, processed, tmp_path / "pretrain")
    assert again["corpus"]["functions"] == 2 and again["corpus"]["sha256"] == stats.sha256
    assert again["sha256"] != meta["sha256"]  # the two functions were learned from


def test_a_corpus_that_is_not_a_directory_names_the_key(pretrained, tmp_path):
    from streamguard.data.corpus import read_corpus
    from streamguard.errors import DataError

    with pytest.raises(DataError, match="pretrain.corpus"):
        read_corpus(tmp_path / "missing", "c", [], 10_000)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no c functions found"):
        read_corpus(tmp_path / "empty", "c", [], 10_000)


def _nan_on(steps_to_poison):
    """MaskedLM.forward whose training loss is NaN on the chosen steps (1-based), as a diverging run's is."""
    forward = MaskedLM.forward
    calls = []

    def poisoned(self, *args):
        loss, acc = forward(self, *args)
        if self.training:
            calls.append(1)
            if steps_to_poison(len(calls)):
                loss = loss * float("nan")
        return loss, acc
    return poisoned


def test_non_finite_steps_are_skipped_not_applied(tmp_path, monkeypatch):
    processed, cfg = make_processed(tmp_path, **{"pretrain.enabled": True, "pretrain.epochs": 2, "pretrain.batch_size": 8})
    monkeypatch.setattr(MaskedLM, "forward", _nan_on(lambda step: step % 2 == 1))
    meta = pretrain(cfg, processed, tmp_path / "pretrain")
    per_epoch = -(-len(ProcessedData(processed).tokens("train")) // 8)
    assert [row["skipped_steps"] for row in meta["history"][1:]] == [(per_epoch + 1) // 2, per_epoch // 2]
    assert all(math.isfinite(row["train_loss"]) for row in meta["history"][1:])
    trunk = read_trunk(tmp_path / "pretrain", _spec(cfg, processed))
    assert all(torch.isfinite(t).all() for t in trunk.state.values())  # no NaN step reached the weights


def test_a_run_whose_every_step_is_non_finite_stops_and_writes_no_trunk(tmp_path, monkeypatch):
    processed, cfg = make_processed(tmp_path, **{"pretrain.enabled": True, "pretrain.epochs": 2, "pretrain.batch_size": 8})
    monkeypatch.setattr(MaskedLM, "forward", _nan_on(lambda step: True))
    with pytest.raises(StreamGuardError, match=r"pretraining diverged: every step of epoch 1 had a non-finite loss") as info:
        pretrain(cfg, processed, tmp_path / "pretrain")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "pretrain" / WEIGHTS_FILE).exists() and not (tmp_path / "pretrain" / META_FILE).exists()


def _interrupt_third_evaluation(monkeypatch):
    """Ctrl-C while epoch 2 is scored (evaluations: epoch 0, 1, 2); returns the undo."""
    from streamguard.runs import pretrain as module
    evaluate, calls = module._evaluate, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(module, "_evaluate", interrupted)
    return lambda: monkeypatch.setattr(module, "_evaluate", evaluate)


def test_an_interrupted_pretraining_resumes_to_the_same_bytes(tmp_path, monkeypatch, caplog):
    processed, cfg = make_processed(tmp_path, **{"pretrain.enabled": True, "pretrain.epochs": 3, "pretrain.batch_size": 8})
    whole = pretrain(cfg, processed, tmp_path / "whole")
    assert not (tmp_path / "whole" / STATE_FILE).exists()  # a finished run leaves its trunk and record only

    undo = _interrupt_third_evaluation(monkeypatch)
    out = tmp_path / "pretrain"
    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg, processed, out)
    assert sorted(p.name for p in out.iterdir()) == [STATE_FILE]  # no trunk, no record: only the state
    undo()
    with caplog.at_level("INFO", logger="streamguard.runs"):
        again = pretrain(cfg, processed, out)
    assert "resuming after epoch 1 of 3" in caplog.text
    assert again == whole and read_json(out / META_FILE) == whole
    assert (out / WEIGHTS_FILE).read_bytes() == (tmp_path / "whole" / WEIGHTS_FILE).read_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted([WEIGHTS_FILE, META_FILE])


def test_a_state_saved_for_other_inputs_is_not_resumed(tmp_path, monkeypatch, caplog):
    processed, cfg = make_processed(tmp_path, **{"pretrain.enabled": True, "pretrain.epochs": 2, "pretrain.batch_size": 8})
    undo = _interrupt_third_evaluation(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        pretrain(cfg, processed, tmp_path / "pretrain")
    undo()
    other = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, lr=cfg.pretrain.lr / 2))
    with caplog.at_level("INFO", logger="streamguard.runs"):
        meta = pretrain(other, processed, tmp_path / "pretrain")
    assert "saved for other inputs; starting over" in caplog.text and "resuming" not in caplog.text
    assert meta["settings"]["lr"] == other.pretrain.lr and len(meta["history"]) == 3
    assert not (tmp_path / "pretrain" / STATE_FILE).exists()
