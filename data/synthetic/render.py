"""Vectorised rendering of synthetic people and their exact dense correspondence.

``render`` computes, for every pixel and every part, the part-local coordinates (inverse of the part's
affine transform), the coverage and the depth, then keeps the nearest covering part (z-buffer). It
returns the image together with the per-pixel surface map ``(part, a, b)`` (the side is per image).
``correspondence`` maps every body pixel of a target image through the source image's forward part
transform (closed form) and decides visibility analytically: the surface point is visible in the
source when it lands inside the frame, the source shows the same side, and no nearer source part
covers that location.

Two background styles (``BACKGROUND_STYLES``): ``studio`` imitates DeepFashion's in-shop photos (one light,
nearly neutral backdrop per identity with a soft gradient, vignette, floor shadow and grain that vary
mildly from photo to photo); ``cluttered`` imitates Market-1501 (every photo its own random scene).
"""
from __future__ import annotations

import numpy as np

from data.synthetic.body import NUM_PARTS, PART_SEG, Frame, Identity
from data.synthetic.texture import _hsv, shade_part, _smoothstep

BACKGROUND_STYLES = ('studio', 'cluttered')


def sample_background(rng: np.random.Generator) -> dict:
    """Parameters of one background: a gradient, low-frequency waves, a few shapes and maybe a floor."""
    plain = rng.random() < 0.35  # studio-like (DeepFashion) vs. cluttered (street-like) backgrounds
    h = rng.random()
    c0 = _hsv(h, rng.uniform(0, 0.25 if plain else 0.7), rng.uniform(0.55 if plain else 0.2, 1.0))
    c1 = np.clip(c0 + rng.uniform(-0.25, 0.25, size=3), 0, 1)
    waves = [dict(kx=rng.uniform(-3, 3), ky=rng.uniform(-3, 3), phase=rng.uniform(0, 2 * np.pi),
                  amp=rng.uniform(0.01, 0.04 if plain else 0.08)) for _ in range(3)]
    shapes = []
    for _ in range(0 if plain else int(rng.integers(1, 6))):
        shapes.append(dict(ellipse=bool(rng.random() < 0.4), cx=rng.uniform(0, 1), cy=rng.uniform(0, 1),
                           rx=rng.uniform(0.05, 0.4), ry=rng.uniform(0.03, 0.3),
                           color=_hsv(rng.random(), rng.uniform(0, 0.8), rng.uniform(0.15, 1.0)),
                           alpha=rng.uniform(0.5, 1.0)))
    floor = None
    if rng.random() < 0.5:
        floor = dict(y=rng.uniform(0.7, 0.95), color=_hsv(rng.random(), rng.uniform(0, 0.4), rng.uniform(0.2, 0.8)))
    return dict(kind='cluttered', c0=c0, c1=c1, angle=rng.uniform(0, 2 * np.pi), waves=waves, shapes=shapes,
                floor=floor)


def paint_background(bg: dict, image_size: tuple[int, int]) -> np.ndarray:
    """Background image ``float64 [H, W, 3]`` in [0, 1] from :func:`sample_background` or
    :func:`sample_studio_background` parameters."""
    if bg.get('kind') == 'studio':
        return paint_studio_background(bg, image_size)
    h, w = image_size
    y, x = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing='ij')
    t = 0.5 + (x - 0.5) * np.cos(bg['angle']) + (y - 0.5) * np.sin(bg['angle'])
    img = bg['c0'] + (bg['c1'] - bg['c0']) * np.clip(t, 0, 1)[..., None]
    if bg['floor'] is not None:
        m = _smoothstep(bg['floor']['y'] - 0.01, bg['floor']['y'] + 0.01, y)[..., None]
        img = img * (1 - m) + bg['floor']['color'] * m
    for s in bg['shapes']:
        dx, dy = np.abs(x - s['cx']) / s['rx'], np.abs(y - s['cy']) / s['ry']
        d = np.hypot(dx, dy) if s['ellipse'] else np.maximum(dx, dy)
        m = (1 - _smoothstep(0.95, 1.05, d))[..., None] * s['alpha']
        img = img * (1 - m) + s['color'] * m
    for wv in bg['waves']:
        img = img + wv['amp'] * np.sin(2 * np.pi * (wv['kx'] * x + wv['ky'] * y) + wv['phase'])[..., None]
    return np.clip(img, 0, 1)


def sample_studio_backdrop(rng: np.random.Generator) -> dict:
    """One identity's studio set-up: a light, nearly neutral backdrop and its lighting.

    Shared by all photos of the identity (as an in-shop item is shot in one session); identities differ
    in the backdrop's tint and brightness and in how strong the gradient, vignette, shadow and grain are.
    """
    neutral = rng.random() < 0.6  # mostly white/grey, some faintly tinted (beige, blue-grey, ...)
    return dict(color=_hsv(rng.random(), rng.uniform(0, 0.03 if neutral else 0.08), rng.uniform(0.82, 0.97)),
                gradient=rng.uniform(-0.08, 0.03),  # relative brightness change from top to bottom
                vignette=rng.uniform(0.0, 0.08), shadow=rng.uniform(0.05, 0.15), grain=rng.uniform(0.003, 0.008))


def sample_studio_background(rng: np.random.Generator, backdrop: dict, joints: np.ndarray,
                             image_size: tuple[int, int]) -> dict:
    """Parameters of one studio photo: the identity's ``backdrop`` with mild per-photo variation.

    joints: ``[18, 2]`` image coordinates of the person (the floor shadow lies under the ankles).
    """
    h, w = image_size
    color = backdrop['color'] + rng.uniform(-0.02, 0.02) + rng.uniform(-0.006, 0.006, size=3)
    ankles = joints[[10, 13]]
    return dict(kind='studio', backdrop=backdrop, color=np.clip(color, 0, 1),
                gradient=backdrop['gradient'] * rng.uniform(0.8, 1.2), vignette=backdrop['vignette'],
                vignette_center=np.array([0.5, 0.45]) + rng.uniform(-0.05, 0.05, size=2),
                shadow=backdrop['shadow'] * rng.uniform(0.8, 1.2),
                shadow_center=np.array([ankles[:, 0].mean(), ankles[:, 1].max() + 0.03 * h]),
                shadow_radii=np.array([0.5 * abs(ankles[0, 0] - ankles[1, 0]) + 0.15 * w, 0.025 * h + 1.0]),
                grain=backdrop['grain'], noise_seed=int(rng.integers(2 ** 31)))


def paint_studio_background(bg: dict, image_size: tuple[int, int]) -> np.ndarray:
    """Studio backdrop ``float64 [H, W, 3]`` in [0, 1] from :func:`sample_studio_background` parameters."""
    h, w = image_size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    y, x = (ys + 0.5) / h, (xs + 0.5) / w
    light = 1 + bg['gradient'] * (y - 0.5)
    cx, cy = bg['vignette_center']
    light = light * (1 - bg['vignette'] * ((x - cx) ** 2 + (y - cy) ** 2) / 0.5)
    (sx, sy), (rx, ry) = bg['shadow_center'], bg['shadow_radii']
    light = light * (1 - bg['shadow'] * np.exp(-((xs - sx) / rx) ** 2 - ((ys - sy) / ry) ** 2))
    # Luminance grain with its own seed, so that re-rendering the photo reproduces it exactly.
    grain = np.random.default_rng(bg['noise_seed']).normal(0.0, bg['grain'], size=(h, w, 1))
    return np.clip(bg['color'] * light[..., None] + grain, 0, 1)


def local_coords(frame: Frame, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Part-local coordinates of image points.

    Args:
        pts: ``[N, 2]`` image coordinates (x, y).

    Returns:
        ``a``, ``b``: ``[P, N]`` coordinates of every point in every part's frame.
    """
    m = frame.axes  # [P, 2, 2]; explicit 2x2 inverse (no LAPACK call per image)
    det = m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] * m[:, 1, 0]
    adj = np.stack([np.stack([m[:, 1, 1], -m[:, 0, 1]], 1), np.stack([-m[:, 1, 0], m[:, 0, 0]], 1)], 1)
    inv = adj / det[:, None, None]
    diff = pts[None, :, :] - frame.centers[:, None, :]  # [P, N, 2]
    ab = np.einsum('pij,pnj->pni', inv, diff)
    return ab[..., 0], ab[..., 1]


def coverage(ident: Identity, a: np.ndarray, b: np.ndarray, parts: np.ndarray | None = None) -> np.ndarray:
    """Whether local coordinates fall inside each part's shape: tapered super-ellipse.

    ``a``, ``b``: ``[P, N]`` (one row per part, ``parts`` giving the part ids, default all parts).
    Returns bool ``[P, N]``.
    """
    parts = np.arange(NUM_PARTS) if parts is None else parts
    p = ident.shape_p[parts][:, None]
    taper = ident.taper[parts][:, None]
    width = 1 + (taper - 1) * (np.clip(a, -1, 1) + 1) / 2
    return np.abs(a) ** p + np.abs(b / width) ** p <= 1.0


def render(ident: Identity, frame: Frame, image_size: tuple[int, int]) -> dict:
    """Draw one person over its background.

    Returns a dict with
        ``image``: float64 ``[H, W, 3]`` RGB in [0, 1];
        ``part``: int8 ``[H, W]`` part id, -1 on the background;
        ``a``, ``b``: float64 ``[H, W]`` part-local coordinates (0 on the background);
        ``seg``: uint8 ``[H, W]`` 7-class labels as in ``Img/seg/<id>.bmp``;
        ``side``: the frame's side (0 front, 1 back).
    """
    h, w = image_size
    ys, xs = np.mgrid[0:h, 0:w]
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    a, b = local_coords(frame, pts)
    cov = coverage(ident, a, b)
    z = np.where(cov, frame.depth[:, None], np.inf)
    part = np.argmin(z, axis=0)
    body = np.isfinite(z.min(axis=0))
    part = np.where(body, part, -1)
    idx = np.arange(pts.shape[0])
    a_map = np.where(body, a[np.maximum(part, 0), idx], 0.0)
    b_map = np.where(body, b[np.maximum(part, 0), idx], 0.0)
    image = paint_background(frame.background, image_size).reshape(-1, 3)
    for k in range(NUM_PARTS):
        sel = np.flatnonzero(part == k)
        if sel.size:
            image[sel] = shade_part(ident, k, frame.side, a_map[sel], b_map[sel])
    seg = np.where(body, PART_SEG[np.maximum(part, 0)], 0).astype(np.uint8)
    return dict(image=image.reshape(h, w, 3), part=part.reshape(h, w).astype(np.int8),
                a=a_map.reshape(h, w), b=b_map.reshape(h, w), seg=seg.reshape(h, w), side=frame.side)


def correspondence(ident: Identity, target: dict, source: Frame, image_size: tuple[int, int]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Exact correspondence of target pixels in the source image (the ``.corr`` semantics of ``util.flow_util``).

    Args:
        target: :func:`render` output of image 2 (target).
        source: frame of image 1 (source).

    Returns:
        corr: float32 ``[H, W, 2]`` (u, v) source coordinates of every target body pixel, (0, 0) on the
            background.
        vis: uint8 ``[H, W]``: 0 the surface point is visible in the source, 1 body pixel whose point is
            hidden in the source (occluded by a nearer part, other side of the body, or outside the
            frame), 2 background.
    """
    h, w = image_size
    part = target['part'].ravel().astype(np.int64)
    sel = np.flatnonzero(part >= 0)
    k = part[sel]
    ab = np.stack([target['a'].ravel()[sel], target['b'].ravel()[sel]], axis=1)
    p_src = source.centers[k] + np.einsum('nij,nj->ni', source.axes[k], ab)  # forward map, [N, 2]
    in_frame = (p_src[:, 0] >= 0) & (p_src[:, 0] <= w - 1) & (p_src[:, 1] >= 0) & (p_src[:, 1] <= h - 1)
    qa, qb = local_coords(source, p_src)
    covered = coverage(ident, qa, qb)  # [P, N]
    nearer = source.depth[:, None] < source.depth[k][None, :]
    occluded = np.any(covered & nearer, axis=0)
    visible = in_frame & ~occluded & (source.side == target['side'])
    corr = np.zeros((h * w, 2), dtype=np.float32)
    corr[sel] = p_src
    vis = np.full(h * w, 2, dtype=np.uint8)
    vis[sel] = np.where(visible, 0, 1)
    return corr.reshape(h, w, 2), vis.reshape(h, w)
