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
