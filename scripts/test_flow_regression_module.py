"""Evaluate a trained flow regression module: prints EPE and losses, writes the visual grid and a JSON.

    python scripts/test_flow_regression_module.py --id id_flow --which_epoch best

Writes a fresh folder ``checkpoints/<id>/test_test_<epoch>/`` (or ``<--results_dir>/test_test_<epoch>/``):
``metrics.json``, ``vis.jpg``, ``test_opt.json``. An existing folder of that name is refused unless ``--overwrite``.
"""
import _path  # noqa: F401

from options.base_options import merge_train_options
from options.flow_regression_options import TestFlowRegressionOptions
from training.evaluation import run_flow_test


def main(argv: list[str] | None = None) -> dict:
    # save=False: nothing is written before the experiment is known to exist; the options go to the results folder.
    opt = TestFlowRegressionOptions().parse(argv, display=False, save=False)
    opt = merge_train_options(opt)  # architecture and data come from the experiment's train_opt.json
    return run_flow_test(opt)


if __name__ == '__main__':
    main()
