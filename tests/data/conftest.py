"""Fixtures of the data tests: a small synthetic dataset (configuration in ``tests/data/helpers.py``)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from data.synthetic import generate_demo_dataset
from tests.data.helpers import SMALL_CONFIG


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Read-only small demo dataset (128x64, ``SMALL_CONFIG``); overrides the pipeline dataset of the same name in
    tests/conftest.py for the data tests. Tests that modify files use ``demo_copy``."""
    root = tmp_path_factory.mktemp('demo') / 'demo'
    generate_demo_dataset(root, SMALL_CONFIG, workers=1, verbose=False)
    return root


@pytest.fixture
def demo_copy(demo_root: Path, tmp_path: Path) -> Path:
    """A private, modifiable copy of the small demo dataset."""
    dst = tmp_path / 'demo'
    shutil.copytree(demo_root, dst)
    return dst
