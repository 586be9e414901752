"""The ten released pose-transfer models and what testing them needs on disk.

``bash scripts/download_models.sh`` unpacks ``PoseTransfer_0.1`` ... ``0.5`` (DeepFashion) and ``PoseTransfer_m0.1``
... ``m0.5`` (Market-1501) with their flow modules into ``checkpoints/``; ``scripts/download_deepfashion.sh`` and
``scripts/download_market1501.sh`` unpack the datasets into ``datasets/``. :func:`missing_for_model` lists, for
one model, every file or folder the test pass would need and does not find, each with the command that provides
it, so ``scripts/reproduce_released.sh`` can say exactly what is missing before running anything.
"""
from __future__ import annotations

from pathlib import Path

from options.pose_transfer_options import POSE_ID_PREFIX, POSE_PRESETS
from util.io import load_json
from util.weights import network_path

# model id (without the PoseTransfer_ prefix) -> (dataset, ablation)
RELEASED_MODELS: dict[str, tuple[str, str]] = {
    '0.1': ('deepfashion', 'w/o dual encoder'), '0.2': ('deepfashion', 'w/o flow'),
    '0.3': ('deepfashion', 'w/o vis'), '0.4': ('deepfashion', 'w/o pixel warping'), '0.5': ('deepfashion', 'full'),
    'm0.1': ('market', 'w/o dual encoder'), 'm0.2': ('market', 'w/o flow'), 'm0.3': ('market', 'w/o vis'),
    'm0.4': ('market', 'w/o pixel warping'), 'm0.5': ('market', 'full'),
}
FLOW_PREFIX = 'FlowReg_'
HOW_MODELS = 'bash scripts/download_models.sh'
HOW_DATA = {'deepfashion': 'bash scripts/download_deepfashion.sh', 'market': 'bash scripts/download_market1501.sh'}
LABEL = 'best'


def _flow_dir(checkpoints_dir: Path, flow_id: str) -> list[Path]:
    candidates = [checkpoints_dir / flow_id]
    if not flow_id.startswith(FLOW_PREFIX):
        candidates.append(checkpoints_dir / f'{FLOW_PREFIX}{flow_id}')
    return candidates


def missing_for_model(model_id: str, checkpoints_dir: str | Path = 'checkpoints',
                      root: str | Path = '.') -> list[str]:
    """What testing ``PoseTransfer_<model_id>`` needs and is not there: one line per item, naming the path and
    the command that provides it. Empty when everything is in place.

    ``root`` is the folder relative paths of the saved options (``data_root``) are resolved against, i.e. where
    the test script runs (the repository root).
    """
    if model_id not in RELEASED_MODELS:
        raise ValueError(f'unknown released model {model_id!r}; valid: {list(RELEASED_MODELS)}')
    dataset, _ = RELEASED_MODELS[model_id]
    ckpt, root = Path(checkpoints_dir), Path(root)
    exp = ckpt / f'{POSE_ID_PREFIX}{model_id}'
    opt_file = exp / 'train_opt.json'
    if not exp.is_dir():
        return [f'{exp}/ (pretrained model {exp.name}: {HOW_MODELS})']
    if not opt_file.is_file():
        return [f'{opt_file} (options of the pretrained model {exp.name}: {HOW_MODELS})']
    saved = load_json(opt_file)
    missing = []
    networks = ['netG'] + (['netPW'] if saved.get('G_pix_warp') else [])
    for name in networks:
        path = network_path(exp, LABEL, name)
        if not path.is_file():
            missing.append(f'{path} (pretrained model {exp.name}: {HOW_MODELS})')
    if saved.get('flow_on_the_fly', 1):
        flow_id = saved.get('pretrained_flow_id') or POSE_PRESETS[dataset].get('pretrained_flow_id', 'FlowReg_0.1')
        label = saved.get('pretrained_flow_epoch') or LABEL
        dirs = [d for d in _flow_dir(ckpt, flow_id) if d.is_dir()]
        if not dirs:
            missing.append(f'{" or ".join(map(str, _flow_dir(ckpt, flow_id)))} (flow module {flow_id} used by '
                           f'{exp.name}: {HOW_MODELS})')
        else:
            for path in (dirs[0] / 'train_opt.json', network_path(dirs[0], label, 'netF')):
                if not path.is_file():
                    missing.append(f'{path} (flow module {flow_id}: {HOW_MODELS})')
    preset = POSE_PRESETS[saved.get('dataset_name') or dataset]
    paths = {key: saved.get(key) or preset[key] for key in ('data_root', 'fn_split', 'fn_pose', 'img_dir', 'seg_dir',
                                                           'corr_dir')}
    data_root = root / paths['data_root']
    how = HOW_DATA[dataset]
    if not data_root.is_dir():
        missing.append(f'{data_root} (dataset {dataset}, data_root of {opt_file}: {how})')
    else:
        for key, kind in (('fn_split', 'file'), ('fn_pose', 'file'), ('img_dir', 'dir'), ('seg_dir', 'dir'),
                          ('corr_dir', 'dir')):
            path = data_root / paths[key]
            if not (path.is_file() if kind == 'file' else path.is_dir()):
                missing.append(f'{path} ({key} of dataset {dataset}: {how})')
    return missing
