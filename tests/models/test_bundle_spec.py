"""A transformer fine-tuned from a pretrained checkpoint is rebuilt from the bundle's spec alone."""
import shutil

import torch
from transformers import RobertaConfig, RobertaModel

from streamguard.bundle import _portable_spec
from streamguard.kinds import build_model
from streamguard.train.seeding import seed_everything


def test_pretrained_branch_is_stored_by_its_config_and_needs_no_checkpoint(tmp_path):
    config = RobertaConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, max_position_embeddings=40, pad_token_id=0)
    seed_everything(0)
    RobertaModel(config, add_pooling_layer=False).save_pretrained(tmp_path / "tiny")
    spec = {"kind": "transformer", "transformer": {
        "vocab_size": 50, "pad_id": 0, "max_length": 32, "hidden_size": 8, "num_layers": 1, "num_heads": 1,
        "intermediate_size": 8, "dropout": 0.0, "pretrained": str(tmp_path / "tiny")}}
    trained = build_model(spec).eval()
    portable = _portable_spec(spec, trained)
    assert portable["transformer"]["pretrained"] is None and portable["transformer"]["hf_config"]["hidden_size"] == 16
    shutil.rmtree(tmp_path / "tiny")  # the checkpoint is gone, as on the machine that scans
    rebuilt = build_model(portable).eval()
    rebuilt.load_state_dict(trained.state_dict())  # strict: the same parameters, no pooler
    batch = {"input_ids": torch.tensor([[5, 6, 7, 0]]), "attention_mask": torch.tensor([[1, 1, 1, 0]])}
    assert torch.equal(trained(batch), rebuilt(batch))
