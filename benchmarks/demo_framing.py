"""How the demo dataset frames its people: the numbers behind the ``demo`` preset of ``util.framing``.

    python benchmarks/demo_framing.py [--silhouette_every 3]

Samples the scenes of the default demo configuration in memory (nothing is written) and reports, over
the images whose pose label has both ankles and the neck, the keypoint box (valid joints of the label)
and, on every ``silhouette_every``-th identity's renders, the person silhouette box (segmentation > 0,
images where it touches the top or bottom edge left out): heights as fractions of the image height,
vertical centres as fractions of the height, horizontal offsets as fractions of the width.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from data.synthetic.generate import DemoConfig, _joint_labels, make_scene  # noqa: E402
from data.synthetic.render import render  # noqa: E402


def _summary(name: str, values: list[float]) -> str:
    v = np.asarray(values)
    return (f'{name:34s} median {np.median(v):6.3f}  mean {v.mean():6.3f}  '
            f'p10 {np.percentile(v, 10):6.3f}  p90 {np.percentile(v, 90):6.3f}  (n={v.size})')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--silhouette_every', type=int, default=3, help='render every N-th identity')
    args = parser.parse_args(argv)
    config = DemoConfig()
    height, width = config.image_size
    kp_fill, kp_cy, kp_cx, kp_ratio = [], [], [], []
    sil_fill, sil_cy = [], []
    n_images = 0
    for index in range(config.n_identities):
        scene = make_scene(config, index)
        for frame in scene.frames:
            n_images += 1
            label = np.array(_joint_labels(frame.joints, frame.side, config.image_size)[0])
            valid = (label >= 0).all(axis=1)
            if not (valid[1] and valid[10] and valid[13]):
                continue
            pts = label[valid]
            top, bottom = pts[:, 1].min(), pts[:, 1].max()
            kp_fill.append((bottom - top) / height)
            kp_cy.append((top + bottom + 1) / 2 / height)
            kp_cx.append(((pts[:, 0].min() + pts[:, 0].max() + 1) / 2 - width / 2) / width)
            if index % args.silhouette_every == 0:
                rows = np.flatnonzero((render(scene.ident, frame, config.image_size)['seg'] > 0).any(axis=1))
                if rows[0] > 0 and rows[-1] < height - 1:
                    sil_fill.append((rows[-1] + 1 - rows[0]) / height)
                    sil_cy.append((rows[0] + rows[-1] + 1) / 2 / height)
                    kp_ratio.append(kp_fill[-1] / sil_fill[-1])
    print(f'demo configuration {config.image_size[0]}x{config.image_size[1]}, {n_images} images')
    print(_summary('keypoint box height / H', kp_fill))
    print(_summary('keypoint box centre y / H', kp_cy))
    print(_summary('keypoint box centre x offset / W', kp_cx))
    print(_summary('silhouette height / H', sil_fill))
    print(_summary('silhouette centre y / H', sil_cy))
    print(_summary('keypoint box / silhouette height', kp_ratio))
    return 0


if __name__ == '__main__':
    sys.exit(main())
