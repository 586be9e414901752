"""Stage 2: render the source person in the target pose.

Faithful defaults that matter for the released numbers: ``netG``/``netPW``/``netD`` are never switched to eval
mode, so BatchNorm normalises with the statistics of the current batch, in training and in the test script
(``--bn_mode running`` in the test options switches to running-statistics inference). The frozen flow network is in
eval mode from construction on.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from models.base_model import BaseModel
from models.factory import (define_discriminator, define_generator, define_pixel_warping_network,
                            tensor_type_items)
from models.flow_regression_model import load_frozen_flow_network
from models.losses import GANLoss, VGGLoss
from metrics.psnr import PSNR
from metrics.ssim import SSIM
from util.flow_util import FLOW_SCALE, warp_acc_flow
from util.pose_util import get_pose_mask_batch

if TYPE_CHECKING:  # annotations only: models never import the options layer at run time
    from options.base_options import Options


# Test-time BatchNorm of netG/netPW: 'batch' normalises with each test batch's statistics (the original never
# switched to eval mode), 'running' is eval-mode inference with the running statistics.
BN_MODES = ('batch', 'running')


def resolve_experiment_dir(checkpoints_dir: str | Path, exp_id: str, prefix: str, option: str) -> Path:
    """Folder of ``exp_id`` as given, else with ``prefix`` prepended (the original required the full name, so its
    README's ``--pretrained_G_id id_pose_4`` pointed at nothing)."""
    candidates = [Path(checkpoints_dir) / exp_id]
    if not exp_id.startswith(prefix):
        candidates.append(Path(checkpoints_dir) / f'{prefix}{exp_id}')
    for path in candidates:
        if path.is_dir():
            return path
    raise FileNotFoundError(f'{option} {exp_id!r}: no experiment folder {" or ".join(map(str, candidates))}; '
                            f'train it first or download the released models (bash scripts/download_models.sh)')


class PoseTransferModel(BaseModel):
    """Dual-path U-Net generator driven by a frozen flow network, optional pixel warping and a patch GAN.

    Outputs after :meth:`forward` (``self.output``), images ``[N, 3, H, W]`` in ``[-1, 1]``:
        ``img_out`` (final), ``img_out_G`` (generator before pixel warping), ``img_warp`` (source warped by the
        flow; background −1, out-of-image 0), ``pix_mask`` ``[N, 1, H, W]`` in ``[0, 1]``, ``flow_out``/``flow_tar``
        ``[N, 2, H, W]`` pixels, ``vis_out``/``vis_tar`` ``[N, 1, H, W]`` labels 0/1/2, ``mask_out``/``mask_tar``.
    """

    name = 'PoseTransferModel'

    def __init__(self, opt: Options):
        super().__init__(opt)
        # What forward() needs from the options, resolved once: forward itself reads no option.
        self.use_dual_generator = opt.which_model_G == 'dual_unet'
        self.pose_items = tensor_type_items(opt.G_pose_type)
        self.appearance_items = tensor_type_items(opt.G_appearance_type)
        self.warp_features = bool(opt.G_feat_warp)
        self.pix_warp_items = tensor_type_items(opt.G_pix_warp_input_type)
        self.detach_generator_for_pix_warp = bool(opt.G_pix_warp_detach)
        self.flow_items = tensor_type_items(opt.F_input_type)
        self.d_real_items = tensor_type_items(opt.D_input_type_real)
        self.d_fake_items = tensor_type_items(opt.D_input_type_fake)
        self.masked_ssim = (not self.is_train) and bool(opt.masked)
        self.pose_mask_transposed = bool(opt.pose_mask_transposed)
        # Networks, in the original's construction order (it matters for the random initialisation).
        self.netG = define_generator(opt).to(self.device)
        self.nets = {'netG': self.netG}
        self.netPW = None
        if opt.G_pix_warp:
            self.netPW = define_pixel_warping_network(opt).to(self.device)
            self.nets['netPW'] = self.netPW
        self.has_gan = self.is_train and opt.loss_weight_gan > 0
        self.gan_active = False  # switched on from --epoch_add_gan by on_epoch_start
        self.netD = None
        if self.has_gan:
            self.netD = define_discriminator(opt).to(self.device)
            self.nets['netD'] = self.netD
        self.netF = self._load_flow_network() if opt.flow_on_the_fly else None

        self.crit_psnr = PSNR()
        self.crit_ssim = SSIM()
        self.crit_vgg = None
        if self.is_train:
            need_vgg = opt.loss_weight_content > 0 or opt.loss_weight_style > 0
            self.crit_vgg = VGGLoss(content_weights=opt.vgg_content_weights,
                                    shifted_style=bool(opt.shifted_style_loss),
                                    weights_path=opt.vgg_weights).to(self.device) if need_vgg else None
            # With pixel warping only netPW learns; netG is frozen (but still runs in training-mode BN).
            trained = self.netPW if opt.G_pix_warp else self.netG
            self.optimizers['optim'] = self._make_optimizer(trained.parameters(), opt.lr, (opt.beta1, opt.beta2),
                                                            opt.weight_decay)
            if self.has_gan:
                self.crit_gan = GANLoss(use_lsgan=(opt.gan_type == 'lsgan')).to(self.device)
                self.optimizers['optim_D'] = self._make_optimizer(self.netD.parameters(), opt.lr_D,
                                                                  (opt.beta1, opt.beta2), opt.weight_decay_D)
            self.setup_plateau(mode='max')
            if opt.pretrained_G_id:
                g_dir = resolve_experiment_dir(opt.checkpoints_dir, opt.pretrained_G_id, 'PoseTransfer_',
                                               '--pretrained_G_id')
                self.load_network_file(self.netG, g_dir, opt.pretrained_G_epoch, 'netG')
        else:
            self.load_network_file(self.netG, self.expr_dir, opt.which_epoch, 'netG')
            if self.netPW is not None:
                self.load_network_file(self.netPW, self.expr_dir, opt.which_epoch, 'netPW')
        self._set_generator_modes()

    # ---------------------------------------------------------------------------------------------- flow net
    def _load_flow_network(self):
        opt = self.opt
        flow_dir = resolve_experiment_dir(opt.checkpoints_dir, opt.pretrained_flow_id, 'FlowReg_',
                                          '--pretrained_flow_id')
        return load_frozen_flow_network(flow_dir, opt.pretrained_flow_epoch, self.device)

    def _set_generator_modes(self) -> None:
        """netG/netPW/netD stay in training mode (original); ``--bn_mode running`` at test time uses eval mode."""
        running = (not self.is_train) and self.opt.bn_mode == 'running'
        for net in self.nets.values():
            net.train(not running)

    # --------------------------------------------------------------------------------------------- forward
    def gather(self, items: list[str]) -> torch.Tensor:
        """Concatenate the named input/output tensors along channels, in the given order (a tensor-type string
        such as ``img_1+joint_2`` split at ``+``)."""
        pool = {**self.input, **self.output}
        missing = [item for item in items if not isinstance(pool.get(item), torch.Tensor)]
        if missing:
            raise KeyError(f'tensor-type items {missing} (from {"+".join(items)!r}) are not available at this '
                           f'point; available: {sorted(k for k, v in pool.items() if isinstance(v, torch.Tensor))}')
        return torch.cat([pool[item] for item in items], dim=1)

    def forward(self) -> None:
        inp = self.input
        out: dict[str, torch.Tensor] = {}
        self.output = out
        # 1. Flow and visibility (no gradients: the flow network is frozen).
        with torch.no_grad():
            out['flow_tar'], out['vis_tar'] = inp['flow_2to1'], inp['vis_2']
            out['mask_tar'] = (inp['vis_2'] < 2).float()
            if self.netF is not None:
                flow, vis_logits, _, _ = self.netF(self.gather(self.flow_items))
                out['vis_out'] = vis_logits.argmax(dim=1, keepdim=True).float()
                out['mask_out'] = (out['vis_out'] < 2).float()
                out['flow_out'] = FLOW_SCALE * flow * out['mask_out']
            else:
                out['flow_out'], out['vis_out'] = inp['flow_2to1'], inp['vis_2']
                out['mask_out'] = out['mask_tar']
            # One-hot visibility maps, zero-initialised (the original scattered into uninitialised memory).
            out['vismap_out'] = F.one_hot(out['vis_out'].squeeze(1).long(), 3).permute(0, 3, 1, 2).float()
            out['vismap_tar'] = F.one_hot(out['vis_tar'].squeeze(1).long(), 3).permute(0, 3, 1, 2).float()
            # 2. Source warped by the flow: background −1, out-of-image taps 0.
            out['img_warp'] = warp_acc_flow(inp['img_1'], out['flow_out'], mask=out['mask_out'], mask_value=-1)
        out['seg_1'], out['seg_2'], out['img_tar'] = inp['seg_1'], inp['seg_2'], inp['img_2']

        # 3. Generator.
        if not self.use_dual_generator:
            out['img_out'] = torch.tanh(self.netG(self.gather(self.appearance_items + self.pose_items)))
            return
        pose, appearance = self.gather(self.pose_items), self.gather(self.appearance_items)
        flow_in, vis_in = (out['flow_out'], out['vis_out']) if self.warp_features else (None, None)
        if self.netPW is None:
            out['img_out'] = torch.tanh(self.netG(pose, appearance, flow_in, vis_in))
            return
        # 4. Pixel warping: blend the warped source and the generator's image with a predicted soft mask.
        with torch.no_grad():
            out['img_out_G'] = torch.tanh(self.netG(pose, appearance, flow_in, vis_in))
        # netPW sees vis as 0/1/2 floats and flow in pixels, unnormalised, as in the original.
        out['pix_mask'] = torch.sigmoid(self.netPW(self.gather(self.pix_warp_items))[0])
        img_out_G = out['img_out_G'].detach() if self.detach_generator_for_pix_warp else out['img_out_G']
        out['img_out'] = out['img_warp'] * out['pix_mask'] + img_out_G * (1 - out['pix_mask'])

    # ---------------------------------------------------------------------------------------------- losses
    def compute_measures(self, compute_ssim: bool) -> None:
        out = self.output
        self.meas = {'PSNR': self.crit_psnr(out['img_out'], out['img_tar'])}
        if compute_ssim:
            self.meas['SSIM'] = self.crit_ssim(out['img_out'], out['img_tar'])
        if self.masked_ssim:
            h, w = out['img_out'].shape[2:]
            mask = get_pose_mask_batch(self.input['joint_c_2'].cpu(), (h, w),
                                       transposed=self.pose_mask_transposed).to(self.device)
            self.meas['mask_SSIM'] = self.crit_ssim(out['img_out'], out['img_tar'], mask=mask)

    def compute_generator_loss(self) -> dict[str, torch.Tensor]:
        """Weighted generator terms (keys ``l1``, ``content``, ``style``, ``G``); fills ``self.loss``."""
        out, opt = self.output, self.opt
        self.loss = {'loss_l1': F.l1_loss(out['img_out'], out['img_tar'])}
        weighted = {'l1': opt.loss_weight_l1 * self.loss['loss_l1']}
        if self.crit_vgg is not None and opt.loss_weight_content > 0:
            self.loss['loss_content'] = self.crit_vgg(out['img_out'], out['img_tar'], loss_type='content')
            weighted['content'] = opt.loss_weight_content * self.loss['loss_content']
        if self.crit_vgg is not None and opt.loss_weight_style > 0:
            # The original multiplied by a non-existent option here and crashed.
            self.loss['loss_style'] = self.crit_vgg(out['img_out'], out['img_tar'], loss_type='style')
            weighted['style'] = opt.loss_weight_style * self.loss['loss_style']
        if self.gan_active:
            self.loss['loss_G'] = self.crit_gan(self.netD(self.gather(self.d_fake_items)), True)
            weighted['G'] = opt.loss_weight_gan * self.loss['loss_G']
        return weighted

    def discriminator_loss(self) -> torch.Tensor:
        real = self.gather(self.d_real_items).detach()
        fake = self.gather(self.d_fake_items).detach()
        return 0.5 * (self.crit_gan(self.netD(real), True) + self.crit_gan(self.netD(fake), False))

    # ------------------------------------------------------------------------------------------- training
    def on_epoch_start(self, epoch: int) -> None:
        self.gan_active = self.has_gan and epoch >= self.opt.epoch_add_gan

    def optimize_parameters(self, check_grad: bool = False) -> None:
        self.forward()
        if self.gan_active:
            optim_D = self.optimizers['optim_D']
            optim_D.zero_grad(set_to_none=True)
            loss_D = self.discriminator_loss()
            # The D gradients are scaled by the GAN weight, as in the original.
            weighted_D = loss_D * self.opt.loss_weight_gan
            weighted_D.backward()
            self.step_if_finite('optim_D', {'D': weighted_D})
        optim = self.optimizers['optim']
        optim.zero_grad(set_to_none=True)
        weighted = self.compute_generator_loss()  # the GAN term sees the updated D
        self.meas = {}
        if check_grad:
            self.meas.update(self.backward_with_grad_check(
                weighted, self.netPW if self.netPW is not None else self.netG))
        else:
            sum(weighted.values()).backward()
        self.step_if_finite('optim', weighted)
        if self.gan_active:
            self.loss['loss_D'] = loss_D.detach()

    def test(self, compute_loss: bool = False, meas_only: bool = False) -> None:
        """Forward without gradients; ``compute_loss`` adds PSNR/SSIM (and masked SSIM with ``--masked``), and,
        during training unless ``meas_only``, the generator/discriminator losses for validation logs."""
        self.loss, self.meas = {}, {}
        with torch.no_grad():
            self.forward()
            if not compute_loss:
                return
            self.compute_measures(compute_ssim=True)
            if self.is_train and not meas_only:
                self.compute_generator_loss()
                if self.gan_active:
                    self.loss['loss_D'] = self.discriminator_loss()

    def get_current_errors(self) -> dict[str, float]:
        errors = dict(self.meas)
        errors.update({k: float(v.detach()) for k, v in self.loss.items()})
        return errors

    def networks_to_save(self) -> dict:
        nets = {'netG': self.netG}
        if self.gan_active:
            nets['netD'] = self.netD
        if self.netPW is not None:
            nets['netPW'] = self.netPW
        return nets

    def get_current_visuals(self) -> dict[str, tuple[torch.Tensor, str]]:
        """Panels of the pose model's visual grid, in the original's order."""
        inp, out = self.input, self.output
        visuals = {
            'img_1': (inp['img_1'], 'rgb'), 'joint_1': (inp['joint_1'], 'pose'), 'seg_1': (inp['seg_1'], 'seg'),
            'joint_2': (inp['joint_2'], 'pose'), 'seg_2': (inp['seg_2'], 'seg'),
            'flow_out': (out['flow_out'], 'flow'), 'flow_tar': (out['flow_tar'], 'flow'),
            'vis_out': (out['vis_out'], 'vis'), 'vis_tar': (out['vis_tar'], 'vis'),
            'img_warp': (out['img_warp'], 'rgb'),
        }
        if self.netPW is not None:
            visuals['img_out_G'] = (out['img_out_G'], 'rgb')
            visuals['pix_mask'] = (out['pix_mask'], 'softmask')
        visuals['img_out'] = (out['img_out'], 'rgb')
        visuals['img_tar'] = (out['img_tar'], 'rgb')
        return visuals
