"""Run by the data-parallel tests under ``torchrun`` (and in-process for the single-process references).

``python -m torch.distributed.run --nproc_per_node 2 tests/scripts/ddp_worker.py train <script> <out_dir> ARGS...``
runs ``scripts/<script>.py``'s ``main(ARGS)`` and then writes this rank's trained parameters to
``<out_dir>/rank<r>.pt`` (outside the experiment folder, which only rank 0 may write).

``... ddp_worker.py classifier <fashion script> <out_dir> ARGS...`` trains a fashion classifier (``--train``) and
writes this rank's final state_dict to ``<out_dir>/rank<r>.pt``.

``... ddp_worker.py equivalence <out_dir> ARGS...`` runs one data-parallel flow step on a fixed batch of 8 and
writes rank 0's parameters to ``<out_dir>/ddp.pt``; :func:`equivalence_reference` is the single-process step whose
batch of 8 is normalised in two halves of 4.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
for path in (REPO, REPO / 'scripts'):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import default_collate  # noqa: E402

from data.data_loader import create_dataset  # noqa: E402
from models import create_model  # noqa: E402
from options.flow_regression_options import TrainFlowRegressionOptions  # noqa: E402
from training.loop import seed_everything  # noqa: E402
from util import distributed  # noqa: E402


CLASSIFIER_INIT_SEED = 1234


def trained_parameters(model) -> dict[str, torch.Tensor]:
    nets = distributed.trained_networks(model.nets, model.optimizers)
    return {f'{name}.{k}': v.detach().cpu().clone() for name, net in nets.items() for k, v in net.named_parameters()}


def fixed_batch(opt, n: int = 8) -> dict:
    dataset = create_dataset(opt, 'train')
    np.random.seed(123)  # the augmentation draws: the same batch in every process
    return default_collate([dataset[i] for i in range(n)])


def slice_batch(batch: dict, lo: int, hi: int) -> dict:
    return {k: v[lo:hi] for k, v in batch.items()}


def _flow_model(argv: list[str]):
    opt = TrainFlowRegressionOptions().parse(argv, display=False, save=False)
    ctx = distributed.setup_distributed(opt)
    seed_everything(opt.seed)
    return opt, ctx, create_model(opt)


def equivalence_ddp(argv: list[str]) -> dict[str, torch.Tensor]:
    """One step of 2 processes x 4 samples (this rank's half of the fixed batch of 8)."""
    opt, ctx, model = _flow_model(argv)
    batch = fixed_batch(opt)
    half = 8 // ctx.world_size
    dp = distributed.DataParallelModel(model, ctx)
    model.train_mode()
    model.set_input(slice_batch(batch, ctx.rank * half, (ctx.rank + 1) * half))
    with dp.step():
        model.optimize_parameters(check_grad=False)
    return trained_parameters(model)


def equivalence_reference(argv: list[str]) -> dict[str, torch.Tensor]:
    """One single-process step on the batch of 8, BatchNorm over each half of 4, the halves' losses averaged."""
    opt, _, model = _flow_model(argv)
    batch = fixed_batch(opt)
    model.train_mode()
    optim = model.optimizers['optim']
    optim.zero_grad(set_to_none=True)
    for lo in (0, 4):
        model.set_input(slice_batch(batch, lo, lo + 4))
        model.forward()
        (sum(model.compute_loss().values()) / 2).backward()
    optim.step()
    return trained_parameters(model)


def main() -> None:
    mode, *rest = sys.argv[1:]
    rank = distributed.context_from_env().rank
    if mode == 'train':
        script, out_dir, *argv = rest
        summary = importlib.import_module(script).main(argv)
        torch.save(trained_parameters(summary['model']), Path(out_dir) / f'rank{rank}.pt')
    elif mode == 'classifier':
        script, out_dir, *argv = rest
        torch.manual_seed(CLASSIFIER_INIT_SEED)  # a known initialisation (DDP broadcasts rank 0's anyway)
        model = importlib.import_module(script).main(argv)['model']
        torch.save({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, Path(out_dir) / f'rank{rank}.pt')
    elif mode == 'equivalence':
        out_dir, *argv = rest
        params = equivalence_ddp(argv)
        if rank == 0:
            torch.save(params, Path(out_dir) / 'ddp.pt')
        distributed.destroy_process_group()
    else:
        raise SystemExit(f'unknown mode {mode!r}')


if __name__ == '__main__':
    main()
