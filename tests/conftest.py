"""Shared pytest fixtures. Real BraTS cases are found through BRATS_DATA (default: ../shared/data/brats18 beside the repo)."""
import os
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]


def brats_data_root() -> Path:
    return Path(os.environ.get('BRATS_DATA', REPO.parent / 'shared' / 'data' / 'brats18'))


@pytest.fixture(scope='session')
def brats_root() -> Path:
    root = brats_data_root()
    if not root.is_dir():
        pytest.skip(f"real BraTS cases not found at {root} (set BRATS_DATA to a BraTS folder to run these tests)")
    return root
