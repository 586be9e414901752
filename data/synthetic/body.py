"""Articulated 2.5-D people: body parts, per-identity proportions and per-image poses.

Every body part is an *affine image of a fixed local shape*: a pixel ``p`` belongs to part ``k`` at
local coordinates ``(a, b)`` with ``p = c_k + A_k @ [a, b]``, where ``a`` in [-1, 1] runs along the part
(from its first joint to its second) and ``b`` in [-1, 1] across it, pointing towards the person's left.
The shape in ``(a, b)`` (a tapered super-ellipse) and the surface texture are properties of the identity,
so the same ``(part, a, b, side)`` is the same surface point, with the same colour, in every pose. This
makes the ground-truth correspondence between two images a closed-form composition of two affine maps.

Conventions: image coordinates ``(x, y)`` (x = column, y = row, pixel centres at integers); the
body frame used to pose the skeleton has ``X`` towards the person's left and ``Y`` down, in units of
the person's height. A front-facing person shows their left side on the image's right (+x); a
back-facing person is mirrored and shows the back side of every part (``side = 1``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Body parts, drawn in per-image depth order; seg classes are the datasets' 7 labels
# (1 head, 2 torso, 3 left arm, 4 right arm, 5 left leg, 6 right leg; "left" = the person's left).
PART_NAMES = ('head', 'neck', 'torso', 'r_upper_arm', 'r_lower_arm', 'l_upper_arm', 'l_lower_arm',
              'r_upper_leg', 'r_lower_leg', 'l_upper_leg', 'l_lower_leg')
PART_SEG = np.array([1, 1, 2, 4, 4, 3, 3, 6, 6, 5, 5], dtype=np.uint8)
NUM_PARTS = len(PART_NAMES)
HEAD, NECK, TORSO = 0, 1, 2
# (first joint, second joint) of each limb part in OpenPose COCO-18 order.
LIMB_JOINTS = {3: (2, 3), 4: (3, 4), 5: (5, 6), 6: (6, 7), 7: (8, 9), 8: (9, 10), 9: (11, 12), 10: (12, 13)}
# Along-axis extension of each part beyond its two end points, in units of the end-to-end vector: upper
# limbs reach a little past the shoulder/hip and elbow/knee so consecutive parts overlap; lower arms end
# in a hand, lower legs in a foot.
PART_EXTENSION = {
    NECK: (0.0, 0.0), TORSO: (0.03, 0.08),
    3: (0.12, 0.10), 4: (0.08, 0.30), 5: (0.12, 0.10), 6: (0.08, 0.30),
    7: (0.10, 0.10), 8: (0.08, 0.16), 9: (0.10, 0.10), 10: (0.08, 0.16),
}
# Face joints in the head's local (a, b) frame: a from the crown (-1) to the chin (+1), b to the person's
# left. The front texture draws the eyes exactly here, so keypoints and pixels agree.
FACE_JOINTS_LOCAL = {0: (0.18, 0.0), 14: (-0.12, -0.36), 15: (-0.12, 0.36), 16: (-0.05, -0.97), 17: (-0.05, 0.97)}
# Face joints an image-based pose estimator cannot see on a back view (nose, eyes).
BACK_HIDDEN_JOINTS = (0, 14, 15)


def rotation(theta: float) -> np.ndarray:
    """2x2 rotation matrix (counter-clockwise in a y-down image, i.e. visually clockwise)."""
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def perp(d: np.ndarray) -> np.ndarray:
    """Unit vector perpendicular to ``d`` that points to the person's left for a front view.

    For a part pointing down the image (``d = (0, 1)``) this is ``(1, 0)``; an in-plane rotation of the
    part rotates it along, so the across coordinate ``b`` stays attached to the same surface side.
    """
    d = d / max(np.linalg.norm(d), 1e-9)
    return np.array([d[1], -d[0]])


@dataclass
class Identity:
    """Everything that stays fixed for one person: proportions, part shapes and texture parameters.

    Lengths are in units of the body height. ``half_width[k]`` is the across-axis scale of part ``k``
    (the ``b = 1`` distance); ``shape_p``/``taper`` define the local coverage
    ``|a|^p + |b / w(a)|^p <= 1`` with ``w(a) = 1 + (taper - 1) * (a + 1) / 2``.
    """

    index: int
    head_half_len: float
    neck_len: float
    torso_len: float
    shoulder_half: float
    hip_half: float
    upper_arm: float
    lower_arm: float
    upper_leg: float
    lower_leg: float
    half_width: np.ndarray  # [P]
    shape_p: np.ndarray  # [P]
    taper: np.ndarray  # [P]
    # Nominal (un-foreshortened) half length of each part, used to express textures in body units.
    half_len: np.ndarray = field(default_factory=lambda: np.zeros(NUM_PARTS))
    texture: dict = field(default_factory=dict)


@dataclass
class Frame:
    """One posed, placed person in one image.

    joints: ``[18, 2]`` exact image coordinates (x, y) of the OpenPose joints (may lie outside the image).
    centers: ``[P, 2]``; axes: ``[P, 2, 2]`` with columns ``(u, v)``: ``p = centers[k] + axes[k] @ [a, b]``.
    depth: ``[P]``, smaller is nearer the camera. side: 0 front view, 1 back view.
    background: parameters of the background painter (see ``render.paint_background``).
    """

    joints: np.ndarray
    centers: np.ndarray
    axes: np.ndarray
    depth: np.ndarray
    side: int
    background: dict


def sample_identity(rng: np.random.Generator, index: int) -> Identity:
    """Random body proportions and part shapes of one person (texture is added by the caller)."""
    u = rng.uniform
    head_half_len = u(0.058, 0.07)
    head_half_w = head_half_len * u(0.72, 0.84)
    arm_w = u(0.022, 0.032)
    leg_w = u(0.036, 0.05)
    shoulder_half = u(0.085, 0.112)
    hip_half = u(0.055, 0.072)
    torso_half_w = shoulder_half + 0.6 * arm_w
    half_width = np.array([
        head_half_w, head_half_w * u(0.42, 0.52), torso_half_w,
        arm_w, arm_w * u(0.78, 0.92), arm_w, 0.0,  # left lower arm copied below (symmetric person)
        leg_w, leg_w * u(0.68, 0.82), leg_w, 0.0,
    ])
    half_width[6] = half_width[4]
    half_width[10] = half_width[8]
    shape_p = np.array([2.0, 6.0, u(3.5, 5.0)] + [u(2.4, 3.2)] * 4 + [u(2.4, 3.2)] * 4)
    hip_ratio = (hip_half + 0.85 * leg_w) / torso_half_w
    taper = np.array([1.0, 1.0, hip_ratio] + [u(0.8, 0.95), 0.85] * 2 + [u(0.8, 0.92), 0.85] * 2)
    ident = Identity(
        index=index, head_half_len=head_half_len, neck_len=u(0.022, 0.036), torso_len=u(0.28, 0.33),
        shoulder_half=shoulder_half, hip_half=hip_half, upper_arm=u(0.15, 0.18), lower_arm=u(0.13, 0.16),
        upper_leg=u(0.22, 0.26), lower_leg=u(0.21, 0.25), half_width=half_width, shape_p=shape_p, taper=taper)
    limb_len = {3: ident.upper_arm, 4: ident.lower_arm, 5: ident.upper_arm, 6: ident.lower_arm,
                7: ident.upper_leg, 8: ident.lower_leg, 9: ident.upper_leg, 10: ident.lower_leg}
    half_len = np.zeros(NUM_PARTS)
    half_len[HEAD] = head_half_len
    half_len[NECK] = 0.5 * (ident.neck_len + 0.5 * head_half_len)
    e0, e1 = PART_EXTENSION[TORSO]
    half_len[TORSO] = 0.5 * ident.torso_len * (1 + e0 + e1)
    for k, length in limb_len.items():
        e0, e1 = PART_EXTENSION[k]
        half_len[k] = 0.5 * length * (1 + e0 + e1)
    ident.half_len = half_len
    return ident


def _limb_dir(theta: float, outward: float) -> np.ndarray:
    """Body-frame unit vector at angle ``theta`` from straight down, positive away from the body midline."""
    return np.array([outward * np.sin(theta), np.cos(theta)])


def sample_pose(rng: np.random.Generator, ident: Identity, image_size: tuple[int, int], p_back: float) -> dict:
    """Random pose and placement; returns the body-frame skeleton plus the image transform parameters."""
    h, w = image_size
    narrow = w / h < 0.75  # Market-like crops: keep arms closer to the body
    u = rng.uniform
    deg = np.pi / 180
    pts: dict[str, np.ndarray] = {}
    pts['neck'] = np.zeros(2)
    pts['neck_base'] = np.array([0.0, -0.01])
    head_tilt = u(-15, 15) * deg
    head_axis = rotation(head_tilt) @ np.array([0.0, 1.0])  # crown -> chin
    pts['head_c'] = pts['neck'] - head_axis * (ident.neck_len + ident.head_half_len)
    pts['head_axis'] = head_axis
    for name, sign in (('r', -1.0), ('l', 1.0)):
        shoulder = np.array([sign * ident.shoulder_half, 0.015])
        probs = [0.45, 0.17, 0.28, 0.10] if narrow else [0.35, 0.25, 0.25, 0.15]
        mode = rng.choice(['down', 'out', 'cross', 'up'], p=probs)
        if mode == 'down':
            t_up, bend = u(4, 30), u(-25, 60)
        elif mode == 'out':
            t_up, bend = u(30, 80 if narrow else 100), u(-40, 70)
        elif mode == 'cross':  # forearm folded across the torso
            t_up, bend = u(-5, 20), u(-120, -70)
        else:
            t_up, bend = u(100, 165), u(-30, 30)
        f_up = 1.0 if rng.random() < 0.7 else u(0.6, 0.95)  # foreshortening (limb pointing at the camera)
        f_lo = 1.0 if rng.random() < 0.7 else u(0.6, 0.95)
        elbow = shoulder + ident.upper_arm * f_up * _limb_dir(t_up * deg, sign)
        wrist = elbow + ident.lower_arm * f_lo * _limb_dir((t_up + bend) * deg, sign)
        pts[f'{name}_shoulder'], pts[f'{name}_elbow'], pts[f'{name}_wrist'] = shoulder, elbow, wrist
        pts[f'{name}_arm_front'] = np.array(mode == 'cross' or rng.random() < 0.55)
        hip = np.array([sign * ident.hip_half, ident.torso_len])
        t_leg, knee_bend = u(-6, 22), u(-22, 8)
        f_ul = 1.0 if rng.random() < 0.8 else u(0.7, 0.95)
        knee = hip + ident.upper_leg * f_ul * _limb_dir(t_leg * deg, sign)
        ankle = knee + ident.lower_leg * _limb_dir((t_leg + knee_bend) * deg, sign)
        pts[f'{name}_hip'], pts[f'{name}_knee'], pts[f'{name}_ankle'] = hip, knee, ankle
    # Whole-body lean about the pelvis.
    pelvis = np.array([0.0, ident.torso_len])
    lean = rotation(u(-7, 7) * deg)
    for key, val in pts.items():
        if key == 'head_axis':
            pts[key] = lean @ val
        elif val.shape == (2,):
            pts[key] = pelvis + lean @ (val - pelvis)
    side = int(rng.random() < p_back)
    # Placement: the person's height fills a random fraction of the image height.
    crown = pts['head_c'] - pts['head_axis'] * ident.head_half_len
    feet = max(pts['r_ankle'][1], pts['l_ankle'][1]) + 0.04
    body_h = feet - crown[1]
    scale = u(0.74, 0.92) * h / body_h
    top = u(0.02, 0.97 * h - scale * body_h) if 0.97 * h > scale * body_h + 0.02 else 0.02
    xs = np.array([v[0] for k, v in pts.items() if k not in ('head_axis',) and v.shape == (2,)])
    mid_x = 0.5 * (xs.min() + xs.max())
    cx = w / 2 + u(-0.12, 0.12) * w
    depth_jitter = u(-0.004, 0.004, size=NUM_PARTS)
    return dict(pts=pts, side=side, scale=scale, origin=np.array([cx, top]), anchor=np.array([mid_x, crown[1]]),
                depth_jitter=depth_jitter, leg_order=rng.random() < 0.5)


def build_frame(ident: Identity, pose: dict, background: dict) -> Frame:
    """Body-frame skeleton + placement -> image-space joints and part transforms."""
    facing = -1.0 if pose['side'] else 1.0  # back view: mirror x

    def to_img(p: np.ndarray) -> np.ndarray:
        q = (p - pose['anchor']) * pose['scale']
        return pose['origin'] + np.array([facing * q[0], q[1]])

    def dir_img(d: np.ndarray) -> np.ndarray:
        return np.array([facing * d[0], d[1]])

    pts = pose['pts']
    joints = np.full((18, 2), np.nan)
    for idx, key in ((1, 'neck'), (2, 'r_shoulder'), (3, 'r_elbow'), (4, 'r_wrist'), (5, 'l_shoulder'),
                     (6, 'l_elbow'), (7, 'l_wrist'), (8, 'r_hip'), (9, 'r_knee'), (10, 'r_ankle'),
                     (11, 'l_hip'), (12, 'l_knee'), (13, 'l_ankle')):
        joints[idx] = to_img(pts[key])
    centers = np.zeros((NUM_PARTS, 2))
    axes = np.zeros((NUM_PARTS, 2, 2))
    s = pose['scale']

    def set_part(k: int, start: np.ndarray, end: np.ndarray) -> None:
        e0, e1 = PART_EXTENSION[k]
        d = end - start
        p0, p1 = start - e0 * d, end + e1 * d
        centers[k] = 0.5 * (p0 + p1)
        u_vec = 0.5 * (p1 - p0)
        axes[k, :, 0] = u_vec
        axes[k, :, 1] = facing * perp(u_vec) * ident.half_width[k] * s

    # Head: an ellipse around its centre, axis from crown to chin.
    head_axis = dir_img(pts['head_axis'])
    centers[HEAD] = to_img(pts['head_c'])
    axes[HEAD, :, 0] = head_axis * ident.head_half_len * s
    axes[HEAD, :, 1] = facing * perp(head_axis) * ident.half_width[HEAD] * s
    neck_top = pts['head_c'] + pts['head_axis'] * 0.5 * ident.head_half_len
    set_part(NECK, to_img(pts['neck']), to_img(neck_top))
    set_part(TORSO, to_img(pts['neck_base']), 0.5 * (joints[8] + joints[11]))
    for k, (j0, j1) in LIMB_JOINTS.items():
        set_part(k, joints[j0], joints[j1])
    for j, (a, b) in FACE_JOINTS_LOCAL.items():
        joints[j] = centers[HEAD] + axes[HEAD] @ np.array([a, b])
    # Depth order: head in front of the neck, which is in front of the torso; each arm entirely in front
    # of or behind the torso; legs behind the torso (the hips tuck under it), in random left/right order.
    depth = np.zeros(NUM_PARTS)
    depth[HEAD], depth[NECK], depth[TORSO] = -0.2, -0.1, 0.0
    for upper, lower, key in ((3, 4, 'r_arm_front'), (5, 6, 'l_arm_front')):
        base = -0.5 if bool(pts[key]) else 0.5
        depth[upper], depth[lower] = base, base - 0.05
    r_leg, l_leg = (0.2, 0.25) if pose['leg_order'] else (0.25, 0.2)
    depth[7], depth[8], depth[9], depth[10] = r_leg, r_leg - 0.01, l_leg, l_leg - 0.01
    depth += pose['depth_jitter']
    return Frame(joints=joints, centers=centers, axes=axes, depth=depth, side=pose['side'], background=background)
