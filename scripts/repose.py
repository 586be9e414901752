"""Repose the person of your own photo with a trained model (a thin command line over inference.pipeline).

    # one photo into the pose of a keypoint file (OpenPose/COCO JSON, [[x, y], ...] list, pose-label file)
    python scripts/repose.py --model checkpoints/PoseTransfer_0.5 --source me.jpg --target_pose pose.json --out out.png
    # into the pose of the person in another photo (keypoints detected)
    python scripts/repose.py --model ... --source me.jpg --target_image someone_else.jpg --out out.png
    # a pose sequence (a folder of per-frame keypoint files) -> video, every frame also written as PNG
    python scripts/repose.py --model ... --source me.jpg --target_pose_dir dance/ --out dance.mp4   # or .gif
    # many at once: a CSV of pairs (or --source FOLDER with one target), with a manifest of what failed and why
    python scripts/repose.py --model ... --pairs pairs.csv --out_dir results/

Keypoints of a photo come from --source_pose / --target_pose when given, else from the keypoint detector
(torchvision's Keypoint R-CNN; its weights are read from the torch hub cache or --detector_weights, never
downloaded). Keypoint files holding many images' poses (the datasets' pose-label files, COCO annotation files)
need the entry: --source_entry / --target_entry.

The pairs CSV has a header row with the columns ``source`` and ``target_pose`` and/or ``target_image``, optionally
``output`` (file name inside --out_dir, default ``<source>_to_<target>.png``), ``source_pose``, ``source_entry``
and ``target_entry``; relative paths are relative to the CSV's folder.

Exit status: 0 when everything was produced, 1 on an error (the message names the file) or when a batch row
failed (the manifest lists each row's status and reason).
"""
import _path  # noqa: F401

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from inference.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_images, save_image, write_video
from inference.pipeline import FRAMING_MODES, KeypointFile, PoseTransferPipeline, PreparedPair, ReposeResult
from models.keypoint_detector import DEFAULT_KEYPOINT_SCORE_THRESH, DEFAULT_PERSON_SCORE_THRESH
from models.pose_transfer_model import BN_MODES
from util.framing import FRAMING_PRESETS, TARGET_REFERENCES
from util.io import atomic_write, save_json
from util.keypoints import DEFAULT_CONFIDENCE_THRESHOLD, SMOOTHING_METHODS, list_keypoint_files

PAIR_COLUMNS = ('source', 'target_pose', 'target_image', 'output', 'source_pose', 'source_entry', 'target_entry')
MANIFEST_FIELDS = ('row', 'source', 'target', 'output', 'status', 'reason')


class UsageError(ValueError):
    """A wrong combination of command-line options."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument('--model', required=True, help='experiment folder of a trained pose-transfer model; its flow '
                                                  'module folder (pretrained_flow_id) must sit beside it')
    what = p.add_argument_group('inputs')
    what.add_argument('--source', help='the photo to repose (a folder: every image in it, batch mode)')
    what.add_argument('--source_pose', help="keypoint file of the source photo (default: detected)")
    what.add_argument('--source_entry', help='entry of a multi-image --source_pose file (pose-label id, COCO '
                                             'image_id or file name)')
    what.add_argument('--target_pose', help='keypoint file of the target pose')
    what.add_argument('--target_entry', help='entry of a multi-image --target_pose file')
    what.add_argument('--target_image', help='photo of someone in the target pose (keypoints detected unless '
                                             '--target_pose gives them)')
    what.add_argument('--target_pose_dir', help='folder of per-frame keypoint files: a pose sequence -> video')
    what.add_argument('--target_pose_glob', default='*.json', help='keypoint files of --target_pose_dir')
    what.add_argument('--pairs', help='CSV of pairs for batch mode (see above)')
    out = p.add_argument_group('outputs')
    out.add_argument('--out', help=f'result image ({", ".join(IMAGE_SUFFIXES)}) or, for a sequence, video '
                                   f'({", ".join(VIDEO_SUFFIXES)})')
    out.add_argument('--out_dir', help='output folder of batch mode (results and manifest.json/.csv)')
    out.add_argument('--panel', action='store_true', help='also write <name>_panel.png: source | source pose | '
                                                          'target pose | flow | visibility | warped source | result')
    out.add_argument('--paste_back', action='store_true', help='put the result back into the source photo')
    out.add_argument('--fps', type=float, default=10.0, help='frame rate of the video (and of --smooth one_euro)')
    model = p.add_argument_group('model')
    model.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    model.add_argument('--which_epoch', default=None, help='weights label (default: best, else latest)')
    model.add_argument('--bn_mode', default='running', choices=list(BN_MODES),
                       help='running: eval-mode BatchNorm (a result does not depend on its batch); batch: '
                            "statistics of each batch, the test script's original semantics")
    model.add_argument('--batch_size', type=int, default=8, help='pairs per forward pass')
    pose = p.add_argument_group('keypoints and framing')
    pose.add_argument('--confidence_threshold', type=float, default=DEFAULT_CONFIDENCE_THRESHOLD,
                      help='joints of keypoint files with a lower confidence are missing')
    pose.add_argument('--person_index', type=int, default=None,
                      help='person to use: position in a keypoint file, or in the detections ordered by box area '
                           '(default: the largest person)')
    pose.add_argument('--detector_weights', default=None, help='Keypoint R-CNN weights file (default: torch hub cache)')
    pose.add_argument('--detector_person_threshold', type=float, default=DEFAULT_PERSON_SCORE_THRESH,
                      help='detections with a lower person score are ignored')
    pose.add_argument('--detector_keypoint_threshold', type=float, default=DEFAULT_KEYPOINT_SCORE_THRESH,
                      help='detected joints with a lower score (heatmap logit) are missing')
    pose.add_argument('--detector_size', type=int, nargs=2, default=[800, 1333], metavar=('MIN', 'MAX'),
                      help="the detector's internal resize: shorter side MIN, longer side at most MAX (smaller is "
                           "faster and less accurate)")
    pose.add_argument('--detector_max_persons', type=int, default=100,
                      help='most persons the detector returns per photo (fewer is faster)')
    pose.add_argument('--framing', default='auto', choices=list(FRAMING_MODES),
                      help='auto: crop around the person (by its keypoints) like the training images; box: the '
                           "same by the detector's person box (no --source_pose); identity: the photos are already "
                           'framed at the model size')
    pose.add_argument('--framing_preset', default=None, choices=sorted(FRAMING_PRESETS),
                      help="how the person is framed (default: the model's training dataset)")
    pose.add_argument('--target_scale', default='target', choices=list(TARGET_REFERENCES),
                      help="target pose framed by its own skeleton (target) or given the source's size and "
                           "position (source)")
    pose.add_argument('--smooth', default='none', choices=['none', *SMOOTHING_METHODS],
                      help='temporal smoothing of a pose sequence')
    pose.add_argument('--smooth_window', type=int, default=5, help='frames of the moving average (odd)')
    return p


# --------------------------------------------------------------------------------------------------
# Checking the command line
# --------------------------------------------------------------------------------------------------
def _mode(args: argparse.Namespace) -> str:
    if args.batch_size < 1:
        raise UsageError(f'--batch_size must be >= 1, got {args.batch_size}')
    if not 0 < args.detector_size[0] <= args.detector_size[1]:
        raise UsageError(f'--detector_size MIN MAX needs 0 < MIN <= MAX, got {args.detector_size}')
    if args.detector_max_persons < 1:
        raise UsageError(f'--detector_max_persons must be >= 1, got {args.detector_max_persons}')
    if not args.fps > 0:
        raise UsageError(f'--fps must be positive, got {args.fps}')
    if args.pairs:
        clash = [f'--{k}' for k in ('source', 'source_pose', 'target_pose', 'target_image', 'target_pose_dir', 'out')
                 if getattr(args, k)]
        if clash:
            raise UsageError(f'--pairs takes everything from the CSV; drop {", ".join(clash)}')
        if not args.out_dir:
            raise UsageError('--pairs needs --out_dir')
        return 'pairs'
    if not args.source:
        raise UsageError('give --source (a photo or a folder of photos) or --pairs CSV')
    targets = [k for k in ('target_pose', 'target_image', 'target_pose_dir') if getattr(args, k)]
    if not targets:
        raise UsageError('give the target: --target_pose FILE, --target_image FILE or --target_pose_dir DIR')
    if args.target_pose_dir and len(targets) > 1:
        raise UsageError('--target_pose_dir cannot be combined with --target_pose / --target_image')
    if Path(args.source).is_dir():
        if args.target_pose_dir or args.source_pose:
            raise UsageError('with a --source folder give one --target_pose or --target_image (and no --source_pose)')
        if not args.out_dir:
            raise UsageError('a --source folder needs --out_dir')
        return 'folder'
    if not args.out:
        raise UsageError('give --out (the result file)')
    suffix = Path(args.out).suffix.lower()
    if args.target_pose_dir:
        if suffix not in VIDEO_SUFFIXES:
            raise UsageError(f'--out {args.out}: a pose sequence is written as a video ({", ".join(VIDEO_SUFFIXES)})')
        return 'sequence'
    if suffix not in IMAGE_SUFFIXES:
        raise UsageError(f'--out {args.out}: use an image file name ({", ".join(IMAGE_SUFFIXES)})')
    return 'single'


def _keypoint_file(path: str | None, entry: str | None) -> KeypointFile | None:
    return None if path is None else KeypointFile(path, entry_id=entry or None)


def _panel_path(path: Path) -> Path:
    return path.with_name(f'{path.stem}_panel.png')


def _write_result(path: Path, result: ReposeResult, panel: bool) -> list[Path]:
    written = [save_image(path, result.final)]
    if panel:
        written.append(save_image(_panel_path(path), result.panel()))
    return written


# --------------------------------------------------------------------------------------------------
# The four forms
# --------------------------------------------------------------------------------------------------
def _single(pipe: PoseTransferPipeline, args: argparse.Namespace, prep: dict[str, Any]) -> dict[str, Any]:
    result = pipe(args.source, _keypoint_file(args.target_pose, args.target_entry), target_image=args.target_image,
                  source_keypoints=_keypoint_file(args.source_pose, args.source_entry),
                  return_intermediates=args.panel, paste_back=args.paste_back, **prep)
    written = _write_result(Path(args.out), result, args.panel)
    for path in written:
        print(f'wrote {path}')
    return {'mode': 'single', 'outputs': [str(p) for p in written]}


def _sequence(pipe: PoseTransferPipeline, args: argparse.Namespace, prep: dict[str, Any]) -> dict[str, Any]:
    out = Path(args.out)
    smooth = None if args.smooth == 'none' else args.smooth
    params = {'window': args.smooth_window} if smooth == 'moving_average' else (
        {'fps': args.fps} if smooth == 'one_euro' else None)
    sequence = list_keypoint_files(args.target_pose_dir, args.target_pose_glob)  # natural frame order
    pairs = pipe.prepare_sequence(args.source, sequence, smooth=smooth,
                                  source_keypoints=_keypoint_file(args.source_pose, args.source_entry),
                                  smooth_params=params, name=out.stem, **prep)
    frames_dir = out.with_name(f'{out.stem}_frames')
    frames = []
    with tqdm(total=len(pairs), desc='frames', unit='frame', disable=None) as bar:
        for start in range(0, len(pairs), pipe.batch_size):
            for result in pipe.generate(pairs[start:start + pipe.batch_size], return_intermediates=args.panel,
                                        paste_back=args.paste_back):
                _write_result(frames_dir / f'{result.name}.png', result, args.panel)
                frames.append(result.final)
                bar.update()
    video = write_video(out, frames, fps=args.fps)
    if video.message:
        print(f'WARNING: {video.message}', file=sys.stderr)
    print(f'wrote {video.path} ({len(frames)} frames at {args.fps:g} fps) and every frame in {frames_dir}/')
    return {'mode': 'sequence', 'video': str(video.path), 'frames_dir': str(frames_dir), 'n_frames': len(frames),
            'message': video.message}


def _resolve(path: str, base: Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() else base / p


def _pair_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Rows ``{'row', 'source', 'target_pose', 'target_image', 'source_pose', 'source_entry', 'target_entry',
    'output'}`` (paths, entries or None)."""
    if args.pairs is None:
        target = {'target_pose': args.target_pose, 'target_image': args.target_image, 'source_entry': None,
                  'target_entry': args.target_entry}
        return [{'row': i, 'source': str(path), 'source_pose': None, 'output': f'{path.stem}.png', **target}
                for i, path in enumerate(list_images(args.source), start=1)]
    csv_path = Path(args.pairs)
    if not csv_path.is_file():
        raise FileNotFoundError(f'pairs file not found: {csv_path}')
    try:
        text = csv_path.read_text(encoding='utf-8-sig')
    except UnicodeDecodeError as e:
        raise UsageError(f'{csv_path} is not a UTF-8 text CSV file: {e}') from e
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    unknown = [h for h in header if h not in PAIR_COLUMNS]
    if 'source' not in header or not ({'target_pose', 'target_image'} & set(header)) or unknown:
        raise UsageError(f'{csv_path}: the header row must name the columns source and target_pose and/or '
                         f'target_image (optional: output, source_pose, source_entry, target_entry); got {header}'
                         + (f', unknown {unknown}' if unknown else ''))
    base = csv_path.parent
    rows = []
    for i, raw in enumerate(reader, start=1):
        values = {k.strip(): (v or '').strip() for k, v in raw.items() if k is not None}
        row = {'row': i, 'output': values.get('output') or None}
        for key in ('source', 'target_pose', 'target_image', 'source_pose'):
            row[key] = str(_resolve(values[key], base)) if values.get(key) else None
        for key in ('source_entry', 'target_entry'):
            row[key] = values.get(key) or None
        rows.append(row)
    if not rows:
        raise UsageError(f'{csv_path}: no pairs below the header row')
    return rows


def _output_name(row: dict[str, Any], used: dict[str, int]) -> str:
    """The row's output file name inside --out_dir; ValueError for an unusable or already used name."""
    if row['output']:
        name = row['output']
        path = Path(name)
        if path.is_absolute() or '..' in path.parts:
            raise ValueError(f'output {name!r} must be a file name inside --out_dir')
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            name = f'{name}.png'
    else:
        target = (Path(row['target_image']).stem if row['target_image'] else
                  row['target_entry'] or Path(row['target_pose']).stem)
        name = f'{Path(row["source"]).stem}_to_{target}.png'
        if name in used:
            name = f'{Path(name).stem}_row{row["row"]}.png'
    if name in used:
        raise ValueError(f'output {name!r} is already produced by row {used[name]}')
    return name


def _batch(pipe: PoseTransferPipeline, args: argparse.Namespace, prep: dict[str, Any]) -> dict[str, Any]:
    out_dir = Path(args.out_dir)
    rows = _pair_rows(args)
    manifest: list[dict[str, Any]] = []
    used: dict[str, int] = {}

    def record(row: dict[str, Any], output: str, status: str, reason: str = '') -> None:
        manifest.append({'row': row['row'], 'source': row['source'] or '',
                         'target': row['target_pose'] or row['target_image'] or '', 'output': output,
                         'status': status, 'reason': reason})

    def reason_of(e: Exception) -> str:
        return f'{type(e).__name__}: {e}'

    with tqdm(total=len(rows), desc='pairs', unit='pair', disable=None) as bar:
        for start in range(0, len(rows), pipe.batch_size):
            ready: list[tuple[dict[str, Any], str, PreparedPair]] = []
            for row in rows[start:start + pipe.batch_size]:
                try:
                    if not row['source']:
                        raise ValueError('no source photo in this row')
                    if not (row['target_pose'] or row['target_image']):
                        raise ValueError('no target_pose or target_image in this row')
                    name = _output_name(row, used)
                    used[name] = row['row']
                    pair = pipe.prepare(row['source'], _keypoint_file(row['target_pose'], row['target_entry']),
                                        target_image=row['target_image'],
                                        source_keypoints=_keypoint_file(row['source_pose'], row['source_entry']),
                                        name=Path(name).stem, **prep)
                    ready.append((row, name, pair))
                except Exception as e:  # one bad row never stops the rest; the manifest says why
                    record(row, '', 'failed', reason_of(e))
                    bar.update()
            try:
                results = pipe.generate([pair for _, _, pair in ready], return_intermediates=args.panel,
                                        paste_back=args.paste_back)
            except Exception as e:
                for row, _, _ in ready:
                    record(row, '', 'failed', reason_of(e))
                bar.update(len(ready))
                continue
            for (row, name, _), result in zip(ready, results):
                try:
                    _write_result(out_dir / name, result, args.panel)
                    record(row, name, 'ok')
                except Exception as e:
                    record(row, '', 'failed', reason_of(e))
                bar.update()
    manifest.sort(key=lambda r: r['row'])
    failed = [r for r in manifest if r['status'] != 'ok']
    summary = {'model': str(pipe.model_dir), 'which_epoch': pipe.which_epoch, 'n_rows': len(manifest),
               'n_produced': len(manifest) - len(failed), 'n_failed': len(failed), 'rows': manifest}
    save_json(summary, out_dir / 'manifest.json', indent=2)

    def write_csv(f) -> None:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(manifest)

    atomic_write(out_dir / 'manifest.csv', write_csv, mode='w')
    print(f'{summary["n_produced"]} of {len(manifest)} pair(s) produced in {out_dir}/, {len(failed)} failed '
          f'(see {out_dir / "manifest.csv"})')
    for r in failed:
        print(f'  row {r["row"]} ({r["source"]}): {r["reason"]}', file=sys.stderr)
    return {'mode': 'batch', **{k: v for k, v in summary.items() if k != 'rows'}, 'manifest': manifest}


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------
def run(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse, load the model and run one of the forms; raises on errors. Returns what was written."""
    args = build_parser().parse_args(argv)
    mode = _mode(args)
    pipe = PoseTransferPipeline.from_pretrained(
        args.model, device=args.device, which_epoch=args.which_epoch, bn_mode=args.bn_mode, detector='torchvision',
        detector_weights=args.detector_weights, batch_size=args.batch_size, framing_preset=args.framing_preset,
        confidence_threshold=args.confidence_threshold,
        detector_options={'person_score_thresh': args.detector_person_threshold,
                          'keypoint_score_thresh': args.detector_keypoint_threshold,
                          'min_size': args.detector_size[0], 'max_size': args.detector_size[1],
                          'max_detections': args.detector_max_persons})
    prep = {'framing': args.framing, 'target_scale': args.target_scale, 'person_index': args.person_index}
    if mode == 'single':
        return _single(pipe, args, prep)
    if mode == 'sequence':
        return _sequence(pipe, args, prep)
    return _batch(pipe, args, prep)


def main(argv: list[str] | None = None) -> int:
    """:func:`run` with errors printed as one line naming the file; exit status 0 / 1 (see the docstring)."""
    try:
        result = run(argv)
    except (ValueError, OSError, RuntimeError) as e:
        print(f'repose.py: error: {e}', file=sys.stderr)
        return 1
    return 1 if result.get('n_failed') else 0


if __name__ == '__main__':
    sys.exit(main())
