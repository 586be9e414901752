"""Fixtures shared by every test package.

Test modules never import a conftest: plain helper functions and constants live in importable modules
(``tests/<package>/helpers.py``, ``tests/metrics/weights_helpers.py``); conftest files hold fixtures only.
"""
import pytest
import torch


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
