"""The contract every model implements, and the bookkeeping they share.

A model owns its networks (``self.nets``: name -> module, names as in the checkpoint files: ``netF``, ``netG``,
``netPW``, ``netD``), its optimizers (``self.optimizers``: ``optim``, ``optim_D``) and the tensors of the current
batch. The training loop (:mod:`training.loop`) only talks to a model through these methods:

* ``set_input(data)``: copy one collated batch (the dataset item dict, see ``docs/architecture.md``) to the
  model's device;
* ``forward()``: compute ``self.output`` (no losses);
* ``optimize_parameters(check_grad=False)``: one training iteration (forward, losses, backward, step); every
  optimizer step goes through :meth:`BaseModel.step_if_finite`, which raises :class:`NonFiniteLossError` instead of
  applying a non-finite loss or gradient;
* ``test(compute_loss=False)``: forward without gradients, optionally computing losses/metrics;
* ``get_current_errors() -> dict[str, float]``: the losses/metrics of the last iteration;
* ``get_current_visuals() -> dict[name, (tensor, kind)]``: panels for the visual grid;
* ``train_mode()`` / ``eval_mode()``: switch network modes (the pose model keeps the original's no-ops);
* ``on_epoch_start(epoch)``: per-epoch switches (the pose model's GAN schedule);
* ``networks_to_save()``: the networks written as ``<label>_net_<name>.pth`` at this point of training.

Each network of ``self.nets`` is also the model attribute of the same name (``self.netG`` ...); the engine relies
on this to route a training step through data-parallel wrappers (:mod:`util.distributed`) while every other
pass and the checkpoints use the plain modules.

How the networks run (``--amp``, ``--channels_last``, ``--compile``) is resolved once into
``self.forward_settings`` (:class:`models.amp.ForwardSettings`); every network call goes through
``self.forward_settings.run`` and every backward/optimizer step through :meth:`BaseModel.backward` /
:meth:`BaseModel.step`, which add the float16 gradient scaler when one is needed.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from data.base_dataset import DEVICE_MAP_KEYS, draw_device_maps
from models.amp import ForwardSettings, amp_dtype, make_grad_scaler
from util.weights import (cpu_state_dict, load_network, load_state_dict_compat, network_path,
                          optimizer_state_to_cpu)

if TYPE_CHECKING:  # annotations only: models never import the options layer at run time
    from options.base_options import Options

# Batch keys that are tensors; everything else in the collated dict (ids) stays on the CPU.
INPUT_TENSOR_KEYS = ('img_1', 'img_2', 'joint_c_1', 'joint_c_2', 'joint_1', 'joint_2', 'seg_1', 'seg_2',
                     'seg_label_1', 'seg_label_2', 'flow_2to1', 'vis_2')


LR_POLICIES = ('step', 'plateau', 'lambda')


class NonFiniteLossError(FloatingPointError):
    """A loss term or a gradient of a training iteration is NaN or infinite; that optimizer step was not taken
    (its gradients are cleared). The message names the loss terms (or says that only the gradients are
    non-finite); the training loop adds the step and applies ``--nan_policy``."""


def step_learning_rate(base_lr: float, epoch: int, lr_decay: int, lr_gamma: float) -> float:
    """The step schedule of 1-based ``epoch``: ``base_lr * lr_gamma ** ((epoch - 1) // lr_decay)``.

    These are the original's (PyTorch 0.4) semantics; a modern ``StepLR`` stepped at the start of each epoch would
    decay one epoch early, so the rate is computed here. The one step-LR formula of the project (the generators,
    the flow module and the fashion classifiers use it).
    """
    if epoch < 1:
        raise ValueError(f'epochs are 1-based, got {epoch}')
    return base_lr * lr_gamma ** ((epoch - 1) // lr_decay)


def learning_rate_at(epoch: int, base_lr: float, opt: Options) -> float:
    """Learning rate of 1-based ``epoch`` under ``opt.lr_policy``.

    ``step``: :func:`step_learning_rate`.
    ``lambda``: constant for ``n_epoch`` epochs, then linear decay over ``n_epoch_decay`` epochs (the original read
    removed option names and crashed).
    ``plateau`` is metric driven and handled by :class:`PlateauSchedule`; here it returns ``base_lr``.
    """
    if epoch < 1:
        raise ValueError(f'epochs are 1-based, got {epoch}')
    if opt.lr_policy == 'step':
        return step_learning_rate(base_lr, epoch, opt.lr_decay, opt.lr_gamma)
    if opt.lr_policy == 'lambda':
        return base_lr * (1.0 - max(0, epoch - opt.n_epoch) / float(opt.n_epoch_decay + 1))
    if opt.lr_policy == 'plateau':
        return base_lr
    raise ValueError(f'unknown --lr_policy {opt.lr_policy!r}; valid: {list(LR_POLICIES)}')


class PlateauSchedule:
    """``--lr_policy plateau``: ReduceLROnPlateau(factor 0.2, threshold 0.01, patience 5) fed with the
    validation metric (the original stepped it without one and crashed)."""

    def __init__(self, optimizer: torch.optim.Optimizer, mode: str):
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=0.2, threshold=0.01, patience=5)

    def step(self, metric: float) -> None:
        self.scheduler.step(metric)

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)


class BaseModel:
    """Shared state and helpers; see the module docstring for the contract."""

    name = 'BaseModel'

    def __init__(self, opt: Options):
        self.opt = opt
        self.device = torch.device(opt.device) if not isinstance(opt.device, torch.device) else opt.device
        self.is_train = bool(opt.is_train)
        self.expr_dir = opt.expr_dir
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.plateau: dict[str, PlateauSchedule] = {}
        self.input: dict[str, Any] = {}
        self.output: dict[str, torch.Tensor] = {}
        self.loss: dict[str, torch.Tensor] = {}
        self.meas: dict[str, float] = {}
        # Test option sets have no speed options: they run the faithful float32 path.
        self.forward_settings = ForwardSettings(self.device.type, amp_dtype(getattr(opt, 'amp', 'off'), self.device),
                                                channels_last=bool(getattr(opt, 'channels_last', 0)),
                                                compile=bool(getattr(opt, 'compile', 0)))
        self.grad_scalers: dict[str, torch.amp.GradScaler] = {}  # per optimizer, float16 only
        # Set by the engine when the trained networks are wrapped in DistributedDataParallel: gradients are then
        # averaged across processes during backward, so a step must run exactly one backward per optimizer.
        self.data_parallel = False

    # ----------------------------------------------------------------------------------------------------- input
    def set_input(self, data: dict) -> None:
        """Copy a collated batch to the device; ``self.input['id']`` is the list of ``(id_1, id_2)`` pairs."""
        opt = self.opt
        on_device = bool(opt.maps_on_device)
        expected = [k for k in INPUT_TENSOR_KEYS if not (on_device and k in DEVICE_MAP_KEYS)]
        missing = [k for k in expected if k not in data]
        if missing:
            hint = (' (a --maps_on_device 1 loader leaves out joint_1/2 and seg_1/2: pass --maps_on_device 1 to the '
                    'model too)' if set(missing) <= set(DEVICE_MAP_KEYS) else '')
            raise KeyError(f'{self.name}.set_input: batch lacks {missing}; expected a collated dataset item (see '
                           f'data/base_dataset.py){hint}')
        self.input = {k: data[k].to(self.device, dtype=torch.float32, non_blocking=True) for k in expected}
        if on_device:
            draw_device_maps(self.input, opt.joint_mode, opt.joint_radius, opt.seg_nc)
        self.input['id'] = list(zip(data['id_1'], data['id_2']))

    # ------------------------------------------------------------------------------------------------- schedules
    def update_learning_rate(self, epoch: int) -> float:
        """Set every optimizer's rate for 1-based ``epoch``; returns the main optimizer's rate."""
        for name, optim in self.optimizers.items():
            if self.opt.lr_policy == 'plateau':
                continue  # driven by validation metrics
            lr = learning_rate_at(epoch, optim.param_groups[0]['initial_lr'], self.opt)
            for group in optim.param_groups:
                group['lr'] = lr
        return self.current_learning_rate()

    def current_learning_rate(self) -> float:
        optim = self.optimizers.get('optim')
        return optim.param_groups[0]['lr'] if optim is not None else math.nan

    def _make_optimizer(self, params, lr: float, betas: tuple[float, float], weight_decay: float):
        optim = torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
        for group in optim.param_groups:
            group['initial_lr'] = lr
        return optim

    def setup_grad_scalers(self) -> None:
        """One gradient scaler per optimizer when the networks run in float16 (``--amp fp16``)."""
        for name in self.optimizers:
            scaler = make_grad_scaler(self.forward_settings)
            if scaler is not None:
                self.grad_scalers[name] = scaler

    def backward(self, loss: torch.Tensor, optim_name: str) -> None:
        """``loss.backward()``, scaled by ``optim_name``'s gradient scaler under ``--amp fp16``."""
        scaler = self.grad_scalers.get(optim_name)
        (loss if scaler is None else scaler.scale(loss)).backward()

    def step(self, optim_name: str) -> None:
        """``optimizer.step()``; under ``--amp fp16`` the scaler unscales (and skips a step with inf/NaN
        gradients) and updates its scale."""
        optim = self.optimizers[optim_name]
        scaler = self.grad_scalers.get(optim_name)
        if scaler is None:
            optim.step()
            return
        scaler.step(optim)
        scaler.update()

    def setup_plateau(self, mode: str) -> None:
        if self.is_train and self.opt.lr_policy == 'plateau':
            self.plateau = {name: PlateauSchedule(o, mode) for name, o in self.optimizers.items()}

    def step_plateau(self, metric: float) -> None:
        for sched in self.plateau.values():
            sched.step(metric)

    # ------------------------------------------------------------------------------------------------ contract
    def forward(self) -> None:
        raise NotImplementedError(f'{type(self).__name__} must implement forward()')

    def optimize_parameters(self, check_grad: bool = False) -> None:
        raise NotImplementedError(f'{type(self).__name__} must implement optimize_parameters()')

    def test(self, compute_loss: bool = False) -> None:
        raise NotImplementedError(f'{type(self).__name__} must implement test()')

    def get_current_visuals(self) -> dict[str, tuple[torch.Tensor, str]]:
        raise NotImplementedError(f'{type(self).__name__} must implement get_current_visuals()')

    def train_mode(self) -> None:
        pass

    def eval_mode(self) -> None:
        pass

    def on_epoch_start(self, epoch: int) -> None:
        pass

    def networks_to_save(self) -> dict[str, nn.Module]:
        return dict(self.nets)

    def get_current_errors(self) -> dict[str, float]:
        errors = {k: float(v.detach()) for k, v in self.loss.items()}
        errors.update(self.meas)
        return errors

    # ------------------------------------------------------------------------------------------------ gradients
    def step_if_finite(self, optim_name: str, weighted_losses: dict[str, torch.Tensor]) -> None:
        """Take optimizer ``optim_name``'s step, unless a loss term or a gradient is non-finite.

        weighted_losses: the weighted terms that were back-propagated (scalar tensors; key ``k`` is logged as
            ``loss_<k>``).
        Raises :class:`NonFiniteLossError` (after clearing that optimizer's gradients, so neither the weights nor
        the optimizer state change) when a term is NaN/inf, or when every term is finite but a gradient is not
        (overflow in the backward pass). One device synchronisation per check; finite steps are unchanged.
        """
        optim = self.optimizers[optim_name]
        names = list(weighted_losses)
        values = torch.stack([weighted_losses[k].detach().float().reshape(()) for k in names])
        problem = None
        if not bool(torch.isfinite(values).all()):
            bad = [f'loss_{k} = {float(v):g}' for k, v in zip(names, values.tolist()) if not math.isfinite(v)]
            problem = f'non-finite weighted loss term(s) {", ".join(bad)}'
        else:
            # Under --amp fp16 the gradient scaler itself skips a step with inf/NaN gradients and lowers its scale.
            grads = [] if optim_name in self.grad_scalers else \
                [p.grad for group in optim.param_groups for p in group['params'] if p.grad is not None]
            if grads and not bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()):
                terms = ', '.join(f'loss_{k} = {float(v):g}' for k, v in zip(names, values.tolist()))
                problem = (f'non-finite gradient(s) for {optim_name} although every weighted loss term is finite '
                           f'({terms})')
        if problem is not None:
            optim.zero_grad(set_to_none=True)
            raise NonFiniteLossError(problem)
        self.step(optim_name)

    def backward_with_grad_check(self, weighted_losses: dict[str, torch.Tensor], net: nn.Module,
                                 optim_name: str = 'optim') -> dict[str, float]:
        """Back-propagate weighted losses one by one and record each one's gradient norm.

        The norm is the original's ``Σ_params ‖Δgrad_p‖₂`` (sum of per-parameter L2 norms of the increment). The
        accumulated gradient equals that of one combined backward, so optimisation is unaffected.

        Under data parallelism one backward per step is required (it averages the gradients across processes):
        the per-loss norms are then computed with ``torch.autograd.grad`` (this process's batch slice) and the
        sum of the losses is back-propagated once. Under ``--amp fp16`` the norms are of the unscaled gradients.
        """
        params = [p for p in net.parameters() if p.requires_grad]
        scaler = self.grad_scalers.get(optim_name)
        unscale = 1.0 if scaler is None else 1.0 / float(scaler.get_scale())
        norms = {}
        names = list(weighted_losses)
        if self.data_parallel:
            for name in names:
                loss = weighted_losses[name] if scaler is None else scaler.scale(weighted_losses[name])
                grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
                norms[f'grad_{name}'] = sum(float(g.norm(2)) for g in grads if g is not None) * unscale
            self.backward(sum(weighted_losses.values()), optim_name)
            return norms
        for i, name in enumerate(names):
            before = [p.grad.detach().clone() if p.grad is not None else None for p in params]
            loss = weighted_losses[name] if scaler is None else scaler.scale(weighted_losses[name])
            loss.backward(retain_graph=i < len(names) - 1)
            total = 0.0
            for p, b in zip(params, before):
                if p.grad is None:
                    continue
                delta = p.grad if b is None else p.grad - b
                total += float(delta.norm(2))
            norms[f'grad_{name}'] = total * unscale
        return norms

    # -------------------------------------------------------------------------------------------- checkpointing
    def training_state(self) -> dict[str, Any]:
        """Networks and optimizers as CPU state_dicts, for the complete checkpoint."""
        return {
            'nets': {name: cpu_state_dict(net) for name, net in self.nets.items()},
            'optimizers': {name: optimizer_state_to_cpu(o.state_dict()) for name, o in self.optimizers.items()},
            'plateau': {name: s.state_dict() for name, s in self.plateau.items()},
            **({'grad_scalers': {name: s.state_dict() for name, s in self.grad_scalers.items()}}
               if self.grad_scalers else {}),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        for name, sd in state['nets'].items():
            if name not in self.nets:
                raise KeyError(f'checkpoint holds network {name!r} that this model does not have '
                               f'({sorted(self.nets)}); check the experiment options')
            load_state_dict_compat(self.nets[name], sd)
        for name, sd in state['optimizers'].items():
            if name in self.optimizers:
                self.optimizers[name].load_state_dict(sd)
        for name, sd in state.get('plateau', {}).items():
            if name in self.plateau:
                self.plateau[name].load_state_dict(sd)
        for name, sd in state.get('grad_scalers', {}).items():
            if name in self.grad_scalers:
                self.grad_scalers[name].load_state_dict(sd)

    def load_network_file(self, net: nn.Module, expr_dir: Path, label: str | int, name: str) -> None:
        """Load ``<expr_dir>/<label>_net_<name>.pth`` (original or our format) into ``net`` strictly."""
        path = network_path(expr_dir, label, name)
        if not path.is_file():
            raise FileNotFoundError(
                f'network file {path} not found: check --id/--which_epoch (or the pretrained id/epoch options) '
                f'and that the experiment folder under {self.opt.checkpoints_dir}/ is complete')
        load_network(net, path)
