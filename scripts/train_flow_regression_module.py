"""Train the flow regression module (stage 1). See ``--help`` for all options.

    python scripts/train_flow_regression_module.py --id id_flow --gpu_ids 0 --which_model unet --dataset_name deepfashion
"""
import _path  # noqa: F401

from data.dataset_check import require_clean_dataset
from options.flow_regression_options import TrainFlowRegressionOptions
from training.loop import TrainSpec, train


def main(argv: list[str] | None = None) -> dict:
    checked = TrainFlowRegressionOptions().parse(argv, display=False, save=False)
    if checked.check_data:  # --check_data 1: all data problems at once, before the experiment folder is written
        require_clean_dataset(checked)
    opt = TrainFlowRegressionOptions().parse(argv)
    # Validation on the 'test' split; the checkpoint with the lowest end-point error becomes 'best'.
    return train(opt, TrainSpec(val_split='test', select_metric='EPE', select_mode='min'))


if __name__ == '__main__':
    main()
