"""The training loop's pieces: the resumable epoch order."""
from training.loop import EpochSampler


def test_epoch_sampler_is_deterministic_and_resumable():
    full = list(EpochSampler(50, seed=3, epoch=2))
    assert sorted(full) == list(range(50))
    assert full == list(EpochSampler(50, seed=3, epoch=2))
    assert full != list(EpochSampler(50, seed=3, epoch=3))
    assert list(EpochSampler(50, seed=3, epoch=2, start=20)) == full[20:]
    assert len(EpochSampler(50, seed=3, epoch=2, start=20)) == 30
    assert list(EpochSampler(5, seed=0, epoch=1, shuffle=False)) == [0, 1, 2, 3, 4]
