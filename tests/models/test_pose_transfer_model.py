"""PoseTransferModel.forward and its training step on a tiny configuration: flow masking by visibility, the
pixel-warping blend, and the GAN schedule by epoch."""
import copy

import pytest
import torch
from torch import nn

from models.pose_transfer_model import PoseTransferModel
from tests.models.helpers import random_batch, tiny_pose_options, write_flow_experiment
from util.flow_util import FLOW_SCALE, warp_acc_flow


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """A checkpoints folder holding the random-weight flow experiment ``FlowReg_tiny`` (flows of a few pixels)."""
    ckpt = tmp_path_factory.mktemp('ckpt')
    write_flow_experiment(ckpt / 'FlowReg_tiny', weight_std=0.1)
    return ckpt


def build(checkpoints, *args, seed=0) -> PoseTransferModel:
    torch.manual_seed(seed)
    model = PoseTransferModel(tiny_pose_options(checkpoints, *args))
    model.set_input(random_batch())
    return model


class StubFlowNetwork(nn.Module):
    """Stands in for the frozen flow network: fixed flow ``[N, 2, H, W]`` (network units, before the ×20) and
    visibility logits ``[N, 3, H, W]``; records its input."""

    def __init__(self, flow, vis_logits):
        super().__init__()
        self.flow, self.vis_logits, self.seen = flow, vis_logits, None

    def forward(self, x):
        self.seen = x
        return self.flow, self.vis_logits, [self.flow], None


def test_flow_is_scaled_and_masked_by_the_predicted_visibility(checkpoints):
    model = build(checkpoints)
    g = torch.Generator().manual_seed(1)
    flow = torch.randn(2, 2, 32, 32, generator=g) * 0.2
    logits = torch.randn(2, 3, 32, 32, generator=g)
    model.netF = StubFlowNetwork(flow, logits)
    model.forward()
    out, inp = model.output, model.input

    assert FLOW_SCALE == 20
    assert torch.equal(model.netF.seen, torch.cat([inp['joint_1'], inp['joint_2']], dim=1))  # F_input_type
    vis = logits.argmax(dim=1, keepdim=True)
    assert set(vis.unique().tolist()) == {0, 1, 2}  # all three labels occur, so the mask is really exercised
    assert torch.equal(out['vis_out'], vis.float())
    invisible = (vis == 2).expand(-1, 2, -1, -1)
    # flow_out == 20 · flow · mask, with mask 0 where vis == 2: zero there, 20 · flow elsewhere.
    assert torch.equal(out['flow_out'][invisible], torch.zeros(int(invisible.sum())))
    assert torch.allclose(out['flow_out'][~invisible], 20 * flow[~invisible], rtol=1e-6, atol=0)
    assert torch.equal(out['mask_out'], (vis < 2).float())
    assert torch.equal(out['vismap_out'].argmax(dim=1, keepdim=True), vis) and torch.all(out['vismap_out'].sum(1) == 1)
    # The source warped by the masked flow; the background (vis == 2) is -1 in every channel.
    assert torch.equal(out['img_warp'], warp_acc_flow(inp['img_1'], out['flow_out'], mask=out['mask_out'],
                                                      mask_value=-1))
    assert torch.all(out['img_warp'][(vis == 2).expand(-1, 3, -1, -1)] == -1)
    # Ground truth passes through unmasked.
    assert torch.equal(out['flow_tar'], inp['flow_2to1']) and torch.equal(out['vis_tar'], inp['vis_2'])
    assert torch.equal(out['mask_tar'], (inp['vis_2'] < 2).float())


def test_real_flow_network_output_is_masked_the_same_way(checkpoints):
    model = build(checkpoints)
    model.forward()
    with torch.no_grad():
        flow, logits, _, _ = model.netF(torch.cat([model.input['joint_1'], model.input['joint_2']], dim=1))
    mask = (logits.argmax(dim=1, keepdim=True) < 2).float()
    assert torch.equal(model.output['flow_out'], FLOW_SCALE * flow * mask)
    assert 0.5 < float(model.output['flow_out'].abs().mean()) < 20  # a few pixels: a meaningful warp


def test_without_the_flow_network_the_ground_truth_flow_is_used(checkpoints):
    model = build(checkpoints, '--flow_on_the_fly', '0')
    assert model.netF is None
    model.forward()
    out, inp = model.output, model.input
    assert torch.equal(out['flow_out'], inp['flow_2to1']) and torch.equal(out['vis_out'], inp['vis_2'])
    assert torch.equal(out['mask_out'], (inp['vis_2'] < 2).float())


def test_pixel_warping_blends_the_warped_source_and_the_generator_output(checkpoints):
    # Pixel warping trains netPW on a frozen, pretrained generator (--pretrained_G_id is required): save one.
    generator = checkpoints / 'PoseTransfer_frozenG'
    generator.mkdir(exist_ok=True)
    torch.save(build(checkpoints, seed=1).netG.state_dict(), generator / 'best_net_netG.pth')
    model = build(checkpoints, '--G_pix_warp', '1', '--pretrained_G_id', 'frozenG')
    model.forward()
    out, inp = model.output, model.input
    m = out['pix_mask']
    # img_out = img_warp · m + img_out_G · (1 − m), exactly.
    assert torch.equal(out['img_out'], out['img_warp'] * m + out['img_out_G'] * (1 - m))
    # A real blend: the mask varies, so the result is neither input.
    assert m.shape == (2, 1, 32, 32) and float(m.detach().min()) < 0.4 and float(m.detach().max()) > 0.6
    assert not torch.allclose(out['img_out'], out['img_out_G']) and not torch.allclose(out['img_out'], out['img_warp'])
    # Each ingredient recomputed from the networks: netG (dual U-Net, feature warping with the flow and visibility)
    # and netPW on img_out_G + img_warp + vis_out + flow_out.
    with torch.no_grad():
        img_out_G = torch.tanh(model.netG(inp['joint_2'], inp['img_1'], out['flow_out'], out['vis_out']))
        mask = torch.sigmoid(model.netPW(torch.cat([img_out_G, out['img_warp'], out['vis_out'], out['flow_out']],
                                                   dim=1))[0])
    assert torch.allclose(out['img_out_G'], img_out_G, atol=1e-6)
    assert torch.allclose(m, mask, atol=1e-6)
    # Only netPW receives gradients through the blend (the generator ran without them).
    assert m.requires_grad and not out['img_out_G'].requires_grad


def snapshot(net: nn.Module) -> dict:
    return copy.deepcopy(net.state_dict())


def changed(before: dict, net: nn.Module) -> bool:
    return any(not torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_gan_terms_start_at_epoch_add_gan(checkpoints):
    model = build(checkpoints, '--epoch_add_gan', '2')
    calls = []
    model.netD.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[1]))
    assert 'netD' in model.nets and set(model.optimizers) == {'optim', 'optim_D'}

    model.on_epoch_start(1)
    d_before, g_before = snapshot(model.netD), snapshot(model.netG)
    model.optimize_parameters()
    assert calls == []  # the discriminator does not run before the GAN epoch
    assert not changed(d_before, model.netD) and changed(g_before, model.netG)
    errors = model.get_current_errors()
    assert 'loss_l1' in errors and 'loss_G' not in errors and 'loss_D' not in errors
    assert 'netD' not in model.networks_to_save()  # so no <label>_net_netD.pth is written yet
    model.test(compute_loss=True)
    assert 'loss_G' not in model.get_current_errors() and calls == []

    for epoch in (2, 3):
        model.on_epoch_start(epoch)
        calls.clear()
        d_before = snapshot(model.netD)
        model.optimize_parameters()
        # D on real and fake pairs (img_1 + img_2/img_out + joint_2: 24 channels), then the G term on the fake pair.
        assert calls == [24, 24, 24]
        assert changed(d_before, model.netD)
        errors = model.get_current_errors()
        assert torch.isfinite(torch.tensor([errors['loss_G'], errors['loss_D']])).all()
        assert 'netD' in model.networks_to_save()
    assert len(model.optimizers['optim_D'].state) == len(list(model.netD.parameters()))


def test_no_discriminator_when_the_gan_weight_is_zero(checkpoints):
    model = build(checkpoints, '--loss_weight_gan', '0', '--epoch_add_gan', '1')
    assert model.netD is None and 'netD' not in model.nets and set(model.optimizers) == {'optim'}
    model.on_epoch_start(5)
    model.optimize_parameters()
    assert 'loss_G' not in model.get_current_errors() and 'netD' not in model.networks_to_save()
