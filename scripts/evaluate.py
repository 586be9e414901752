"""Evaluate a folder of generated images under a named protocol (every metric in one pass over the images).

    python scripts/evaluate.py --results_dir checkpoints/PoseTransfer_0.5/test_test_best --protocol intrinsic_flow
    python scripts/evaluate.py --results_dir ... --protocol gfla [--real_dir <training images>]
    python scripts/evaluate.py --results_dir ... --metrics ssim,mask_ssim,psnr,lpips,fid --out report.json
    python scripts/evaluate.py --test_json checkpoints/PoseTransfer_0.5/test_test_best/metrics.json --protocol gfla
    python scripts/evaluate.py --results_dir ... --protocol gfla_256x176 --set image.resize_rule=cv2_bilinear
    python scripts/evaluate.py --combine a.json b.json ... --md_out table.md
    python scripts/evaluate.py --list_protocols

Generated images are ``<id_1>_<id_2>.jpg`` (what ``scripts/test_pose_transfer.py --save_output`` writes); targets
and keypoints come from the dataset's split file (``--dataset_name``, ``--data_root``, ``--split``) or from
``--gt_dir`` (+ ``--pose_file``). The report (values, settings, image counts, library versions, SHA-256 of every
weights file) goes to ``--out`` (default ``<results_dir>/../eval_<results_dir name>_<protocol>.json``) and a
Markdown row is printed. Protocols and their sources: docs/evaluation.md.
"""
import _path  # noqa: F401

import argparse
import sys
from pathlib import Path

from metrics.image_folder import results_folder_of
from metrics.image_prep import DATASET_NAMES
from metrics.protocols import METRIC_NAMES, PROTOCOLS, SECTIONS
from training.protocol_eval import (EvalConfig, EvaluationError, WeightPaths, evaluate_results, markdown_table,
                                    save_report)
from util.device import select_device
from util.io import atomic_write, load_json


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter)
    src = p.add_argument_group('inputs')
    src.add_argument('--results_dir', help='a test results folder test_<split>_<epoch>/ (its images/ are scored) '
                                           'or any folder of generated <id_1>_<id_2>.jpg images')
    src.add_argument('--test_json', help="the metrics.json of a test results folder of scripts/test_pose_transfer.py: "
                                         "takes the images ('output_dir') and the dataset options from it")
    src.add_argument('--dataset_name', choices=DATASET_NAMES, default=None,
                     help='dataset of the results (default deepfashion, or the one in --test_json)')
    src.add_argument('--data_root', help="dataset folder (default: the dataset's preset, e.g. datasets/deepfashion/)")
    src.add_argument('--split', default=None, help="split of the split file the results belong to (default test)")
    src.add_argument('--image_size', type=int, nargs=2, metavar=('H', 'W'),
                     help="the dataset's image size on disk (default: its preset, 256 256 / 128 64)")
    src.add_argument('--gt_dir', help='instead of a dataset: folder of target images <id_2>.<ext>')
    src.add_argument('--pose_file', help='with --gt_dir: pose pickle {id: 18 (x, y)} for the masked metrics')
    src.add_argument('--real_dir', help='FID real set: a folder of training images (default: the images of the '
                                        "split file's train pairs)")
    prot = p.add_argument_group('protocol')
    prot.add_argument('--protocol', default='intrinsic_flow', choices=sorted(PROTOCOLS))
    prot.add_argument('--metrics', help=f'comma-separated subset or extras of: {",".join(METRIC_NAMES)} '
                                        f'(default: the protocol\'s list for the dataset)')
    prot.add_argument('--set', dest='overrides', action='append', default=[], metavar='SECTION.FIELD=VALUE',
                      help=f'change one setting (repeatable); sections: {", ".join(SECTIONS)}; the report then names '
                           f'the protocol "custom" and lists the changes. E.g. --set ssim_gauss.sigma=1.2')
    prot.add_argument('--list_protocols', action='store_true', help='print every protocol\'s settings and exit')
    w = p.add_argument_group('weights (missing files skip only their metric; see README "Weight files")')
    w.add_argument('--inception_weights', help='torch-fidelity weights-inception-2015-12-05-6726825d.pth (IS, and '
                                               'FID with fid.backend=torch_fidelity)')
    w.add_argument('--tf_graph_dir', default=WeightPaths.tf_graph_dir, help='folder of classify_image_graph_def.pb '
                                                                             '(IS with inception.backend=tf)')
    w.add_argument('--fid_weights', help='torchvision inception_v3_google-0cc3c7bd.pth (GFLA FID)')
    w.add_argument('--alexnet_weights', help='torchvision alexnet-owt-7be5be79.pth (LPIPS)')
    w.add_argument('--checkpoints_dir', default='checkpoints', help='holds Fashion_Inception/ and Fashion_Attr/')
    w.add_argument('--fashion_inception_weights', help='FashionIS classifier best.pth')
    w.add_argument('--fashion_attr_weights', help='AttrRec classifier best.pth')
    w.add_argument('--attr_label_file', help='attr_label.pkl (AttrRec)')
    run = p.add_argument_group('run')
    run.add_argument('--gpu_ids', default='-1', help="GPU id ('-1': CPU; the CPU is used when CUDA is missing)")
    run.add_argument('--device', help='explicit torch device (cpu, cuda:1), overrides --gpu_ids')
    run.add_argument('--batch_size', type=int, default=32, help='pairs decoded and scored at a time (no effect on '
                                                                'the values)')
    run.add_argument('--strict', action='store_true', help='a missing weights file, a skipped image or a pair of the '
                                                           'split without an image is an error')
    run.add_argument('--label', help='model name in the Markdown row (default: the experiment folder)')
    run.add_argument('--out', help='report JSON path')
    run.add_argument('--md_out', help='also write the Markdown table to this file')
    run.add_argument('--combine', nargs='+', metavar='JSON', help='only combine existing reports into one Markdown '
                                                                  'table (printed, and written to --md_out)')
    run.add_argument('--no_progress', action='store_true', help='no progress bars')
    return p


def list_protocols() -> str:
    lines = []
    for name, protocol in PROTOCOLS.items():
        lines.append(f'{name}: {protocol.summary}')
        for dataset in DATASET_NAMES:
            lines.append(f'  metrics on {dataset}: {", ".join(protocol.metrics(dataset))}')
        for section, values in protocol.settings().items():
            lines.append(f'  {section}: ' + ', '.join(f'{k}={v}' for k, v in values.items()))
    return '\n'.join(lines)


def config_from_args(opt: argparse.Namespace) -> EvalConfig:
    fields = {}
    if opt.test_json:
        test = load_json(opt.test_json)
        if not test.get('output_dir'):
            raise EvaluationError(f"{opt.test_json} has no 'output_dir': the test was run without --save_output")
        options = test.get('options', {})
        fields.update(results_dir=test['output_dir'], dataset_name=options.get('dataset_name'),
                      data_root=options.get('data_root'), split=test.get('split'), fn_split=options.get('fn_split'),
                      img_dir=options.get('img_dir'), fn_pose=options.get('fn_pose'),
                      image_size=options.get('image_size'), label=test.get('id'))
    given = dict(results_dir=opt.results_dir, dataset_name=opt.dataset_name, data_root=opt.data_root,
                 split=opt.split, image_size=opt.image_size, label=opt.label)
    fields.update({k: v for k, v in given.items() if v is not None})
    if not fields.get('results_dir'):
        raise EvaluationError('pass --results_dir (or --test_json)')
    fields.setdefault('dataset_name', 'deepfashion')
    fields = {k: v for k, v in fields.items() if v is not None}
    device = opt.device or str(select_device(opt.gpu_ids))
    weights = WeightPaths(inception=opt.inception_weights, tf_graph_dir=opt.tf_graph_dir,
                          fid_torchvision=opt.fid_weights, alexnet=opt.alexnet_weights,
                          checkpoints_dir=opt.checkpoints_dir, fashion_inception=opt.fashion_inception_weights,
                          fashion_attr=opt.fashion_attr_weights, attr_labels=opt.attr_label_file)
    metrics = [m.strip() for m in opt.metrics.split(',') if m.strip()] if opt.metrics else None
    return EvalConfig(**fields, protocol=opt.protocol, overrides=opt.overrides, metrics=metrics, gt_dir=opt.gt_dir,
                      pose_file=opt.pose_file, real_dir=opt.real_dir, weights=weights, device=device,
                      batch_size=opt.batch_size, strict=opt.strict, progress=not opt.no_progress)


def main(argv: list[str] | None = None) -> dict | str:
    opt = build_parser().parse_args(argv)
    if opt.list_protocols:
        text = list_protocols()
        print(text)
        return text
    if opt.combine:
        table = markdown_table([load_json(path) for path in opt.combine])
        print(table, end='')
        if opt.md_out:
            atomic_write(opt.md_out, lambda f: f.write(table), mode='w')
        return table
    cfg = config_from_args(opt)
    report = evaluate_results(cfg)
    results_dir = results_folder_of(cfg.results_dir)  # the report goes beside the results folder, named after it
    out = Path(opt.out) if opt.out else results_dir.parent / f'eval_{results_dir.name}_{report["protocol"]}.json'
    save_report(report, out)
    if opt.md_out:
        atomic_write(opt.md_out, lambda f: f.write(report['markdown']), mode='w')
    print(report['markdown'], end='')
    if report['changes']:
        print(f"protocol custom (from {report['base_protocol']}), changed: {report['changes']}")
    print(f'report written to {out}')
    report['json'] = str(out)
    return report


if __name__ == '__main__':
    try:
        main()
    except EvaluationError as e:
        sys.exit(f'error: {e}')
