"""Shared pytest fixtures. Real BraTS cases are found through BRATS_DATA (default: ../shared/data/brats18 beside the repo)."""
from pathlib import Path
import pytest
from brats_ssl.io import default_data_dir


def brats_data_root() -> Path:
    return default_data_dir()


@pytest.fixture(scope='session')
def brats_root() -> Path:
    root = brats_data_root()
    if not root.is_dir():
        pytest.skip(f"real BraTS cases not found at {root} (set BRATS_DATA to a BraTS folder to run these tests)")
    return root
