"""params.yaml -> Config, and params.yaml <- conf/ (DVC's Hydra composition). Every loading test writes
its own params file (or uses from_dict), so editing the repository's params.yaml cannot break or pass them."""
import pathlib

import pytest
import yaml

from streamguard.config import compose_params, from_dict, load_config
from streamguard.errors import ConfigError
from streamguard.kinds import registry

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
PROFILES = sorted(p.stem for p in (CONF / "profile").glob("*.yaml"))

# Keys written as null: a null takes the dataclass default (the quick profile's value).
ALL_NULL = {
    "profile": None, "seed": None, "seeds": None,
    "data": {"source": None, "synthetic": {"n_functions": None, "vuln_ratio": None, "cwes": None}, "split": None},
    "tokenizer": {"vocab_size": None, "max_length": None},
    "transformer": {"hidden_size": None, "epochs": None, "lr_max": None},
    "gnn": {"hidden_size": None, "epochs": None},
    "train": None,
}


def _params(tmp_path, params: dict):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _load(path, overrides=None):
    return load_config(path, overrides, kinds=registry())


def test_all_null_params_give_the_defaults(tmp_path):
    cfg = _load(_params(tmp_path, ALL_NULL))
    assert cfg.profile == "quick" and cfg.seeds == (42, 2025, 7)
    assert cfg.sources["transformer.epochs"] == "default"
    assert cfg.sources["data.synthetic.n_functions"] == "default"
    assert set(cfg.sources.values()) == {"default"}


def test_null_and_absent_keys_are_the_same(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    assert _load(tmp_path / "empty.yaml") == _load(_params(tmp_path, ALL_NULL)) == from_dict({}, kinds=registry())


def test_explicit_values_and_overrides_are_recorded(tmp_path):
    path = _params(tmp_path, {"transformer": {"epochs": 2}})
    cfg = _load(path)
    assert cfg.transformer.epochs == 2 and cfg.sources["transformer.epochs"] == "params.yaml"
    assert cfg.sources["transformer.dropout"] == "default"
    cfg = _load(path, overrides={"transformer.epochs": 5, "gnn.epochs": 4})
    assert (cfg.transformer.epochs, cfg.gnn.epochs) == (5, 4) and cfg.sources["gnn.epochs"] == "params.yaml"


def test_overrides_fill_absent_and_null_sections(tmp_path):
    cfg = _load(_params(tmp_path, {"gnn": None}), overrides={"gnn.epochs": 3, "data.synthetic.n_functions": 40})
    assert cfg.gnn.epochs == 3 and cfg.data.synthetic.n_functions == 40


def test_from_dict_matches_load_config(tmp_path):
    params = {"profile": "devign-cpu", "seed": 7, "gnn": {"epochs": 3}}
    assert from_dict(params, kinds=registry()) == _load(_params(tmp_path, params))
    assert from_dict(None) == from_dict({})


def test_without_kinds_model_sections_are_not_read(tmp_path):
    """The prepare stage reads no model section, so it does not import the model code."""
    cfg = load_config(_params(tmp_path, {"gnn": {"epochs": "not checked here"}, "seed": 3}))
    assert cfg.seed == 3 and cfg.models == {}
    with pytest.raises(AttributeError):
        cfg.gnn  # noqa: B018
    with pytest.raises(ConfigError, match="unknown key 'sed'"):
        load_config(_params(tmp_path, {"sed": 3}))


@pytest.mark.parametrize("override, message", [
    ({"gnn.epoch": 3}, "unknown key 'gnn.epoch' (did you mean 'epochs'?)"),
    ({"transformerr": {}}, "unknown key 'transformerr' (did you mean 'transformer'?)"),
    ({"tokenizer.vocab_sise": 3}, "unknown key 'tokenizer.vocab_sise' (did you mean 'vocab_size'?)"),
    ({"gnn.epochs": "ten"}, "'gnn.epochs' must be an integer"),
    ({"gnn.epochs": True}, "'gnn.epochs' must be an integer"),
    ({"gnn.epochs": 0}, "'gnn.epochs' must be >= 1"),
    ({"gnn.dropout": 1.5}, "'gnn.dropout' must be <= 0.9"),
    ({"gnn": 3}, "'gnn' must be a mapping"),
    ({"data.source": "web"}, "'data.source' must be one of"),
    ({"seeds": 42}, "'seeds' must be a list"),
    ({"seeds": []}, "'seeds' must list at least one seed"),
    ({"transformer.lr_min": 1e-2}, "'transformer.lr_min' (0.01) must be <="),
    ({"data.source": "files"}, "'data.files.train'"),
    ({"gnn.balanced_sampler": "yes"}, "'gnn.balanced_sampler' must be true or false"),
    ({"transformer.pretrained": "microsoft/codebert-base"}, "set 'tokenizer.kind: pretrained'"),
    ({"graph.language": "cobol"}, "'graph.language' must be one of"),
    ({"data.source": "files", "data.files.train": "t", "data.files.valid": "v", "data.files.test": "x",
      "data.split.test_projects": ["qemu"]}, "cannot be combined with official split files"),
])
def test_bad_values_name_the_key(tmp_path, override, message):
    path = _params(tmp_path, ALL_NULL)
    with pytest.raises(ConfigError) as err:
        _load(path, overrides=override)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("seed: 1\ndata: [unclosed\n")
    with pytest.raises(ConfigError, match=r"params.yaml:\d+: invalid YAML"):
        load_config(p)


def test_missing_file_and_non_mapping_top_level(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(tmp_path / "list.yaml")


# ---------------------------------------------------------------- composition (conf/ -> params.yaml)

def test_committed_params_yaml_is_the_composition_of_conf():
    """params.yaml is what `dvc exp run` writes from conf/; a hand edit would be lost on the next run."""
    committed = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert committed == compose_params(conf_dir=CONF), "params.yaml is stale: run `streamguard params`"


def test_composed_params_name_every_key_the_config_reads():
    """Every value that runs is visible in params.yaml (dvc params diff / exp show): no key falls back to a default."""
    cfg = from_dict(compose_params(conf_dir=CONF), kinds=registry())
    defaults = {k for k, v in cfg.sources.items() if v == "default"}
    optional = {k for k in defaults if _value(cfg, k) is None}
    assert defaults == optional  # only keys whose value is null (pretrained, limit, ...) are "default"


def _value(cfg, dotted):
    node = cfg
    for part in dotted.split("."):
        node = getattr(node, part)
    return node


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_composes_into_a_valid_config(name):
    params = compose_params([f"profile={name}"], conf_dir=CONF)
    cfg = from_dict(params, kinds=registry())
    assert cfg.profile == name
    profile = yaml.safe_load((CONF / "profile" / f"{name}.yaml").read_text())
    for section, values in profile.items():
        if isinstance(values, dict):
            for key, value in values.items():
                got = getattr(getattr(cfg, section), key)
                if isinstance(value, dict):
                    assert {k: getattr(got, k) for k in value} == value
                else:
                    assert got == value, f"{section}.{key}"


def test_production_profile_holds_the_plan_values():
    cfg = from_dict(compose_params(["profile=production"], conf_dir=CONF), kinds=registry())
    assert (cfg.transformer.hidden_size, cfg.transformer.lr_max, cfg.data.synthetic.n_functions) == (768, 5e-5, 20_000)
    # It fine-tunes CodeBERT with CodeBERT's own tokenizer, at fine-tuning rates.
    assert cfg.transformer.pretrained == cfg.tokenizer.pretrained == "microsoft/codebert-base"
    assert cfg.tokenizer.kind == "pretrained" and (cfg.transformer.lr_min, cfg.tokenizer.max_length) == (1e-5, 512)
    assert cfg.transformer.dropout == 0.1  # not in the profile: the base value


def test_overrides_compose_like_dvc_exp_run_set_param():
    params = compose_params({"seed": 2025, "data.split.test_projects": ["QEMU"], "transformer.pretrained": "x/y"},
                            conf_dir=CONF)
    assert params["seed"] == 2025 and params["data"]["split"]["test_projects"] == ["QEMU"]
    assert params["transformer"]["pretrained"] == "x/y"
    with pytest.raises(ConfigError, match="cannot compose params"):
        compose_params(["profile=fast"], conf_dir=CONF)
    with pytest.raises(ConfigError, match="cannot compose params"):
        compose_params(["gnn.epoch=3"], conf_dir=CONF)


@pytest.mark.parametrize("text, message", [
    ("gnn:\n  lr_max: .nan\n", "'gnn.lr_max' must be a finite number, got nan"),
    ("gnn:\n  dropout: .nan\n", "'gnn.dropout' must be a finite number, got nan"),
    ("fusion:\n  base_lr: .nan\n", "'fusion.base_lr' must be a finite number, got nan"),
    ("transformer:\n  lr_max: .inf\n", "'transformer.lr_max' must be a finite number, got inf"),
    ("seeds: [42, -1]\n", "'seeds[1]' must be >= 0, got -1"),
    ("seeds: [7, 42, 7]\n", "'seeds' lists seed 7 more than once"),
    ("seed: -3\n", "'seed' must be >= 0, got -3"),
])
def test_nan_and_bad_seeds_in_params_yaml_are_refused_naming_the_key(tmp_path, text, message):
    # Written as YAML, as a user would: `.nan` is how YAML spells NaN.
    p = tmp_path / "params.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p, kinds=registry())
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_nan_fails_a_range_check_on_its_own():
    from streamguard.config import _check_range
    with pytest.raises(ConfigError, match="'x' must be >= 0"):
        _check_range(float("nan"), {"lo": 0, "hi": 1, "lo_open": False}, "x")
