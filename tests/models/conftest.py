"""Shared settings for the model tests."""
import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread_torch():
    """Run the tiny test networks on one thread.

    The test machine's cores are shared by many processes; with several OpenMP threads per
    process, small convolutions spend most of their time waiting for each other (measured: ~10x
    slower suite under load). Restored afterwards so other test packages are unaffected.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
