import pytest
import yaml

from streamguard.config import PROFILES, load_config
from streamguard.errors import ConfigError


def test_repo_params_load_with_quick_profile_by_default():
    cfg = load_config("params.yaml")
    assert cfg.profile == "quick"
    assert cfg.seeds == (42, 2025, 7)
    assert cfg.sources["transformer.epochs"] == "default"


def test_profile_switch_changes_values_and_records_source():
    cfg = load_config("params.yaml", overrides={"profile": "production"})
    assert cfg.transformer.hidden_size == PROFILES["production"]["transformer"]["hidden_size"]
    assert cfg.transformer.lr_max == 5e-5
    assert cfg.sources["transformer.hidden_size"] == "profile:production"


def test_explicit_value_beats_profile():
    cfg = load_config("params.yaml", overrides={"profile": "production", "transformer.epochs": 2})
    assert cfg.transformer.epochs == 2
    assert cfg.sources["transformer.epochs"] == "params.yaml"


@pytest.mark.parametrize("override, message", [
    ({"gnn.epoch": 3}, "unknown key 'gnn.epoch' (did you mean 'epochs'?)"),
    ({"gnn.epochs": "ten"}, "'gnn.epochs' must be an integer"),
    ({"gnn.epochs": 0}, "'gnn.epochs' must be >= 1"),
    ({"gnn.dropout": 1.5}, "'gnn.dropout' must be <= 0.9"),
    ({"data.source": "web"}, "'data.source' must be one of"),
    ({"seeds": 42}, "'seeds' must be a list"),
    ({"profile": "fast"}, "'profile' must be one of"),
    ({"transformer.lr_min": 1e-2}, "'transformer.lr_min' (0.01) must be <="),
    ({"data.source": "files"}, "'data.files.train'"),
    ({"gnn.balanced_sampler": "yes"}, "'gnn.balanced_sampler' must be true or false"),
    ({"transformer.pretrained": "microsoft/codebert-base"}, "set 'tokenizer.kind: pretrained'"),
    ({"data.source": "files", "data.files.train": "t", "data.files.valid": "v", "data.files.test": "x",
      "data.split.test_projects": ["qemu"]}, "cannot be combined with official split files"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config("params.yaml", overrides=override)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("seed: 1\ndata: [unclosed\n")
    with pytest.raises(ConfigError, match=r"params.yaml:\d+: invalid YAML"):
        load_config(p)


def test_every_profile_resolves(tmp_path):
    for name in PROFILES:
        p = tmp_path / "params.yaml"
        p.write_text(yaml.safe_dump({"profile": name}))
        assert load_config(p).profile == name
