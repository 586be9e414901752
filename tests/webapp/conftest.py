"""Fixtures of the web-page tests: the tiny trained demo model (on the session's demo dataset)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.webapp.helpers import train_tiny_demo_model


@pytest.fixture(autouse=True)
def _one_torch_thread(single_thread_torch):
    """Tiny networks: one torch thread (see ``single_thread_torch`` in tests/conftest.py)."""


@pytest.fixture(scope='session')
def web_model(demo_root, tmp_path_factory) -> Path:
    """``PoseTransfer_web`` (full model, a few training steps) in a checkpoints folder of its own."""
    return train_tiny_demo_model(demo_root, tmp_path_factory.mktemp('web_ckpt'))
