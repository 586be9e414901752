import numpy as np
import pytest
import torch
from PIL import Image

from util.flow_util import flow_to_rgb
from util.pose_util import JOINT_COLORS, kp_to_map
from util.visualizer import (PANEL_KINDS, SEG_COLORS, TITLE_BAND_HEIGHT, make_visual_grid, render_panel,
                             save_visual_grid)

H, W = 16, 8


def _unit(rgb):
    """RGB 0..255 -> [-1, 1] tensor of shape [3]."""
    return torch.tensor(rgb, dtype=torch.float32) / 127.5 - 1


def test_render_rgb_clamps_and_expands_gray():
    x = torch.tensor([-2.0, -0.5, 0.25, 3.0]).view(1, 1, 2, 2).expand(2, 3, 2, 2)
    out = render_panel(x, 'rgb')
    assert out.shape == (2, 3, 2, 2)
    assert out[0, 0].flatten().tolist() == [-1.0, -0.5, 0.25, 1.0]
    assert render_panel(x[:, :1], 'rgb').shape == (2, 3, 2, 2)
    with pytest.raises(ValueError, match='1 or 3 channels'):
        render_panel(torch.zeros(1, 2, 4, 4), 'rgb')


def test_render_seg_labels_and_one_hot():
    labels = torch.tensor([[0, 1], [6, 19]]).view(1, 1, 2, 2).float()
    out = render_panel(labels, 'seg')
    assert torch.allclose(out[0, :, 0, 1], _unit((255, 0, 0)))
    assert torch.allclose(out[0, :, 0, 0], _unit((73, 0, 255)))
    assert torch.allclose(out[0, :, 1, 0], _unit(SEG_COLORS[6]))
    assert torch.allclose(out[0, :, 1, 1], _unit((0, 0, 127)))
    one_hot = torch.nn.functional.one_hot(torch.tensor([[[2, 3], [0, 0]]]), 7).permute(0, 3, 1, 2).float()
    out = render_panel(one_hot, 'seg')
    assert torch.allclose(out[0, :, 0, 0], _unit((255, 0, 219)))
    assert torch.allclose(out[0, :, 0, 1], _unit((255, 219, 0)))
    with pytest.raises(ValueError, match=r'\[20\]'):
        render_panel(torch.full((1, 1, 2, 2), 20.0), 'seg')


def test_render_vis_labels_and_logits():
    labels = torch.tensor([0.0, 1.0, 2.0]).view(1, 1, 1, 3)
    out = render_panel(labels, 'vis')
    assert torch.equal(out[0, :, 0, 0], torch.tensor([-1.0, 1.0, -1.0]))  # visible: green
    assert torch.equal(out[0, :, 0, 1], torch.tensor([1.0, -1.0, -1.0]))  # invisible: red
    assert torch.equal(out[0, :, 0, 2], torch.tensor([-1.0, -1.0, 1.0]))  # background: blue
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]).T.reshape(1, 3, 1, 3)
    assert torch.equal(render_panel(logits, 'vis'), out)
    with pytest.raises(ValueError, match=r'\[3\]'):
        render_panel(torch.full((1, 1, 1, 1), 3.0), 'vis')


def test_render_softmask_flow_pose():
    m = torch.tensor([0.0, 0.25, 1.0]).view(1, 1, 1, 3)
    out = render_panel(m, 'softmask')
    assert out.shape == (1, 3, 1, 3) and torch.equal(out[0, 1, 0], torch.tensor([-1.0, -0.5, 1.0]))

    flow = torch.randn(2, 2, H, W, generator=torch.Generator().manual_seed(0))
    out = render_panel(flow, 'flow')
    ref = torch.from_numpy(flow_to_rgb(flow[1].permute(1, 2, 0).numpy())).permute(2, 0, 1).float() / 127.5 - 1
    assert out.shape == (2, 3, H, W) and torch.allclose(out[1], ref)

    kps = np.full((18, 2), -1.0)
    kps[0] = (3, 5)
    pose = torch.from_numpy(kp_to_map((W, H), kps, mode='gaussian', radius=2)).permute(2, 0, 1)[None]
    out = render_panel(pose, 'pose')
    assert out.shape == (1, 3, H, W)
    assert torch.allclose(out[0, :, 5, 3], _unit(JOINT_COLORS[0]))
    assert torch.equal(out[0, :, 12, 3], torch.full((3,), -1.0))


def test_render_panel_rejects_unknown_kind_and_bad_shapes():
    with pytest.raises(ValueError, match="'rgb', 'seg', 'pose', 'flow', 'vis', 'softmask'"):
        render_panel(torch.zeros(1, 3, 2, 2), 'depth')
    with pytest.raises(ValueError, match=r'\[N, C, H, W\]'):
        render_panel(torch.zeros(3, 2, 2), 'rgb')
    with pytest.raises(ValueError, match='2 channels'):
        render_panel(torch.zeros(1, 3, 2, 2), 'flow')


def test_render_panel_ranges_for_every_kind():
    gen = torch.Generator().manual_seed(1)
    inputs = {
        'rgb': torch.rand(2, 3, H, W, generator=gen) * 4 - 2,
        'seg': torch.randn(2, 7, H, W, generator=gen),
        'pose': torch.rand(2, 18, H, W, generator=gen),
        'flow': torch.randn(2, 2, H, W, generator=gen) * 10,
        'vis': torch.randn(2, 3, H, W, generator=gen),
        'softmask': torch.rand(2, 1, H, W, generator=gen),
    }
    assert set(inputs) == set(PANEL_KINDS)
    for kind, x in inputs.items():
        x.requires_grad_(kind == 'rgb')
        out = render_panel(x, kind)
        assert out.shape == (2, 3, H, W) and out.dtype == torch.float32 and not out.requires_grad, kind
        assert out.min() >= -1 and out.max() <= 1, kind


def test_save_visual_grid(tmp_path):
    n = 2
    rows = {
        'img_1': (torch.full((n, 3, H, W), -1.0), 'rgb'),     # black after normalisation
        'mask': (torch.ones(n, 1, H, W), 'softmask'),         # white
        'vis_out': (torch.full((n, 1, H, W), 1.0), 'vis'),    # red
    }
    path = save_visual_grid(tmp_path / 'vis' / 'latest.png', rows, titles=False)  # the original's layout
    assert path == tmp_path / 'vis' / 'latest.png'
    img = np.asarray(Image.open(path))
    assert img.shape == (n * (H + 2) + 2, 3 * (W + 2) + 2, 3)
    # Column p, row i starts at (2 + i*(H+2), 2 + p*(W+2)); padding is black.
    assert img[2 + H + 2, 2 + W + 2].tolist() == [255, 255, 255]        # sample 1, panel 'mask'
    assert img[2, 2 + 2 * (W + 2)].tolist() == [255, 0, 0]               # sample 0, panel 'vis_out'
    assert img[2, 2].tolist() == [0, 0, 0]
    assert img[0].max() == 0 and img[:, 2 + W].max() == 0                # padding rows/columns
    assert (tmp_path / 'vis' / 'vis_item_list.txt').read_text() == 'img_1\nmask\nvis_out\n'
    assert sorted(p.name for p in (tmp_path / 'vis').iterdir()) == ['latest.png', 'vis_item_list.txt']

    # JPEG: the format is inferred from the extension (the temporary file keeps it).
    jpg = save_visual_grid(tmp_path / 'vis' / 'epoch_1.jpg', rows, titles=False)
    with Image.open(jpg) as im:
        assert im.format == 'JPEG' and im.size == (3 * (W + 2) + 2, n * (H + 2) + 2)


@pytest.mark.parametrize('suffix', ['png', 'jpg'])
def test_saved_grids_carry_column_titles_above_the_original_grid(tmp_path, suffix):
    n, h, w = 2, 32, 48
    rows = {
        'img_1': (torch.linspace(-1, 1, n * 3 * h * w).view(n, 3, h, w), 'rgb'),
        'mask': (torch.ones(n, 1, h, w), 'softmask'),
        'vis_out': (torch.full((n, 1, h, w), 2.0), 'vis'),
    }
    plain = np.asarray(Image.open(save_visual_grid(tmp_path / f'plain.{suffix}', rows, titles=False)))
    titled = np.asarray(Image.open(save_visual_grid(tmp_path / f'titled.{suffix}', rows)))
    band = titled.shape[0] - plain.shape[0]
    assert band == TITLE_BAND_HEIGHT and titled.shape[1:] == plain.shape[1:]
    # Below the band the image is the untitled grid: exactly for PNG; for JPEG every panel pixel too, because the
    # band is a whole number of JPEG blocks (16 px) and so does not change how the grid part is compressed (only
    # the black top padding row differs: the decoder's chroma upsampling blends it with the band above).
    first = 0 if suffix == 'png' else 1
    assert np.array_equal(titled[band + first:], plain[first:])
    # Each column's title is drawn (light pixels) inside its own column of the band, and nowhere else.
    header = titled[:band].max(axis=2)
    for p in range(3):
        left = 2 + p * (w + 2)
        assert header[:, left:left + w].max() > 128, p
    gaps = [2 + p * (w + 2) + w for p in range(3)]
    assert all(header[:, x:x + 2].max() < 64 for x in gaps)
    # Different names, different pixels.
    other = np.asarray(Image.open(save_visual_grid(tmp_path / f'other.{suffix}',
                                                   {f'x{k}': v for k, v in rows.items()})))
    assert not np.array_equal(other[:band], titled[:band]) and np.array_equal(other[band + 1:], titled[band + 1:])


def test_long_titles_are_shrunk_or_cut_to_their_column(tmp_path):
    rows = {'a_very_long_panel_name_indeed': (torch.zeros(1, 3, 16, 8), 'rgb'), 'b': (torch.zeros(1, 3, 16, 8), 'rgb')}
    img = np.asarray(Image.open(save_visual_grid(tmp_path / 'g.png', rows)))
    header = img[:TITLE_BAND_HEIGHT].max(axis=2)
    assert header[:, 2 + 8:2 + 8 + 2].max() < 64  # nothing spills into the gap between the two columns


def test_make_visual_grid_normalises_over_whole_grid():
    rows = {'a': (torch.full((1, 3, 2, 2), -0.5), 'rgb'), 'b': (torch.full((1, 3, 2, 2), 0.5), 'rgb')}
    grid = make_visual_grid(rows)
    assert grid.shape == (3, 6, 10)
    assert grid[:, 2:4, 2:4].max() == 0 and grid[:, 2:4, 6:8].min() == 1


def test_save_visual_grid_rejects_mismatched_panels(tmp_path):
    rows = {'img_1': (torch.zeros(2, 3, H, W), 'rgb'), 'seg_1': (torch.zeros(2, 7, H, W + 1), 'seg')}
    with pytest.raises(ValueError, match="'seg_1'"):
        save_visual_grid(tmp_path / 'g.jpg', rows)
    with pytest.raises(ValueError, match="'img_1'"):
        save_visual_grid(tmp_path / 'g.jpg', {'img_1': (torch.zeros(2, 3, H, W), 'bogus')})
    assert not any(tmp_path.iterdir())
