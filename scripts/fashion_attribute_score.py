"""AttrRec-k (attribute recall@k and mean AP) of generated DeepFashion images, or (``--train``) training
of the attribute classifier.

    python scripts/fashion_attribute_score.py --test_dir checkpoints/PoseTransfer_0.5/test_test_best/images/
    python scripts/fashion_attribute_score.py --train --id my_classifier --fn_split ... --img_dir ...

Weights: ``checkpoints/Fashion_Attr/<id>/best.pth`` (or the README's ``Fasion_Attr``), or ``--weights``.
Labels: ``--fn_label`` (default ``datasets/DF_Pose/Label/attr_label.pkl``, falling back to
``datasets/deepfashion/Label/attr_label.pkl``). Prints ``mean_ap``, ``rec-3``, ``rec-5``, ``rec-10``, ``rec-20``.
"""
import _path  # noqa: F401

import _fashion_cli
from metrics.attr_rec import RECALL_KS, compute_attr_rec
from training.classifier import train_from_options
from util.device import select_device


def main(argv: list[str] | None = None) -> dict:
    parser = _fashion_cli.build_parser('attr')
    opt = parser.parse_args(argv)
    if opt.train:
        best, model = train_from_options(opt, 'attr')
        return {'best': str(best), 'model': model}
    if opt.test_dir is None:
        parser.error('--test_dir is required unless --train is given')
    result = compute_attr_rec(opt.test_dir, fn_label=opt.fn_label, exp_id=opt.id, checkpoints_dir=opt.checkpoints_dir,
                              weights_path=opt.weights, n_attr=opt.n_attr, rescale_size=opt.rescale_size,
                              crop_size=opt.crop_size, batch_size=opt.batch_size, ext=opt.ext,
                              device=select_device(opt.gpu_ids), max_batches=2 if opt.debug else None,
                              num_workers=opt.num_workers)
    print(f"AttrRec-k ({result['n_images']} images, labels {result['label_file']}, classifier {result['weights']})")
    print(f"mean_ap: {result['mean_ap']:f}")
    for k in RECALL_KS:
        print(f"rec-{k}: {result[f'rec-{k}']:f}")
    return result


if __name__ == '__main__':
    main()
