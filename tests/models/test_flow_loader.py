"""The pose model's frozen flow network comes from a small loader that reads the flow experiment's saved options
(no options layer involved)."""
import json

import pytest
import torch

from models.factory import FLOW_NETWORK_DEFAULTS
from models.flow_regression_model import load_frozen_flow_network
from models.networks import FlowUnet, FlowUnet_v2
from tests.models.helpers import write_flow_experiment


def test_loads_architecture_and_weights_frozen(tmp_path):
    reference = write_flow_experiment(tmp_path / 'FlowReg_x', label='7')
    net = load_frozen_flow_network(tmp_path / 'FlowReg_x', '7', 'cpu')
    assert isinstance(net, FlowUnet_v2) and not net.training
    assert all(not p.requires_grad for p in net.parameters())
    for (k, a), b in zip(net.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), k
    x = torch.randn(1, 36, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x)[0], reference.eval()(x)[0])


def test_missing_architecture_key_takes_the_default_with_a_warning(tmp_path):
    folder = tmp_path / 'FlowReg_old'
    write_flow_experiment(folder, which_model='unet', nf=8, num_scale=5, max_nf=512)
    saved = json.loads((folder / 'train_opt.json').read_text())
    del saved['max_nf']
    (folder / 'train_opt.json').write_text(json.dumps(saved))
    with pytest.warns(UserWarning, match="no 'max_nf'.*128"):
        net = load_frozen_flow_network(folder, 'best', 'cpu')
    assert isinstance(net, FlowUnet)  # FlowUnet ignores max_nf, so the default is harmless here
    assert FLOW_NETWORK_DEFAULTS['max_nf'] == 128


def test_errors_name_the_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='train_opt.json'):
        load_frozen_flow_network(tmp_path / 'FlowReg_none', 'best', 'cpu')
    write_flow_experiment(tmp_path / 'FlowReg_y')
    with pytest.raises(FileNotFoundError, match='latest_net_netF.pth.*--pretrained_flow_epoch'):
        load_frozen_flow_network(tmp_path / 'FlowReg_y', 'latest', 'cpu')
