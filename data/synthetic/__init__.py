"""Synthetic people with exact dense correspondence, written in the DeepFashion on-disk layout.

The ``demo`` dataset of the quick start, the fixture of the pipeline tests and a debugging tool: every
pair's ``.corr`` file is exact by construction (see ``body.py`` for the model, ``render.py`` for the
rendering and the correspondence, ``generate.py`` for the files, ``check.py`` for the warp self-check).
CLI: ``python scripts/make_demo_dataset.py``.
"""
import os

from data.synthetic.generate import (MANIFEST_NAME, DemoConfig, generate_demo_dataset, image_id, is_complete,
                                     make_scene, parse_image_id, read_manifest)

# The quick start's name for the completeness test (a valid manifest.json, written last; with a config:
# generated with exactly that config).
dataset_is_complete = is_complete


def self_check(root: str | os.PathLike, n_pairs: int = 64) -> dict:
    """See :func:`data.synthetic.check.self_check` (imported lazily: it needs torch)."""
    from data.synthetic.check import self_check as _self_check
    return _self_check(root, n_pairs=n_pairs)


__all__ = ['MANIFEST_NAME', 'DemoConfig', 'dataset_is_complete', 'generate_demo_dataset', 'image_id', 'is_complete',
           'make_scene', 'parse_image_id', 'read_manifest', 'self_check']
