"""FashionIS of generated DeepFashion images, or (``--train``) training of its classifier.

    python scripts/fashion_inception_score.py --test_dir checkpoints/PoseTransfer_0.5/test_test_best/images/
    python scripts/fashion_inception_score.py --train --id my_classifier --fn_split ... --fn_label ... --img_dir ...

Weights: ``checkpoints/Fashion_Inception/<id>/best.pth`` (or the README's ``Fasion_Inception``), or ``--weights``.
Prints the folder and ``score: <mean>, std: <std>``.
"""
import _path  # noqa: F401

import _fashion_cli
from metrics.fashion_is import compute_fashion_is
from training.classifier import train_from_options
from util.device import select_device


def main(argv: list[str] | None = None) -> dict:
    parser = _fashion_cli.build_parser('inception')
    opt = parser.parse_args(argv)
    if opt.train:
        best, model = train_from_options(opt, 'inception')
        return {'best': str(best), 'model': model}
    if opt.test_dir is None:
        parser.error('--test_dir is required unless --train is given')
    result = compute_fashion_is(opt.test_dir, exp_id=opt.id, checkpoints_dir=opt.checkpoints_dir,
                                weights_path=opt.weights, n_class=opt.n_class, rescale_size=opt.rescale_size,
                                crop_size=opt.crop_size, batch_size=opt.batch_size, n_splits=opt.n_test_split,
                                ext=opt.ext, device=select_device(opt.gpu_ids),
                                max_batches=2 if opt.debug else None, num_workers=opt.num_workers)
    print(f"FashionIS ({result['n_images']} images, classifier {result['weights']}, {opt.n_test_split} splits)")
    print(opt.test_dir)
    print(f"score: {result['fashion_is']:f}, std: {result['fashion_is_std']:f}")
    return result


if __name__ == '__main__':
    main()
