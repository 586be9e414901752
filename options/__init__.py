"""Command-line option sets (argparse) for the flow-regression and pose-transfer scripts."""
from options.base_options import (ARCH_KEYS, NAN_POLICIES, RESUME_RUN_KEYS, BaseOptions, Options, format_options,
                                  load_options_file, merge_resume_options, merge_train_options, parse_gpu_ids,
                                  resolve_device, save_options)
from options.flow_regression_options import (FLOW_PRESETS, BaseFlowRegressionOptions, TestFlowRegressionOptions,
                                             TrainFlowRegressionOptions)
from options.pose_transfer_options import (POSE_PRESETS, VGG_CONTENT_WEIGHTS, BasePoseTransferOptions,
                                           TestPoseTransferOptions, TrainPoseTransferOptions)

__all__ = [
    'ARCH_KEYS', 'NAN_POLICIES', 'RESUME_RUN_KEYS', 'BaseOptions', 'Options', 'format_options', 'load_options_file',
    'merge_resume_options', 'merge_train_options', 'parse_gpu_ids', 'resolve_device', 'save_options',
    'FLOW_PRESETS', 'BaseFlowRegressionOptions', 'TestFlowRegressionOptions', 'TrainFlowRegressionOptions',
    'POSE_PRESETS', 'VGG_CONTENT_WEIGHTS', 'BasePoseTransferOptions', 'TestPoseTransferOptions',
    'TrainPoseTransferOptions',
]
