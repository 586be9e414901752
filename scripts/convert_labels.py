"""Rewrite a dataset's label pickles once as JSON (pose labels) / NPZ (attribute labels), next to the originals.

    python scripts/convert_labels.py --data_root datasets/deepfashion     # every Label/*.pkl of the dataset
    python scripts/convert_labels.py datasets/DF_Pose/Label/attr_label.pkl  # named pickles

The pickles are read with the restricted unpickler (no code in them can run); each converted file is written
atomically and records the SHA-256 of its pickle. From then on the datasets and the metric scripts read the
converted file (they say so once), and the pickles may be deleted. A converted file that is up to date is left
alone (``--force`` rewrites it); one made from an older pickle is rewritten. Exit status 1 if any file could not
be converted (the others are still converted). Formats: util/labels.py and docs/architecture.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _path  # noqa: F401

from util.labels import convert_label_file, converted_is_current, converted_label_path, load_label_file

LABEL_DIR = 'Label'


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], epilog=__doc__.split('\n\n', 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('files', nargs='*', type=Path, help='label pickles to convert')
    p.add_argument('--data_root', type=Path, default=None,
                   help=f'dataset folder: convert every *.pkl in its {LABEL_DIR}/ folder')
    p.add_argument('--force', action='store_true', help='rewrite converted files that are up to date')
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    files = list(args.files)
    if args.data_root is not None:
        label_dir = args.data_root / LABEL_DIR
        if not label_dir.is_dir():
            parser.error(f'{label_dir} not found: --data_root must be a dataset folder with a {LABEL_DIR}/ folder')
        found = sorted(label_dir.glob('*.pkl'))
        if not found:
            parser.error(f'no *.pkl file in {label_dir}')
        files += found
    if not files:
        parser.error('name label pickles or pass --data_root')
    failed = 0
    for path in files:
        try:
            if not path.is_file():
                raise FileNotFoundError(f'{path}: file not found')
            if converted_is_current(path) and not args.force:
                print(f'{converted_label_path(path)} is up to date (converted from {path}); skipped')
                continue
            out = convert_label_file(path)
            content = load_label_file(out)
            n = len(content['label']) if out.suffix == '.npz' else len(content)
            print(f'wrote {out} ({n} ids, from {path})')
        except (OSError, ValueError) as e:
            failed += 1
            print(f'error: {e}', file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
