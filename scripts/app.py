"""Try the trained models in the browser: a web page to re-pose a person (a thin command line over webapp.page).

    pip install -r requirements-app.txt
    python scripts/app.py                      # http://127.0.0.1:7860, the models under checkpoints/

The page offers the pose-transfer experiment folders under --checkpoints_dir, the test images and poses of each
model's dataset (when it is on this machine), uploads of photos and keypoint files, a joint-by-joint pose editor,
the intermediate panels and pose sequences as animations. Requests run one at a time; uploads are limited to
--max_upload_mb.

The server listens on 127.0.0.1 only (this machine). --host 0.0.0.0 or --share expose it to others: anyone who can
reach it can upload files to it and run the model, with no login.
"""
import _path  # noqa: F401

import argparse
import logging
import sys

from webapp.service import ReposeService
from webapp.uploads import MAX_UPLOAD_BYTES

DEFAULT_HOST = '127.0.0.1'


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    p.add_argument('--checkpoints_dir', default='checkpoints', help='folder of the experiment folders to offer')
    p.add_argument('--model', default=None, help='experiment folder name chosen when the page opens '
                                                 '(default: the first one)')
    p.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N')
    p.add_argument('--port', type=int, default=7860, help='port of the server')
    p.add_argument('--host', default=DEFAULT_HOST,
                   help='address to listen on (default 127.0.0.1: this machine only). WARNING: another address '
                        '(e.g. 0.0.0.0) exposes the page to the network: anyone who reaches it can upload files and '
                        'run the model, without a login')
    p.add_argument('--share', action='store_true',
                   help="WARNING: also publish the page through Gradio's public share link (needs internet access): "
                        'anyone with the link can use it. Off by default')
    p.add_argument('--detector_weights', default=None,
                   help='Keypoint R-CNN weights for photos uploaded without keypoints (default: the torch hub cache; '
                        'never downloaded)')
    p.add_argument('--max_upload_mb', type=float, default=MAX_UPLOAD_BYTES / 2**20, help='size limit of uploads')
    p.add_argument('--queue_size', type=int, default=16, help='requests that may wait for the model')
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    if args.max_upload_mb <= 0 or args.queue_size < 1:
        print('app.py: error: --max_upload_mb must be positive and --queue_size at least 1', file=sys.stderr)
        return 2
    try:
        from webapp.page import build_page, launch  # gradio is optional: requirements-app.txt
    except ModuleNotFoundError as e:
        print(f'app.py: error: {e.name} is not installed; run: pip install -r requirements-app.txt', file=sys.stderr)
        return 1
    if args.host != DEFAULT_HOST or args.share:
        print(f'WARNING: the page is exposed ({"share link" if args.share else args.host}): anyone who reaches it '
              f'can upload files and run the model.', file=sys.stderr)
    max_bytes = int(args.max_upload_mb * 2**20)
    service = ReposeService(args.checkpoints_dir, device=args.device, detector_weights=args.detector_weights,
                            max_upload_bytes=max_bytes)
    if not service.models():
        print(f'note: {service.no_models_message()}', file=sys.stderr)
    try:
        launch(build_page(service, args.model), host=args.host, port=args.port, share=args.share,
               max_upload_bytes=max_bytes, queue_size=args.queue_size)
    finally:
        service.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
