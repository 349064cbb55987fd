import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
DEVIGN = REPO.parent / "shared" / "datasets" / "devign"

# Quiet progress bars and keep runs single-threaded-deterministic in tests.
os.environ.setdefault("CI", "true")


@pytest.fixture
def devign_dir() -> pathlib.Path:
    if not (DEVIGN / "train.jsonl.gz").exists():
        pytest.skip("real Devign data not present at ../shared/datasets/devign/")
    return DEVIGN


@pytest.fixture(autouse=True)
def _run_from_repo_root(monkeypatch):
    monkeypatch.chdir(REPO)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny prepared dataset plus a transformer and a GNN trained for seed 42: (root, processed, cfg, outputs)."""
    # Imported here so that collecting the light test modules does not load torch and the models.
    from streamguard import runs
    from streamguard.io import write_json_atomic

    from .fixtures import make_processed

    root = tmp_path_factory.mktemp("runs")
    processed, cfg = make_processed(root, **{"transformer.epochs": 1, "gnn.epochs": 2, "fusion.epochs": 1})
    lr_dir = root / "lr"
    for kind, lr in (("transformer", 1e-3), ("gnn", 1e-3)):
        write_json_atomic(lr_dir / kind / "recommended_lr.json", {"lr": lr})
    outputs = root / "outputs"
    for kind in ("transformer", "gnn"):
        runs.train_run(kind, cfg, 42, outputs, processed, lr_dir=lr_dir)
    return root, processed, cfg, outputs
