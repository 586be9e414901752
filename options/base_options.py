"""Option machinery shared by the flow-regression and pose-transfer option sets.

Every option set is a small argparse class. ``parse()`` works in five steps and writes no file:

1. peek ``--dataset_name`` with a minimal parser (``parse_known_args``);
2. apply that dataset's preset (the option set's ``presets``) as parser *defaults*, after checking every preset key
   against the parser's options, so the command line can still override any preset value (the
   original forced the preset values over the command line);
3. parse strictly (``parse_args``: an unknown or abbreviated option is an error), and once more with
   every default suppressed to learn which options were typed (``opt.explicit_keys``);
4. ``auto_set()`` derives ``is_train``, the ``gpu_ids`` list, ``device`` and the id prefix in one
   place; the result is an :class:`Options` namespace in which assigning a non-existent key raises;
5. ``check_consistency()`` rejects combinations that cannot do what they say, or warns in one line.

Modern options added to every set (all defaults keep the original behaviour):

* ``--checkpoints_dir`` (``checkpoints``): experiment folders live in ``<checkpoints_dir>/<id>/``.
* ``--num_workers`` (``min(4, cpu count)``): data-loader worker processes; 0 loads in the main
  process. The original always used 8.
* ``--seed`` (0): random seed for Python, NumPy and PyTorch, applied by the train/test scripts.
  The original did not seed.

Differences from the original, all deliberate:

* presets are defaults, not forced values (``--dataset_name market --joint_radius 6`` gives 6);
* option names must be spelled out in full (``allow_abbrev=False``) and unknown options are errors;
* ``device`` is a :class:`torch.device` derived from ``gpu_ids`` and is never written to JSON;
  ``CUDA_VISIBLE_DEVICES`` is not modified (the original set it); the first listed GPU is used;
  when GPUs are requested but CUDA is unavailable, a warning is printed and ``gpu_ids`` becomes ``[]``;
* ``merge_train_options`` keeps the test command line's ``id`` (so a renamed experiment folder still
  addresses itself), lets explicit data and run options of the test command line win over the saved
  ones (the original silently used the saved ones), refuses a different explicit architecture value, and
  validates every merged value against the option's type and choices;
* options JSON is written with sorted keys.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any, ClassVar


import models
from models import base_model
from models.networks import blocks, init
from util import pose_util
from util.device import parse_gpu_ids, resolve_device
from util.distributed import is_main_process
from util.io import load_json, save_json

logger = logging.getLogger(__name__)

OPTIONS_HEADER = '------------ Options -------------'
OPTIONS_FOOTER = '-------------- End ----------------'

# Choice lists come from the code that uses each value. The original also listed norm 'none', which raised inside
# the networks; NORM_TYPES (the networks' list) rejects it up front.
INIT_TYPES = list(init.INIT_TYPES)
NORM_TYPES = list(blocks.NORM_CHOICES)
JOINT_MODES = list(pose_util.HEATMAP_MODES)
LR_POLICIES = list(base_model.LR_POLICIES)
DATASET_TYPES = sorted(models.MODELS)
DATASET_NAMES = ['deepfashion', 'market', 'demo']  # the keys of the option sets' presets
BINARY = [0, 1]

# Dataset path options that presets fill; an old train_opt.json may hold null for them (the original's Market
# preset misspelt fn_pose, so its option files have fn_pose: null).
DATA_PATH_KEYS = ('data_root', 'fn_split', 'img_dir', 'seg_dir', 'corr_dir', 'fn_pose')

# Keys that change the network architecture or the input encoding. When one is missing from a
# loaded train_opt.json the current default is used, which may not match the saved weights, so
# merging warns naming the key (the original took the default silently).
ARCH_KEYS = (
    'which_model', 'which_model_G', 'G_nf', 'G_max_nf', 'G_n_scale', 'G_n_warp_scale', 'G_vis_mode',
    'G_feat_warp', 'G_pix_warp', 'G_norm', 'G_activation', 'G_no_end_norm', 'G_pose_type',
    'G_appearance_type', 'G_pix_warp_input_type', 'nf', 'max_nf', 'num_scale', 'start_scale', 'norm',
    'input_type1', 'input_type2', 'image_size', 'joint_nc', 'seg_nc', 'joint_mode', 'joint_radius',
)

# --nan_policy: what a non-finite loss or gradient does to training.
NAN_POLICIES = ('stop', 'skip')

# Options a resumed run may change; they are applied and listed. The run only continues with other settings.
RESUME_RUN_KEYS = ('n_epoch', 'n_epoch_decay', 'display_freq', 'test_epoch_freq', 'save_epoch_freq', 'vis_epoch_freq',
                   'check_grad_freq', 'save_step_freq', 'n_vis', 'tensorboard', 'max_steps_per_epoch', 'val_batches',
                   'nan_policy', 'data_root', 'vgg_weights', 'strict_seg')
# Options that describe this start, not the training: always the command line's, never compared on resume.
RESUME_CURRENT_KEYS = ('id', 'gpu_ids', 'device', 'is_train', 'checkpoints_dir', 'num_workers', 'resume_train',
                       'resume_label', 'last_epoch', 'auto_resume', 'overwrite', 'check_data', 'maps_on_device')

# Run-time keys that always keep the test command line's value when training options are merged.
# `id` is kept so a renamed experiment folder still addresses itself (the original took the id
# stored in the file).
RUNTIME_KEYS = ('id', 'gpu_ids', 'device', 'is_train', 'checkpoints_dir', 'num_workers', 'seed',
                'allow_corr_fallback', 'strict_seg', 'maps_on_device')


def default_num_workers() -> int:
    """Data-loader workers sized for this machine: ``min(4, os.cpu_count())`` (at least 0)."""
    return min(4, os.cpu_count() or 0)


class Options(argparse.Namespace):
    """Parsed options. After parsing the key set is fixed: assigning an unknown attribute raises.

    ``opt.lr = 1e-3`` works (existing key); ``opt.lrr = 1e-3`` raises ``AttributeError`` with a
    suggestion, instead of silently creating a new option. Use ``opt.define(name, value)`` to add
    a key on purpose. ``vars(opt)`` holds only options (the bookkeeping lives in slots).
    """

    __slots__ = ('_frozen', '_option_set', '_explicit', '_command_line')

    def __init__(self, **kwargs: Any) -> None:
        object.__setattr__(self, '_frozen', False)
        object.__setattr__(self, '_option_set', None)
        object.__setattr__(self, '_explicit', frozenset())
        object.__setattr__(self, '_command_line', None)
        super().__init__(**kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in Options.__slots__:
            object.__setattr__(self, name, value)
            return
        if getattr(self, '_frozen', False) and name not in self.__dict__:
            hint = difflib.get_close_matches(name, list(self.__dict__), n=3)
            hint_txt = f' (did you mean {", ".join(hint)}?)' if hint else ''
            raise AttributeError(
                f'unknown option {name!r}{hint_txt}; options are fixed after parsing, '
                f'use opt.define({name!r}, value) to add a new key deliberately')
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails. Dunder/private lookups (pickle, copy) must get a
        # plain AttributeError.
        if name.startswith('_'):
            raise AttributeError(name)
        keys = list(object.__getattribute__(self, '__dict__'))
        hint = difflib.get_close_matches(name, keys, n=3)
        hint_txt = f' (did you mean {", ".join(hint)}?)' if hint else ''
        raise AttributeError(f'no option {name!r}{hint_txt}')

    @property
    def explicit_keys(self) -> frozenset[str]:
        """Options typed on the command line (even when equal to the default); preset and default values are not.

        Merging with saved options uses it: an explicit value is a request, a default is not.
        """
        return self._explicit

    @property
    def command_line(self) -> list[str]:
        """The command that produced these options (``[script, *args]``), for the run records."""
        return list(self._command_line) if self._command_line is not None else [sys.argv[0]]

    @property
    def expr_dir(self) -> Path:
        """The experiment folder ``<checkpoints_dir>/<id>``: derived here only, never stored or saved."""
        return Path(self.checkpoints_dir) / self.id

    def freeze(self) -> 'Options':
        """Forbid new keys from now on; returns ``self``."""
        object.__setattr__(self, '_frozen', True)
        return self

    def define(self, name: str, value: Any) -> None:
        """Add (or set) a key deliberately, bypassing the unknown-key check."""
        object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict sorted by key; ``device`` is derived state and is left out."""
        out: dict[str, Any] = {}
        for key in sorted(vars(self)):
            if key == 'device':
                continue
            value = vars(self)[key]
            if isinstance(value, tuple):
                value = list(value)
            if not _is_jsonable(value):
                raise TypeError(f'option {key!r} has a value of type {type(value).__name__} ({value!r}) '
                                f'that cannot be saved as JSON')
            out[key] = value
        return out


def _is_jsonable(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_is_jsonable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_jsonable(v) for k, v in value.items())
    return False


def format_options(opt: argparse.Namespace) -> str:
    """The options block printed by ``parse(display=True)``: sorted ``key: value`` lines."""
    lines = [OPTIONS_HEADER]
    lines += [f'{key}: {value}' for key, value in sorted(vars(opt).items())]
    lines.append(OPTIONS_FOOTER)
    return '\n'.join(lines)


def save_options(opt: argparse.Namespace, path: str | Path) -> None:
    """Write ``opt`` as JSON (indent 0, separators ``(',', ': ')``: one key per line).

    Lists stay lists, ``None`` becomes ``null``; ``device`` is not written. Parent folders are
    created; the write is atomic.
    """
    data = opt.to_dict() if isinstance(opt, Options) else Options(**vars(opt)).to_dict()
    save_json(data, path, indent=0)


def _close_names(name: str, candidates: list[str], id_prefix: str = '') -> list[str]:
    """The up to five ``candidates`` most similar to ``name`` (``difflib``, ratio >= 0.6), compared without the
    ``id_prefix`` they share."""
    def bare(n: str) -> str:
        return n[len(id_prefix):] if id_prefix and n.startswith(id_prefix) else n
    by_bare: dict[str, list[str]] = {}
    for c in candidates:
        by_bare.setdefault(bare(c), []).append(c)
    close = difflib.get_close_matches(bare(name), list(by_bare), n=5, cutoff=0.6)
    return [c for b in close for c in by_bare[b]][:5]


def load_options_file(path: str | Path, id_prefix: str = '') -> dict[str, Any]:
    """Read an options JSON file (e.g. ``train_opt.json``) into a dict.

    Raises ``FileNotFoundError`` naming the path, the experiment folders whose names are close to the requested
    one (``difflib``; names are compared without ``id_prefix``, e.g. ``PoseTransfer_``, which all ids of a stage
    share) and the experiment folders that do exist.
    """
    path = Path(path)
    if not path.is_file():
        exp_dir = path.parent
        ckpt_dir = exp_dir.parent
        folders = sorted(p.name for p in ckpt_dir.iterdir() if p.is_dir()) if ckpt_dir.is_dir() else []
        close = _close_names(exp_dir.name, [f for f in folders if f != exp_dir.name], id_prefix)
        known = folders[:20]
        known_txt = f'; experiment folders in {ckpt_dir}: {", ".join(known)}' if known else (
            f'; {ckpt_dir} has no experiment folders' if ckpt_dir.is_dir() else f'; {ckpt_dir} does not exist')
        if close:
            known_txt = f'; did you mean {", ".join(close)}?' + known_txt
        raise FileNotFoundError(
            f'options file {path} not found: check the experiment id ({exp_dir.name!r}, --id) and '
            f'--checkpoints_dir ({str(ckpt_dir)!r}){known_txt}')
    data = load_json(path)
    if not isinstance(data, dict):
        raise ValueError(f'options file {path} does not hold a JSON object (got {type(data).__name__})')
    return data



def add_data_options(parser: argparse.ArgumentParser, dataset_type: str) -> None:
    """Keypoint/segmentation encoding and dataset options shared by the flow and pose-transfer sets.

    The path options default to None and are filled by the dataset preset (``--dataset_name``).
    """
    # pose / segmentation encoding
    parser.add_argument('--joint_nc', type=int, default=18, help='number of keypoints')
    parser.add_argument('--joint_mode', type=str, default='binary', choices=JOINT_MODES,
                        help='keypoint heatmap type')
    parser.add_argument('--joint_radius', type=int, default=8, help='keypoint heatmap radius (pixels)')
    parser.add_argument('--seg_nc', type=int, default=7, help='number of segmentation classes')
    # data
    parser.add_argument('--dataset_type', type=str, default=dataset_type, choices=DATASET_TYPES,
                        help='dataset class: flow or pose_transfer')
    parser.add_argument('--dataset_name', type=str, default='deepfashion', choices=DATASET_NAMES,
                        help='dataset; selects the preset of data paths, sizes and scales (each preset '
                             'value can be overridden on the command line)')
    parser.add_argument('--image_size', type=int, nargs='+', default=[256, 256], help='image size H W')
    parser.add_argument('--batch_size', type=int, default=8, help='batch size')
    parser.add_argument('--data_root', type=str, default=None, help='dataset folder (set by the preset)')
    parser.add_argument('--fn_split', type=str, default=None,
                        help='pair split file, relative to data_root (set by the preset)')
    parser.add_argument('--img_dir', type=str, default=None,
                        help='image folder, relative to data_root (set by the preset)')
    parser.add_argument('--seg_dir', type=str, default=None,
                        help='segmentation folder, relative to data_root (set by the preset)')
    parser.add_argument('--corr_dir', type=str, default=None,
                        help='correspondence folder, relative to data_root (set by the preset)')
    parser.add_argument('--fn_pose', type=str, default=None,
                        help='keypoint file, relative to data_root (set by the preset)')
    parser.add_argument('--debug', action='store_true', help='keep only the first 32 pairs of each split')
    parser.add_argument('--allow_corr_fallback', type=int, default=0, choices=BINARY,
                        help='[modern] 1: an unreadable correspondence file becomes zero flow / '
                             'visibility 2 and is counted and reported (the original did this '
                             'silently); 0: raise naming the file')
    parser.add_argument('--strict_seg', type=int, default=0, choices=BINARY,
                        help='[modern] 1: a segmentation label outside 0..seg_nc-1 is an error naming the file; '
                             '0: such pixels get all-zero one-hot rows, as in the original, and each file '
                             'holding them is reported once with the pixel count')


# Options of where a test run writes; they never come from a saved train_opt.json.
TEST_OUTPUT_KEYS = ('results_dir', 'overwrite')


def add_test_output_options(parser: argparse.ArgumentParser) -> None:
    """``--results_dir`` and ``--overwrite`` of both test sets (results go to ``<base>/test_<split>_<epoch>/``)."""
    parser.add_argument('--results_dir', type=str, default=None,
                        help='[modern] folder that receives the results folder test_<split>_<epoch>/ (default: the '
                             'experiment folder <checkpoints_dir>/<id>/); lets a read-only model folder be tested')
    parser.add_argument('--overwrite', action='store_true',
                        help='[modern] replace an existing results folder test_<split>_<epoch>/ (without it, '
                             'testing the same checkpoint on the same split again is refused)')



def add_schedule_options(parser: argparse.ArgumentParser, *, lr: float, beta1: float, weight_decay: float,
                         lr_decay: int, lr_gamma: float, save_epoch_freq: int, what: str = 'network') -> None:
    """Resume, optimisation, schedule, logging and checkpoint options of both train sets; the defaults differ per
    stage (the original's values) and are passed in."""
    parser.add_argument('--resume_train', action='store_true',
                        help="resume training from 'latest' (or --resume_label, or epoch --last_epoch when given). "
                             'The saved options are used; architecture options cannot change; run options (epochs, '
                             'frequencies, n_vis, tensorboard, max_steps_per_epoch, val_batches, nan_policy, '
                             'data_root, vgg_weights, strict_seg, devices and workers) given on the command line are '
                             'applied and listed; any other option that differs from the checkpoint is refused')
    parser.add_argument('--last_epoch', type=int, default=1,
                        help='with --resume_train: epoch to resume from (an integer-labelled checkpoint, e.g. the '
                             "original's <epoch>_net_*.pth files); only used when given")
    parser.add_argument('--lr', type=float, default=lr, help=f'{what} Adam learning rate')
    parser.add_argument('--beta1', type=float, default=beta1, help='Adam beta1')
    parser.add_argument('--beta2', type=float, default=0.999, help='Adam beta2')
    parser.add_argument('--weight_decay', type=float, default=weight_decay, help=f'{what} weight decay')
    parser.add_argument('--lr_policy', type=str, default='step', choices=LR_POLICIES, help='learning-rate schedule')
    parser.add_argument('--n_epoch', type=int, default=30, help='epochs at the initial learning rate')
    parser.add_argument('--n_epoch_decay', type=int, default=0,
                        help='extra epochs (total epochs = n_epoch + n_epoch_decay)')
    parser.add_argument('--lr_decay', type=int, default=lr_decay, help='step schedule: epochs per decay step')
    parser.add_argument('--lr_gamma', type=float, default=lr_gamma, help='step schedule: decay factor')
    parser.add_argument('--display_freq', type=int, default=10, help='iterations between log lines')
    parser.add_argument('--test_epoch_freq', type=int, default=1, help='epochs between validations')
    parser.add_argument('--save_epoch_freq', type=int, default=save_epoch_freq,
                        help='epochs between numbered checkpoints')
    parser.add_argument('--vis_epoch_freq', type=int, default=1, help='epochs between visualisations')
    parser.add_argument('--check_grad_freq', type=int, default=100,
                        help='iterations between per-loss gradient-norm checks')
    parser.add_argument('--n_vis', type=int, default=64, help='number of samples to visualise')


class BaseOptions:
    """Options shared by all four option sets plus the modern run-time options.

    Subclasses extend ``initialize(parser)``, set ``is_train``, ``id_prefix``, ``presets``
    (dataset name -> default overrides), ``opt_file_name`` and ``preserved_keys`` (kept from the
    test command line when training options are merged), and may extend ``auto_set(opt)``.
    """

    is_train: ClassVar[bool] = False
    id_prefix: ClassVar[str] = ''
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    opt_file_name: ClassVar[str] = 'opt.json'
    preserved_keys: ClassVar[tuple[str, ...]] = RUNTIME_KEYS
    description: ClassVar[str] = ''

    def __init__(self) -> None:
        self.parser = self.build_parser()
        self.opt: Options | None = None

    # ------------------------------------------------------------------ parser construction
    def build_parser(self) -> argparse.ArgumentParser:
        """A fresh parser holding every option of this set (base defaults, no preset applied)."""
        parser = argparse.ArgumentParser(
            description=self.description or type(self).__name__,
            formatter_class=argparse.ArgumentDefaultsHelpFormatter, allow_abbrev=False)
        self.initialize(parser)
        return parser

    def initialize(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument('--id', type=str, default='default',
                            help=f'experiment id; the prefix {self.id_prefix!r} is prepended when missing')
        parser.add_argument('--gpu_ids', type=parse_gpu_ids, default='0',
                            help="comma-separated GPU ids, e.g. '0' or '0,1'; negative ids are dropped, "
                                 "'-1' runs on the CPU (also used, with a warning, when CUDA is unavailable)")
        parser.add_argument('--checkpoints_dir', type=str, default='checkpoints',
                            help='[modern] folder holding one sub-folder per experiment id')
        parser.add_argument('--num_workers', type=int, default=default_num_workers(),
                            help='[modern] data-loader worker processes (0 = load in the main process; '
                                 'the original used 8)')
        parser.add_argument('--maps_on_device', type=int, default=0, choices=(0, 1),
                            help='[modern] 1: the loader leaves out the pose heatmaps and one-hot segmentation maps '
                                 '(joint_1/2, seg_1/2) and the model draws them on its device from the keypoints and '
                                 'label maps of the batch: the same values (bit for bit with --joint_mode binary), '
                                 'less work per sample in the loader workers and 5.5x fewer bytes to collate and '
                                 'copy to a GPU. On a CPU it only moves the work into the training process.')
        parser.add_argument('--seed', type=int, default=0,
                            help='[modern] random seed for Python, NumPy and PyTorch, applied by the '
                                 'scripts (the original did not seed)')

    # ------------------------------------------------------------------ parsing
    def _peek_dataset_name(self, parser: argparse.ArgumentParser, args: list[str] | None) -> str | None:
        peek = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        peek.add_argument('--dataset_name', type=str, default=parser.get_default('dataset_name'))
        known, _ = peek.parse_known_args(args)
        return known.dataset_name

    def apply_preset(self, parser: argparse.ArgumentParser, dataset_name: str | None) -> None:
        """Set the preset of ``dataset_name`` as parser defaults after validating its keys/values."""
        if dataset_name is None or dataset_name not in self.presets:
            return  # an invalid --dataset_name is reported by the final strict parse
        preset = self.presets[dataset_name]
        actions = {a.dest: a for a in parser._actions if a.dest != 'help'}
        unknown = sorted(k for k in preset if k not in actions)
        if unknown:
            raise ValueError(f'{type(self).__name__}: preset for dataset {dataset_name!r} sets unknown '
                             f'option(s) {unknown}; every preset key must be an option of the parser')
        for key, value in preset.items():
            choices = actions[key].choices
            if choices is not None and value not in choices:
                raise ValueError(f'{type(self).__name__}: preset for dataset {dataset_name!r} sets '
                                 f'{key}={value!r}, not one of {list(choices)}')
        parser.set_defaults(**copy.deepcopy(preset))

    def parse(self, args: list[str] | None = None, display: bool = True, save: bool = True) -> Options:
        """Parse ``args`` (``sys.argv[1:]`` when None), apply presets, ``auto_set`` and ``check_consistency``.

        display: print the options block (sorted ``key: value`` lines).
        save: accepted for compatibility and otherwise unused: parsing writes nothing. The option files are written
            when a run starts, once it is known what the run is (``training.run_state.begin_run`` writes
            ``train_opt.json`` or ``train_opt_resume<N>.json`` and appends to ``order_line.txt``; a test run writes
            ``test_opt.json`` into its results folder).
        Returns the frozen :class:`Options` namespace (also stored as ``self.opt``); ``opt.explicit_keys`` holds
        the options typed on the command line and ``opt.command_line`` the command.
        """
        del save
        parser = self.build_parser()
        self.apply_preset(parser, self._peek_dataset_name(parser, args))
        self.parser = parser
        opt = parser.parse_args(args, namespace=Options())
        opt._explicit = self.explicit_keys(args)
        opt._command_line = [sys.argv[0], *(sys.argv[1:] if args is None else args)]
        self.auto_set(opt)
        self.check_consistency(opt)
        opt._option_set = type(self)
        opt.freeze()
        main = is_main_process()  # under torchrun only rank 0 prints and writes the options
        if display and main:
            print(format_options(opt))
        self.opt = opt
        return opt

    def explicit_keys(self, args: list[str] | None) -> frozenset[str]:
        """The option names (dests) that ``args`` sets explicitly.

        A second parse in which every default is ``argparse.SUPPRESS``: only options present on the command line
        reach the namespace, whatever their value (``--G_nf 32`` is explicit even though 32 is the default).
        """
        probe = self.build_parser()
        for action in probe._actions:
            action.default = argparse.SUPPRESS
        return frozenset(vars(probe.parse_args(args)))

    def auto_set(self, opt: Options) -> None:
        """Derived values, computed here only: ``is_train``, ``gpu_ids`` list, ``device``, id prefix."""
        opt.is_train = self.is_train
        opt.gpu_ids = parse_gpu_ids(opt.gpu_ids)
        opt.device, opt.gpu_ids = resolve_device(opt.gpu_ids)
        if self.id_prefix and not opt.id.startswith(self.id_prefix):
            opt.id = self.id_prefix + opt.id
        for key in ('num_workers', 'save_step_freq', 'max_steps_per_epoch', 'val_batches'):
            if key in vars(opt) and getattr(opt, key) < 0:
                self.parser.error(f'--{key} must be >= 0 (got {getattr(opt, key)})')
        if 'batch_size' in vars(opt) and opt.batch_size < 1:
            self.parser.error(f'--batch_size must be >= 1 (got {opt.batch_size})')
        if 'image_size' in vars(opt) and (len(opt.image_size) != 2 or min(opt.image_size) < 1):
            self.parser.error(f'--image_size takes two positive integers H W (got {opt.image_size})')

    def check_consistency(self, opt: Options) -> None:
        """Combinations of options that cannot do what they say: an error (``parser.error``) or a one-line warning
        that says what happens instead. Option sets extend this; the base checks the GPU list."""
        if 'n_epoch' in vars(opt) and opt.n_epoch < 1:
            self.parser.error(f'--n_epoch must be >= 1 (got {opt.n_epoch}): with no epoch there is nothing to train')
        if 'n_epoch_decay' in vars(opt) and opt.n_epoch_decay < 0:
            self.parser.error(f'--n_epoch_decay must be >= 0 (got {opt.n_epoch_decay})')
        if vars(opt).get('overwrite') and (vars(opt).get('resume_train') or vars(opt).get('auto_resume')):
            self.parser.error('--overwrite deletes the experiment folder\'s contents and starts afresh; it cannot be '
                              'combined with --resume_train or --auto_resume')
        negative = [f'--{k} {v}' for k, v in sorted(vars(opt).items()) if k.startswith('loss_weight_') and v < 0]
        if negative:
            self.parser.error(f'loss weights must be >= 0: {", ".join(negative)}')
        if len(opt.gpu_ids) > 1:
            ids = ','.join(map(str, opt.gpu_ids))
            warn_line(f'--gpu_ids {ids}: this process runs on {opt.device} only (one GPU per process); to train '
                      f'on {len(opt.gpu_ids)} GPUs launch one process per GPU with torchrun '
                      f'(torchrun --nproc_per_node {len(opt.gpu_ids)} scripts/<train script>.py ...)')


def warn_line(text: str) -> None:
    """A one-line warning on stderr, in the same form as the device resolver's."""
    print(f'WARNING: {text}', file=sys.stderr)


def _check_loaded_value(action: argparse.Action, key: str, value: Any, path: Path) -> None:
    """Raise ``ValueError`` if a value from an options file does not fit the option's type/choices."""
    def bad(reason: str) -> ValueError:
        return ValueError(f'{path}: option {key!r} = {value!r} {reason}; fix or delete the entry '
                          f'(deleting it uses the current default {action.default!r})')

    if value is None:
        if action.default is not None:
            raise bad('is null but the option has no null value')
        return
    items = value if action.nargs in ('+', '*') else [value]
    if action.nargs in ('+', '*') and not isinstance(value, list):
        raise bad('should be a list')
    for item in items:
        if action.type is int and (isinstance(item, bool) or not isinstance(item, int)):
            raise bad('should be an integer')
        if action.type is float and (isinstance(item, bool) or not isinstance(item, (int, float))):
            raise bad('should be a number')
        if action.type is str and not isinstance(item, str):
            raise bad('should be a string')
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)) and not isinstance(item, bool):
            raise bad('should be true or false')
        if action.choices is not None and item not in action.choices:
            raise bad(f'is not one of {list(action.choices)}')


def _same_value(a: Any, b: Any) -> bool:
    """Equality of an option value from the command line and one from JSON (tuples are lists there)."""
    norm = lambda v: list(v) if isinstance(v, tuple) else v  # noqa: E731
    return norm(a) == norm(b)


def merge_train_options(test_opt: argparse.Namespace, train_opt_path: str | Path | None = None,
                        option_set: type[BaseOptions] | None = None, announce: bool = True) -> Options:
    """Merge a saved ``train_opt.json`` into test options and return the merged copy.

    Which value wins, key by key:

    * preserved keys (the option set's ``preserved_keys``: pose ``gpu_ids, is_train, batch_size, which_epoch, n_vis,
      debug``, flow the same without ``n_vis``, plus the run-time keys ``id, device, checkpoints_dir, num_workers,
      seed, allow_corr_fallback, strict_seg`` and pose ``bn_mode, pose_mask_transposed``; both test sets also
      ``TEST_OUTPUT_KEYS``: ``results_dir, overwrite``) always keep the test command line;
    * architecture keys (``ARCH_KEYS``) come from the experiment; an explicit command-line value that differs is a
      ``ValueError`` naming both values (the weights were trained with the saved one);
    * every other key present in both: an explicit command-line value wins (``--data_root``, ``--dataset_name``,
      ``--pretrained_flow_id``, ...) and all such overrides are announced in one printed line; otherwise the saved
      value is used. An explicit ``--dataset_name`` that differs from the saved one also brings that dataset's preset
      paths (``data_root``, ``img_dir``, ... unless given explicitly too).

    Keys only in the file (train-only options, removed options) are ignored and logged once at debug level. Values
    are checked against the option's type and choices. Architecture keys missing from the file keep the current
    default with a ``UserWarning`` naming them. Dataset path keys that are null (old Market files have
    ``fn_pose: null``) fall back to the dataset preset.

    test_opt: namespace from a test option set's ``parse`` (not modified); a plain namespace counts as having no
        explicit keys.
    train_opt_path: defaults to ``<checkpoints_dir>/<id>/train_opt.json``.
    option_set: the option-set class; defaults to the one that parsed ``test_opt``.
    announce: print the line listing the command-line overrides (when there are any).
    """
    option_set = option_set or getattr(test_opt, '_option_set', None)
    if option_set is None:
        raise TypeError('merge_train_options: cannot tell which option set produced test_opt; pass '
                        'option_set=TestPoseTransferOptions or TestFlowRegressionOptions')
    if train_opt_path is None:
        train_opt_path = Path(test_opt.checkpoints_dir) / test_opt.id / 'train_opt.json'
    path = Path(train_opt_path)
    saved = load_options_file(path, option_set.id_prefix)

    opt = copy.deepcopy(test_opt) if isinstance(test_opt, Options) else Options(**vars(test_opt))
    opt._option_set = option_set
    explicit = opt.explicit_keys
    actions = {a.dest: a for a in option_set().parser._actions if a.dest != 'help'}
    preserved = set(option_set.preserved_keys)
    current = vars(opt)

    unknown = sorted(k for k in saved if k not in current)
    if unknown:
        logger.debug('%s: ignoring keys that are not test options: %s', path, ', '.join(unknown))
    conflicts: list[str] = []
    overrides: dict[str, str] = {}
    for key, value in saved.items():
        if key not in current or key in preserved:
            continue
        if key in actions:
            _check_loaded_value(actions[key], key, value, path)
        if key in explicit and not _same_value(current[key], value):
            if key in ARCH_KEYS:
                conflicts.append(f"--{key} {current[key]!r} differs from the experiment's {key} {value!r}")
            else:
                overrides[key] = f'{key}={current[key]!r} (saved {value!r})'
            continue
        current[key] = value
    if conflicts:
        raise ValueError(f'{path}: ' + '; '.join(conflicts) + '. Architecture options come from the experiment '
                         '(its weights were trained with them): drop them from the command line, or test another '
                         '--id')

    if 'dataset_name' in overrides:
        followed = [k for k in DATA_PATH_KEYS if k in current and k not in explicit]
        for key in followed:
            current[key] = vars(test_opt)[key]
        if followed:
            overrides['dataset_name'] += ' with its preset paths'

    missing_arch = [k for k in ARCH_KEYS if k in current and k not in saved]
    for key in missing_arch:
        warnings.warn(f'{path} has no {key!r}: using the current default {current[key]!r}, which may not '
                      f'match the saved network weights', UserWarning, stacklevel=2)

    preset = option_set.presets.get(opt.dataset_name, {}) if 'dataset_name' in current else {}
    for key in DATA_PATH_KEYS:
        if key in current and current[key] is None and preset.get(key) is not None:
            logger.info('%s: %s is null; using the %r preset value %r', path, key, opt.dataset_name, preset[key])
            current[key] = preset[key]
    if overrides and announce:
        print(f'options from the command line override {path}: {", ".join(overrides.values())}')
    return opt.freeze()


def _cli_value(value: Any) -> str:
    """A value as it is typed on the command line (lists space-separated)."""
    if isinstance(value, (list, tuple)):
        return ' '.join(map(str, value))
    return str(value)


def merge_resume_options(opt: Options, saved: dict[str, Any], source: str | Path,
                         label: str | int) -> tuple[Options, list[str]]:
    """The options of a resumed run: the checkpoint's saved options, with the command line's run options applied.

    Key by key (``saved``: the options the checkpoint was trained with; ``opt``: the parsed command line):

    * ``RESUME_CURRENT_KEYS`` (id, devices, workers, folders, resume flags) describe this start: command line;
    * keys not typed on the command line take the saved value (a resume continues the saved run: a schedule or
      loss weight given at the first start need not be repeated, and today's defaults do not creep in);
    * typed keys equal to the saved value change nothing;
    * typed ``RESUME_RUN_KEYS`` (epochs, frequencies, n_vis, tensorboard, max_steps_per_epoch, val_batches,
      nan_policy, data_root, vgg_weights, strict_seg) that differ are applied and returned as ``'key new (was old)'``;
    * typed architecture keys (``ARCH_KEYS``) and every other typed key that differs (lr, batch size, loss weights,
      betas, lr policy, seed, data options, ...) are refused with one ``ValueError`` listing them all.

    Keys the checkpoint lacks (options added later) keep the command line's value. Saved values are checked against
    the option's type and choices. Returns ``(merged options, changes)``; ``opt`` is not modified.
    """
    option_set = opt._option_set
    actions = {a.dest: a for a in option_set().parser._actions if a.dest != 'help'} if option_set else {}
    merged = copy.deepcopy(opt)
    current = vars(merged)
    explicit = opt.explicit_keys
    changes: list[str] = []
    arch: list[str] = []
    fixed: list[str] = []
    for key in list(current):
        if key not in saved or key in RESUME_CURRENT_KEYS:
            continue
        value = saved[key]
        if key in actions:
            _check_loaded_value(actions[key], key, value, Path(source))
        if key not in explicit or _same_value(current[key], value):
            current[key] = value
            continue
        if key in RESUME_RUN_KEYS:
            changes.append(f'{key} {_cli_value(current[key])} (was {_cli_value(value)})')
        else:
            (arch if key in ARCH_KEYS else fixed).append(
                f'--{key} {_cli_value(current[key])} (checkpoint: {_cli_value(value)})')
    if arch or fixed:
        lines = [f'cannot resume from {str(label)!r} ({source}): the command line differs from the options the '
                 f'checkpoint was trained with']
        if arch:
            lines.append(f'  architecture (always taken from the checkpoint): {", ".join(arch)}')
        if fixed:
            lines.append(f'  training settings (a resumed run keeps them): {", ".join(fixed)}')
        lines.append('Drop these options to continue the saved run with its own settings, or start a new experiment '
                     '(a new --id, or --overwrite to discard this one). Options a resume may change: '
                     + ', '.join(f'--{k}' for k in RESUME_RUN_KEYS) + '.')
        raise ValueError('\n'.join(lines))
    return merged.freeze(), changes
