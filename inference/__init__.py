"""Inference on any photo: the pose-transfer pipeline (:mod:`inference.pipeline`) and its image/video I/O
(:mod:`inference.media`).

A floor at the level of ``training/``: it may import options, models, data, metrics and util; the command line
``scripts/repose.py`` is a thin layer over it.
"""
from inference.media import ImageError, load_image, save_image, write_video
from inference.pipeline import (Intermediates, KeypointFile, ModelFolderError, PoseTransferPipeline, PreparedPair,
                                ReposeResult, load_inference_options)

__all__ = ['ImageError', 'Intermediates', 'KeypointFile', 'ModelFolderError', 'PoseTransferPipeline', 'PreparedPair',
           'ReposeResult', 'load_image', 'load_inference_options', 'save_image', 'write_video']
