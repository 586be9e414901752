"""util.distributed without a process group: torchrun's environment, batch split, rank slices, launch checks."""
from __future__ import annotations

import pytest
import torch

from util import distributed
from util.distributed import DistContext, RankSlice


def test_context_from_env(monkeypatch):
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(key, raising=False)
    assert distributed.context_from_env() == DistContext() and distributed.is_main_process()
    monkeypatch.setenv('RANK', '3')
    monkeypatch.setenv('WORLD_SIZE', '4')
    monkeypatch.setenv('LOCAL_RANK', '1')
    ctx = distributed.context_from_env()
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.enabled, ctx.is_main) == (3, 4, 1, True, False)
    assert not distributed.is_main_process()
    monkeypatch.setenv('RANK', '4')
    with pytest.raises(ValueError, match='invalid RANK=4'):
        distributed.context_from_env()
    monkeypatch.delenv('WORLD_SIZE')
    with pytest.raises(ValueError, match='torchrun'):
        distributed.context_from_env()


def test_global_batch_must_divide():
    assert distributed.per_rank_batch(8, DistContext(0, 2)) == 4
    with pytest.raises(ValueError, match='--batch_size 6 .* divisible .* 4'):
        distributed.per_rank_batch(6, DistContext(0, 4))


def test_rank_slices_partition_each_global_batch():
    order = list(range(100, 123))  # 23 samples: 5 global batches of 4, 3 left over
    slices = [list(RankSlice(order, 4, DistContext(r, 2))) for r in (0, 1)]
    assert slices[0] == [100, 101, 104, 105, 108, 109, 112, 113, 116, 117]
    assert slices[1] == [102, 103, 106, 107, 110, 111, 114, 115, 118, 119]
    assert len(RankSlice(order, 4, DistContext(1, 2))) == 10
    assert list(RankSlice(order, 4, DistContext())) == order[:20]


def test_rank_seeds():
    assert distributed.rank_seed(7, 0) == 7
    assert len({distributed.rank_seed(7, r) for r in range(8)}) == 8


def test_multi_gpu_ids_without_torchrun_say_how_to_launch():
    distributed.check_multi_gpu_launch([0], DistContext())
    distributed.check_multi_gpu_launch([0, 1], DistContext(0, 2))
    with pytest.raises(ValueError, match=r'torchrun --standalone --nproc_per_node 2'):
        distributed.check_multi_gpu_launch([0, 1], DistContext())


class _Opt:
    def __init__(self, **kw):
        self.gpu_ids, self.device, self.batch_size, self.sync_bn = [], torch.device('cpu'), 8, 0
        self.__dict__.update(kw)


def test_setup_checks_sync_bn_and_batch(monkeypatch):
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(key, raising=False)
    assert distributed.setup_distributed(_Opt()) == DistContext()
    with pytest.raises(ValueError, match='--sync_bn 1 needs CUDA'):
        distributed.setup_distributed(_Opt(sync_bn=1))
    with pytest.raises(ValueError, match='--sync_bn 1 needs CUDA'):
        distributed.wrap_data_parallel(torch.nn.BatchNorm2d(3), DistContext(0, 2), torch.device('cpu'), sync_bn=True)


def test_trained_networks_leave_frozen_ones_out():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    optim = torch.optim.Adam(a.parameters())
    assert distributed.trained_networks({'a': a, 'b': b}, {'optim': optim}) == {'a': a}
