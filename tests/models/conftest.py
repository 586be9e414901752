"""Fixtures of the model tests."""
import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(single_thread_torch):
    """Tiny networks: one torch thread (see ``single_thread_torch`` in tests/conftest.py)."""
