"""Resuming from a folder written by the original code: every network and optimizer comes from its files."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from training.checkpoint import load_snapshot


class GanModel:
    """The parts of the model contract load_snapshot uses, for a generator + discriminator model whose GAN term is
    not active yet (so networks_to_save() does not list netD, as in the pose model before --epoch_add_gan)."""

    def __init__(self):
        self.nets = {'netG': nn.Linear(3, 2), 'netD': nn.Linear(2, 1)}
        self.optimizers = {name: torch.optim.Adam(net.parameters(), lr=1e-3)
                           for name, net in zip(('optim', 'optim_D'), self.nets.values())}

    def networks_to_save(self):
        return {'netG': self.nets['netG']}


def write_original_folder(folder, with_gan: bool):
    torch.manual_seed(5)
    source = GanModel()
    for name, optim in source.optimizers.items():  # one step so the optimizer state is not empty
        optim.zero_grad()
        net = source.nets['netG' if name == 'optim' else 'netD']
        net(torch.randn(4, net.in_features)).sum().backward()
        optim.step()
    torch.save(source.nets['netG'].state_dict(), folder / '3_net_netG.pth')
    torch.save(source.optimizers['optim'].state_dict(), folder / '3_optim_optim.pth')
    if with_gan:
        torch.save(source.nets['netD'].state_dict(), folder / '3_net_netD.pth')
        torch.save(source.optimizers['optim_D'].state_dict(), folder / '3_optim_optim_D.pth')
    return source


@pytest.mark.parametrize('with_gan', [True, False])
def test_weights_and_optimizer_states_come_from_the_files(tmp_path, with_gan):
    source = write_original_folder(tmp_path, with_gan)
    model = GanModel()
    state = load_snapshot(model, SimpleNamespace(expr_dir=tmp_path), '3', steps_per_epoch=10)
    assert (state.epoch, state.step, state.epoch_done) == (3, 30, True)
    assert torch.equal(model.nets['netG'].weight, source.nets['netG'].weight)
    assert torch.equal(model.optimizers['optim'].state_dict()['state'][0]['exp_avg'],
                       source.optimizers['optim'].state_dict()['state'][0]['exp_avg'])
    # netD comes from its file whenever the original wrote one, even though the GAN term is not active yet.
    assert torch.equal(model.nets['netD'].weight, source.nets['netD'].weight) == with_gan
    assert bool(model.optimizers['optim_D'].state_dict()['state']) == with_gan


def test_missing_generator_file_is_an_error(tmp_path):
    write_original_folder(tmp_path, with_gan=True)
    (tmp_path / '3_net_netG.pth').unlink()
    with pytest.raises(FileNotFoundError, match='3_net_netG.pth'):
        load_snapshot(GanModel(), SimpleNamespace(expr_dir=tmp_path), '3', steps_per_epoch=10)
