"""The test runs' results folder: fresh or refused, replaced only with --overwrite, published in one rename, never
left half-written, never shared by two runs at once."""
from __future__ import annotations

import multiprocessing
import os

import pytest

from metrics.image_folder import list_images
from training.evaluation import ResultsFolder, results_folder_name


def write_run(base, marker: str, n_images: int, overwrite: bool = False) -> ResultsFolder:
    """A complete fake test run: options file, a grid and ``n_images`` images named after ``marker``."""
    results = ResultsFolder(base, 'test', 'best', overwrite=overwrite)
    with results:
        (results.work / 'test_opt.json').write_text('{}')
        (results.work / 'vis.jpg').write_bytes(b'grid')
        (results.work / 'images').mkdir()
        for i in range(n_images):
            (results.work / 'images' / f'{marker}{i}_x.jpg').write_bytes(b'jpg')
    return results


def tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*'))


def test_name_is_split_and_epoch(tmp_path):
    assert results_folder_name('test_small', 'best') == 'test_test_small_best'
    assert ResultsFolder(tmp_path, 'test', '5').final == tmp_path / 'test_test_5'
    for split, epoch in [('../x', 'best'), ('test', 'a/b'), ('.hidden', 'best'), ('test', '')]:
        with pytest.raises(ValueError, match='results folder name'):
            results_folder_name(split, epoch)


def test_fresh_folder_is_published_whole(tmp_path):
    results = ResultsFolder(tmp_path, 'test', 'best')
    with results:
        (results.work / 'test_opt.json').write_text('{}')
        # nothing is visible under the final name while the test runs
        assert not results.final.exists() and results.work.name == '.test_test_best.partial'
    assert tree(tmp_path) == ['test_test_best', 'test_test_best/test_opt.json']


def test_second_run_is_refused_without_overwrite_and_leaves_the_first_alone(tmp_path):
    write_run(tmp_path, 'a', 3)
    before = tree(tmp_path)
    with pytest.raises(FileExistsError, match='--overwrite') as info:
        ResultsFolder(tmp_path, 'test', 'best')
    assert '--results_dir' in str(info.value) and str(tmp_path / 'test_test_best') in str(info.value)
    assert tree(tmp_path) == before


def test_overwrite_replaces_instead_of_mixing(tmp_path):
    """The original wrote into one output/ folder: a smaller second run left the first run's extra images there."""
    write_run(tmp_path, 'old', 5)
    write_run(tmp_path, 'new', 2, overwrite=True)
    assert [p.name for p in list_images(tmp_path / 'test_test_best')] == ['new0_x.jpg', 'new1_x.jpg']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['test_test_best']  # no partial or old folder left


def test_failed_run_leaves_nothing_and_keeps_the_earlier_results(tmp_path):
    write_run(tmp_path, 'old', 2)
    before = tree(tmp_path)
    with pytest.raises(RuntimeError, match='boom'):
        with ResultsFolder(tmp_path, 'test', 'best', overwrite=True) as results:
            (results.work / 'images').mkdir()
            (results.work / 'images' / 'half_x.jpg').write_bytes(b'jpg')
            raise RuntimeError('boom')
    assert tree(tmp_path) == before


def test_leftovers_of_an_interrupted_run_are_removed(tmp_path, capsys):
    partial = tmp_path / '.test_test_best.partial'
    (partial / 'images').mkdir(parents=True)
    (partial / 'images' / 'stale_x.jpg').write_bytes(b'jpg')
    (tmp_path / '.test_test_best.old').mkdir()  # killed between the two renames of an --overwrite publish
    write_run(tmp_path, 'new', 1)
    assert 'interrupted test' in capsys.readouterr().out
    assert tree(tmp_path) == ['test_test_best', 'test_test_best/images', 'test_test_best/images/new0_x.jpg',
                              'test_test_best/test_opt.json', 'test_test_best/vis.jpg']


def test_overwrite_never_deletes_a_folder_that_is_not_a_results_folder(tmp_path):
    mine = tmp_path / 'test_test_best'
    mine.mkdir()
    (mine / 'thesis.tex').write_text('precious')
    with pytest.raises(FileExistsError, match='not a test results folder'):
        ResultsFolder(tmp_path, 'test', 'best', overwrite=True)
    assert (mine / 'thesis.tex').read_text() == 'precious'


def _hold_the_lock(base, ready, release):
    with ResultsFolder(base, 'test', 'best') as results:
        (results.work / 'test_opt.json').write_text('{}')
        ready.set()
        release.wait(30)


def test_two_runs_of_the_same_name_cannot_write_at_once(tmp_path):
    ctx = multiprocessing.get_context('fork')
    ready, release = ctx.Event(), ctx.Event()
    other = ctx.Process(target=_hold_the_lock, args=(tmp_path, ready, release))
    other.start()
    try:
        assert ready.wait(30)
        with pytest.raises(RuntimeError, match='another test is writing'):
            with ResultsFolder(tmp_path, 'test', 'best'):
                pass
        # the refused run did not touch the running one's files
        assert (tmp_path / '.test_test_best.partial' / 'test_opt.json').is_file()
    finally:
        release.set()
        other.join(30)
    assert other.exitcode == 0
    assert tree(tmp_path) == ['test_test_best', 'test_test_best/test_opt.json']


def test_unwritable_place_names_results_dir(tmp_path):
    # A file where the folder should go makes the creation fail like a read-only experiment folder would.
    (tmp_path / 'exp').write_text('not a folder')
    with pytest.raises(OSError, match='--results_dir'):
        with ResultsFolder(tmp_path / 'exp', 'test', 'best'):
            pass


def test_metric_folder_listing_uses_the_images_of_a_results_folder(tmp_path):
    write_run(tmp_path, 'a', 2)
    results_dir = tmp_path / 'test_test_best'
    # the results folder itself: its images/, never the grid beside them
    assert [p.name for p in list_images(results_dir)] == ['a0_x.jpg', 'a1_x.jpg']
    assert list_images(results_dir) == list_images(results_dir / 'images')


def test_metric_folder_listing_refuses_unfinished_or_imageless_results(tmp_path):
    results = ResultsFolder(tmp_path, 'test', 'best')
    with results:
        (results.work / 'test_opt.json').write_text('{}')
        (results.work / 'images').mkdir()
        (results.work / 'images' / 'a_x.jpg').write_bytes(b'jpg')
        for folder in (results.work, results.work / 'images'):
            with pytest.raises(ValueError, match='not finished'):
                list_images(folder)
        os.remove(results.work / 'images' / 'a_x.jpg')
        os.rmdir(results.work / 'images')
    with pytest.raises(FileNotFoundError, match='--save_output'):
        list_images(results.final)
