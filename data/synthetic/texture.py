"""Per-identity clothing, skin and hair textures defined on the body surface.

A texture is a pure function of ``(part, side, a, b)`` (part-local coordinates, see ``body.py``), so a
surface point has the same colour in every pose and the warped source image reproduces the target
wherever the point is visible. Patterns are expressed in body units (``a * half_len``, ``b * half_width``)
so stripes have the same physical period on every part; their edges are smooth (a sine passed through a
smoothstep) so that bilinear resampling, not aliasing, limits the warp self-check.
"""
from __future__ import annotations

import colorsys

import numpy as np

from data.synthetic.body import FACE_JOINTS_LOCAL, HEAD, NECK, TORSO, Identity

PATTERNS = ('solid', 'hstripes', 'vstripes', 'diagonal', 'checker', 'dots', 'split')
_LIGHT_SKIN = np.array([0.96, 0.80, 0.69])
_DARK_SKIN = np.array([0.36, 0.22, 0.15])
_HAIR = np.array([[0.08, 0.06, 0.05], [0.30, 0.18, 0.09], [0.80, 0.66, 0.38], [0.55, 0.22, 0.08],
                  [0.62, 0.62, 0.62]])


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v))


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _mix(c0: np.ndarray, c1: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Blend colours per pixel: ``c0``/``c1`` are [3] or [N, 3], ``m`` is [N] in [0, 1]."""
    m = m[:, None]
    return c0 * (1 - m) + c1 * m


def sample_material(rng: np.random.Generator) -> dict:
    """A garment: pattern kind, two contrasting colours, period (body units), orientation and phase."""
    h = rng.random()
    c1 = _hsv(h, rng.uniform(0.35, 0.95), rng.uniform(0.35, 0.95))
    # The second colour differs in hue and brightness so that patterns stay visible after JPEG.
    c2 = _hsv(h + rng.uniform(0.25, 0.75), rng.uniform(0.2, 0.9), rng.uniform(0.2, 1.0))
    if abs(c2.mean() - c1.mean()) < 0.2:
        c2 = np.clip(c2 + (0.35 if c1.mean() < 0.5 else -0.35), 0, 1)
    return dict(kind=str(rng.choice(PATTERNS)), c1=c1, c2=c2, period=rng.uniform(0.045, 0.08),
                angle=rng.uniform(0, np.pi), phase=rng.uniform(0, 2 * np.pi), offset=rng.uniform(-0.03, 0.03))


def sample_texture(rng: np.random.Generator) -> dict:
    """Skin, hair and clothing parameters of one person."""
    skin = _LIGHT_SKIN + (_DARK_SKIN - _LIGHT_SKIN) * rng.random()
    hair = _HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.85, 1.15)
    return dict(
        skin=skin, hair=np.clip(hair, 0, 1), long_hair=bool(rng.random() < 0.4),
        shirt=sample_material(rng), pants=sample_material(rng),
        sleeves=int(rng.integers(3)),  # 0 none, 1 short, 2 long
        long_pants=bool(rng.random() < 0.7),
        shoes=_hsv(rng.random(), rng.uniform(0, 0.6), rng.uniform(0.1, 0.5)),
        logo=dict(color=_hsv(rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0)),
                  square=bool(rng.random() < 0.5), y=rng.uniform(-0.09, 0.0), x=rng.uniform(-0.04, 0.04),
                  r=rng.uniform(0.022, 0.04)),
        band=_hsv(rng.random(), rng.uniform(0.3, 1.0), rng.uniform(0.4, 1.0)),
    )


def material_color(mat: dict, x: np.ndarray, y: np.ndarray, back: bool) -> np.ndarray:
    """Colour of a garment at body-unit surface coordinates ``x`` (across), ``y`` (along): [N, 3]."""
    period = mat['period']
    phase = mat['phase'] + (0.5 * np.pi if back else 0.0)  # the back of a garment is visibly different
    kind = mat['kind']
    if kind == 'solid':
        return np.clip(mat['c1'] * (1 + 0.8 * y)[:, None], 0, 1) * np.ones((len(x), 1))
    if kind == 'hstripes':
        m = _smoothstep(-0.9, 0.9, np.sin(2 * np.pi * y / period + phase))
    elif kind == 'vstripes':
        m = _smoothstep(-0.9, 0.9, np.sin(2 * np.pi * x / period + phase))
    elif kind == 'diagonal':
        t = x * np.cos(mat['angle']) + y * np.sin(mat['angle'])
        m = _smoothstep(-0.9, 0.9, np.sin(2 * np.pi * t / period + phase))
    elif kind == 'checker':
        t = np.sin(2 * np.pi * x / (1.4 * period) + phase) * np.sin(2 * np.pi * y / (1.4 * period) + phase)
        m = _smoothstep(-0.6, 0.6, t)
    elif kind == 'dots':
        fx = x / period + phase / (2 * np.pi)
        fy = y / period
        d = np.hypot(fx - np.round(fx), fy - np.round(fy))
        m = 1 - _smoothstep(0.2, 0.34, d)
    elif kind == 'split':
        t = x * np.cos(mat['angle']) + y * np.sin(mat['angle']) - mat['offset']
        m = _smoothstep(-0.012, 0.012, t if not back else -t)
    else:
        raise ValueError(f'unknown material pattern {kind!r}; valid patterns are {PATTERNS}')
    return _mix(mat['c1'], mat['c2'], m)


def shade_part(ident: Identity, part: int, side: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Surface colour of ``part`` seen from ``side`` (0 front, 1 back) at local ``(a, b)``: [N, 3] in [0, 1]."""
    tex = ident.texture
    back = bool(side)
    x = b * ident.half_width[part]
    y = a * ident.half_len[part]
    n = len(a)
    skin = np.broadcast_to(tex['skin'], (n, 3))
    if part == HEAD:
        if back:
            hair_m = 1 - _smoothstep(0.3, 0.4, a) if not tex['long_hair'] else 1 - _smoothstep(0.8, 0.9, a)
            col = _mix(skin, tex['hair'], hair_m)
        else:
            col = skin.copy()
            for j in (14, 15):  # eyes exactly at the eye keypoints
                a0, b0 = FACE_JOINTS_LOCAL[j]
                d = np.hypot((a - a0) / 0.11, (b - b0) / 0.16)
                col = _mix(col, np.array([0.1, 0.08, 0.12]), 1 - _smoothstep(0.7, 1.1, d))
            d = np.hypot((a - 0.55) / 0.08, b / 0.3)
            col = _mix(col, np.array([0.7, 0.2, 0.25]), 1 - _smoothstep(0.7, 1.1, d))
            hairline = -0.45 + 0.25 * b * b
            hair_m = 1 - _smoothstep(hairline - 0.05, hairline + 0.05, a)
            if tex['long_hair']:
                hair_m = np.maximum(hair_m, _smoothstep(0.74, 0.84, np.abs(b)) * (1 - _smoothstep(0.5, 0.6, a)))
            col = _mix(col, tex['hair'], hair_m)
        shade = 0.82 + 0.18 * np.sqrt(np.clip(1 - a * a - b * b, 0, 1))
    elif part == NECK:
        col = skin * (0.9 if back else 1.0)
        shade = 0.8 + 0.2 * np.sqrt(np.clip(1 - b * b, 0, 1))
    elif part == TORSO:
        col = material_color(tex['shirt'], x, y, back)
        logo = tex['logo']
        if back:
            band = _smoothstep(-0.35, -0.3, a) * (1 - _smoothstep(-0.12, -0.07, a))
            col = _mix(col, tex['band'] * 0.9, band)
        else:
            dx, dy = np.abs(x - logo['x']), np.abs(y - logo['y'])
            d = np.maximum(dx, dy) if logo['square'] else np.hypot(dx, dy)
            col = _mix(col, logo['color'], 1 - _smoothstep(logo['r'] - 0.008, logo['r'] + 0.008, d))
        waist = _smoothstep(0.7, 0.76, a)  # the trousers' waistband shows at the bottom of the torso
        col = _mix(col, material_color(tex['pants'], x, y, back), waist)
        shade = 0.8 + 0.2 * np.sqrt(np.clip(1 - b * b, 0, 1))
    elif part in (3, 5, 4, 6):  # arms: sleeve, then skin; lower arms end in a hand
        upper = part in (3, 5)
        if upper:
            sleeve_end = {0: -2.0, 1: 0.3, 2: 2.0}[tex['sleeves']]
        else:
            sleeve_end = 0.45 if tex['sleeves'] == 2 else -2.0
        sleeve = material_color(tex['shirt'], x, y, back)
        m = 1 - _smoothstep(sleeve_end - 0.04, sleeve_end + 0.04, a)
        col = _mix(skin, sleeve, m)
        shade = 0.76 + 0.24 * np.sqrt(np.clip(1 - b * b, 0, 1))
    else:  # legs: trousers or shorts, then skin, then shoes
        upper = part in (7, 9)
        pants = material_color(tex['pants'], x, y, back)
        if upper:
            end = 2.0 if tex['long_pants'] else 0.35
            col = _mix(skin, pants, 1 - _smoothstep(end - 0.04, end + 0.04, a))
        else:
            end = 0.62 if tex['long_pants'] else -2.0
            col = _mix(skin, pants, 1 - _smoothstep(end - 0.04, end + 0.04, a))
            col = _mix(col, np.broadcast_to(tex['shoes'], (n, 3)), _smoothstep(0.7, 0.76, a))
        shade = 0.76 + 0.24 * np.sqrt(np.clip(1 - b * b, 0, 1))
    col = col * shade[:, None] * (0.9 if back else 1.0)
    return np.clip(col, 0.0, 1.0)
