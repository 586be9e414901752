"""Evaluate a trained flow regression module: prints EPE and losses, writes the visual grid and a JSON.

    python scripts/test_flow_regression_module.py --id id_flow --which_epoch best
"""
import _path  # noqa: F401

from options.base_options import merge_train_options, save_options
from options.flow_regression_options import TestFlowRegressionOptions
from training.evaluation import run_flow_test


def main(argv: list[str] | None = None) -> dict:
    opt = TestFlowRegressionOptions().parse(argv, display=False)
    opt = merge_train_options(opt)  # architecture and data come from the experiment's train_opt.json
    save_options(opt, opt.expr_dir / 'test_opt.json')  # the options this test ran with (after the merge)
    return run_flow_test(opt)


if __name__ == '__main__':
    main()
