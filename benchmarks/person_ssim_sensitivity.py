"""How precise must an output be for a given person-region SSIM? Measured on the demo test split.

    python benchmarks/person_ssim_sensitivity.py [--data_root datasets/demo/]
    python benchmarks/person_ssim_sensitivity.py --flow_module FlowReg_demo [--checkpoints_dir checkpoints]

Scores inside the target's ground-truth body mask, against the target (the quick start's person SSIM, see
``metrics/person_region.py``):

* the target itself, moved right by 1-4 pixels (the image edge replicated) and blurred with a Gaussian of
  sigma 0.7-2 pixels (scipy's filter, as SSIM uses it): a perfect rendering that is misplaced or soft;
* the ground-truth-flow warp (the quick start's upper reference: the source warped with the true flow, hidden parts
  filled with the source's mean body colour), with its flow offset by 1-4 pixels along x;
* copy-source (the lower reference);
* with ``--flow_module``, the same warp with that flow module's predicted flow and visibility: what its flow alone
  allows a generator that copies appearance along it.

The quick start's target (close half of the gap from copy-source to the ground-truth-flow warp) lies between these
rows; reading it against the shifted rows says how many pixels of error it tolerates.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from data.data_loader import create_dataset, make_dataloader  # noqa: E402
from metrics.person_region import flow_warp_reference, person_mask_from_seg, person_region_ssim  # noqa: E402
from metrics.ssim import _gaussian_filter, _gaussian_taps  # noqa: E402
from models import create_model  # noqa: E402
from options.base_options import merge_train_options  # noqa: E402
from options.flow_regression_options import TestFlowRegressionOptions  # noqa: E402
from options.pose_transfer_options import TestPoseTransferOptions  # noqa: E402
from util.flow_util import warp_acc_flow  # noqa: E402

SHIFTS = (1, 2, 3, 4)
SIGMAS = (0.7, 1.0, 1.5, 2.0)


def shift_right(x: torch.Tensor, pixels: int) -> torch.Tensor:
    """``[N, C, H, W]`` moved right by ``pixels`` columns, the left edge column replicated."""
    return F.pad(x, (pixels, 0, 0, 0), mode='replicate')[..., :x.size(-1)]


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``[N, C, H, W]``: SSIM's own separable filter (scipy's ``gaussian_filter``, radius 4 sigma,
    reflected borders)."""
    return _gaussian_filter(x, _gaussian_taps(sigma, int(4 * sigma + 0.5), x.dtype))


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data_root', default='datasets/demo/')
    p.add_argument('--flow_module', default=None, help='a trained flow module id, e.g. FlowReg_demo')
    p.add_argument('--checkpoints_dir', default='checkpoints')
    p.add_argument('--batch_size', type=int, default=8, help='8: the batches of the test script')
    args = p.parse_args(argv)
    opt = TestPoseTransferOptions().parse(['--dataset_name', 'demo', '--data_root', args.data_root, '--gpu_ids', '-1',
                                           '--num_workers', '0'], display=False)
    flow_model = None
    if args.flow_module:
        flow_opt = merge_train_options(TestFlowRegressionOptions().parse(
            ['--id', args.flow_module, '--which_epoch', 'best', '--gpu_ids', '-1', '--checkpoints_dir',
             args.checkpoints_dir, '--num_workers', '0', '--data_root', args.data_root], display=False))
        flow_model = create_model(flow_opt)
        flow_model.eval_mode()
    batch_means: dict[str, list[float]] = {}
    n = 0
    with torch.no_grad():
        for batch in make_dataloader(create_dataset(opt, 'test'), args.batch_size):
            img_1, img_2, flow, vis = batch['img_1'], batch['img_2'], batch['flow_2to1'], batch['vis_2']
            seg_1, seg_2 = batch['seg_label_1'], batch['seg_label_2']
            body = person_mask_from_seg(seg_2)

            def warp(f: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
                return flow_warp_reference(img_1, f, v, seg_1, seg_2, warp=warp_acc_flow)

            images = {'copy-source': img_1, 'ground-truth-flow warp': warp(flow, vis)}
            for d in SHIFTS:
                offset = torch.tensor([float(d), 0.0]).view(1, 2, 1, 1)
                images[f'ground-truth-flow warp, flow +{d} px in x'] = warp(flow + offset, vis)
            for d in SHIFTS:
                images[f'target moved {d} px'] = shift_right(img_2, d)
            for s in SIGMAS:
                images[f'target blurred, sigma {s} px'] = gaussian_blur(img_2, s)
            if flow_model is not None:
                flow_model.set_input(batch)
                flow_model.forward()
                out = flow_model.output
                images[f'{args.flow_module} predicted-flow warp'] = warp(
                    out['flow_out'], out['vis_out'].argmax(1, keepdim=True).float())
            for name, image in images.items():
                batch_means.setdefault(name, []).append(float(person_region_ssim(image, img_2, body).mean()))
            n += img_1.size(0)
    # the mean of the batch means, as the test script averages its metrics (so the references match its numbers)
    result = {name: sum(v) / len(v) for name, v in batch_means.items()}
    copy, warp_ref = result['copy-source'], result['ground-truth-flow warp']
    print(f'person SSIM on {n} demo test pairs ({args.data_root}); target of the quick start: '
          f'{copy + 0.5 * (warp_ref - copy):.4f} (half of the gap {copy:.4f} -> {warp_ref:.4f})')
    width = max(len(k) for k in result)
    for name, value in result.items():
        print(f'  {name:<{width}}  {value:.4f}')
    return result


if __name__ == '__main__':
    main()
