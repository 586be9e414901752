"""Fixtures shared by every test package.

Test modules never import a conftest: plain helper functions and constants live in importable modules
(``tests/helpers.py``, ``tests/<package>/helpers.py``, ``tests/metrics/weights_helpers.py``); conftest files hold
fixtures only.
"""
from pathlib import Path

import pytest
import torch

from data.synthetic import generate_demo_dataset
from tests.helpers import PIPELINE_CONFIG


@pytest.fixture
def single_thread_torch():
    """Run torch on one thread for the duration of a test; restored afterwards.

    The test machine's cores are shared by many processes; with several OpenMP threads per process, the tiny
    convolutions of the test networks spend most of their time waiting for each other (measured: ~10x slower suite
    under load). The packages whose tests run networks turn this on for all their tests from their conftest.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory) -> Path:
    """Read-only synthetic demo dataset of the pipeline tests (``PIPELINE_CONFIG``: 48 train pairs, 128x64), built
    once per session. The data tests use a differently configured dataset under the same fixture name
    (tests/data/conftest.py)."""
    root = tmp_path_factory.mktemp('pipeline') / 'demo'
    generate_demo_dataset(root, PIPELINE_CONFIG, workers=1, verbose=False)
    return root
