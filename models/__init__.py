"""The two stages' models (``FlowRegressionModel``, ``PoseTransferModel``), their networks and losses.

:func:`create_model` is the one entry point the training engine uses; the model classes implement the contract
documented in :mod:`models.base_model`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from models.base_model import BaseModel
from models.flow_regression_model import FlowRegressionModel
from models.pose_transfer_model import PoseTransferModel

if TYPE_CHECKING:  # annotations only: models never import the options layer at run time
    from options.base_options import Options

MODELS: dict[str, type[BaseModel]] = {'flow': FlowRegressionModel, 'pose_transfer': PoseTransferModel}


def create_model(opt: Options) -> BaseModel:
    """The model for ``opt.dataset_type`` (``flow`` or ``pose_transfer``)."""
    if opt.dataset_type not in MODELS:
        raise ValueError(f'unknown --dataset_type {opt.dataset_type!r}; valid: {sorted(MODELS)}')
    return MODELS[opt.dataset_type](opt)


__all__ = ['MODELS', 'BaseModel', 'FlowRegressionModel', 'PoseTransferModel', 'create_model']
