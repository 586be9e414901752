"""Download module: checksum verification and safe extraction on small local archives (no network)."""
from __future__ import annotations

import hashlib
import io
import re
import stat
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import data.download as dl
from data.download import (ARCHIVES, ChecksumError, DownloadError, UnsafeArchiveError, safe_extract, sha256sum,
                           verify_checksum)

REPO = Path(__file__).resolve().parents[2]


def _make_tar(path: Path, members: list[tuple[str, str, bytes | str | None]]) -> Path:
    """members: (name, kind, payload) with kind 'file' (bytes), 'dir', 'sym'/'hard' (link target), 'chr'."""
    with tarfile.open(path, 'w:gz') as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == 'file':
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {'dir': tarfile.DIRTYPE, 'sym': tarfile.SYMTYPE, 'hard': tarfile.LNKTYPE,
                         'chr': tarfile.CHRTYPE}[kind]
            if kind in ('sym', 'hard'):
                info.linkname = payload
            tar.addfile(info)
    return path


def test_extracts_a_good_archive(tmp_path: Path) -> None:
    archive = _make_tar(tmp_path / 'good.tgz', [
        ('deepfashion', 'dir', None), ('deepfashion/Img/img/a.jpg', 'file', b'jpeg-bytes'),
        ('deepfashion/Label/pair_split.json', 'file', b'{}'), ('deepfashion/link', 'sym', 'Img/img/a.jpg')])
    target = tmp_path / 'datasets'
    names = safe_extract(archive, target)
    assert names[0] == 'deepfashion' and len(names) == 4
    assert (target / 'deepfashion/Img/img/a.jpg').read_bytes() == b'jpeg-bytes'
    assert (target / 'deepfashion/link').read_bytes() == b'jpeg-bytes'


@pytest.mark.parametrize('members,bad', [
    ([('ok.txt', 'file', b'x'), ('../evil', 'file', b'pwned')], '../evil'),
    ([('ok.txt', 'file', b'x'), ('sub/../../evil', 'file', b'pwned')], 'sub/../../evil'),
    ([('/tmp/evil_abs_member', 'file', b'pwned')], '/tmp/evil_abs_member'),
    ([('escape', 'sym', '../outside'), ('escape/evil', 'file', b'pwned')], 'escape'),
    ([('abs_link', 'sym', '/etc')], 'abs_link'),
    ([('here', 'sym', '.'), ('up', 'sym', 'here/..')], 'up'),  # a chain through a benign link
    ([('hard', 'hard', '../outside/file')], 'hard'),
    ([('dev/null', 'chr', None)], 'dev/null'),
])
def test_refuses_malicious_members_and_writes_nothing(tmp_path: Path, members: list, bad: str) -> None:
    archive = _make_tar(tmp_path / 'bad.tgz', members)
    target = tmp_path / 'box' / 'target'
    with pytest.raises(UnsafeArchiveError, match=f"refusing archive member '{bad}'"):
        safe_extract(archive, target)
    assert list(target.iterdir()) == []  # nothing extracted, not even the harmless members
    assert sorted(p.name for p in (tmp_path / 'box').iterdir()) == ['target']
    assert not (tmp_path / 'evil').exists() and not Path('/tmp/evil_abs_member').exists()


def test_checksums(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    f = tmp_path / 'a.tgz'
    f.write_bytes(b'hello archive')
    digest = hashlib.sha256(b'hello archive').hexdigest()
    assert sha256sum(f) == digest
    assert verify_checksum(f, digest.upper()) is True
    assert verify_checksum(f, None) is False
    assert 'no checksum known, skipped' in capsys.readouterr().out
    with pytest.raises(ChecksumError, match=f'{f}.*{"0" * 64}'):
        verify_checksum(f, '0' * 64)


def test_download_flow_with_local_fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _make_tar(tmp_path / 'src.tgz', [('market1501/Images/img/x.jpg', 'file', b'abc')])

    def fake_fetch(archive, dest):  # stands in for gdown
        dest.write_bytes(source.read_bytes())
        return dest

    monkeypatch.setattr(dl, 'fetch', fake_fetch)
    root = tmp_path / 'repo'
    target = dl.download('market1501', root)
    assert target == root / 'datasets'
    assert (target / 'market1501/Images/img/x.jpg').read_bytes() == b'abc'
    assert not (target / 'market1501.tgz').exists()  # archive removed after extraction
    # A known checksum that does not match stops before extraction and keeps the archive.
    monkeypatch.setitem(ARCHIVES, 'models', ARCHIVES['models'].__class__(
        'models', 'ID', 'pretrained_models.tgz', 'checkpoints', '', sha256='f' * 64))
    with pytest.raises(ChecksumError):
        dl.download('models', root)
    assert (root / 'checkpoints/pretrained_models.tgz').exists() and not (root / 'checkpoints/market1501').exists()


def test_download_failure_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture) -> None:
    def truncated_fetch(archive, dest):
        dest.write_bytes(source[: len(source) // 2])
        return dest

    src = _make_tar(tmp_path / 'src.tgz', [(f'f{i}', 'file', bytes(range(256)) * 64) for i in range(20)])
    source = src.read_bytes()
    monkeypatch.setattr(dl, 'fetch', truncated_fetch)
    with pytest.raises(DownloadError, match='drive.google.com/open\\?id=1_VJh4TlVRMoIgkZSaicgICfye3s5eaVJ'):
        dl.download('deepfashion', tmp_path / 'repo')
    assert dl.main(['deepfashion', '--root', str(tmp_path / 'repo2')]) == 1
    err = capsys.readouterr().err
    assert 'error:' in err
    assert 'manual download: https://drive.google.com/open?id=1_VJh4TlVRMoIgkZSaicgICfye3s5eaVJ' in err
    with pytest.raises(ValueError, match="valid names are \\['deepfashion', 'market1501', 'models'\\]"):
        dl.download('imagenet', tmp_path)


def test_archive_table_matches_spec() -> None:
    assert {k: (a.drive_id, a.filename, a.target) for k, a in ARCHIVES.items()} == {
        'deepfashion': ('1_VJh4TlVRMoIgkZSaicgICfye3s5eaVJ', 'deepfashion.tgz', 'datasets'),
        'market1501': ('1p1Jl-U4OTgmiVLUCAdyNjAo3sI56mtHa', 'market1501.tgz', 'datasets'),
        'models': ('1eClRS7is1fVTXxelOv5g7ziSGTfuSb1U', 'pretrained_models.tgz', 'checkpoints'),
    }


@pytest.mark.parametrize('script,name', [('download_deepfashion.sh', 'deepfashion'),
                                         ('download_market1501.sh', 'market1501'),
                                         ('download_models.sh', 'models')])
def test_shell_wrappers_call_the_module_from_any_cwd(tmp_path: Path, script: str, name: str) -> None:
    # --help exits before any network access; the wrapper must find the repo from another folder.
    res = subprocess.run(['bash', str(REPO / 'scripts' / script), '--help'], cwd=tmp_path, capture_output=True,
                         text=True, env={'PATH': '/usr/bin:/bin', 'PYTHON': sys.executable}, timeout=60)
    assert res.returncode == 0, res.stderr
    assert 'usage:' in res.stdout and 'keep_archive' in res.stdout


# ------------------------------------------------------------------------------------------- archives already present

def _make_zip(path: Path, members: list[tuple[str, str, bytes | str | None]]) -> Path:
    """members: (name, kind, payload) with kind 'file', 'dir', 'sym' (link target), 'chr', 'fifo'."""
    modes = {'file': stat.S_IFREG | 0o644, 'dir': stat.S_IFDIR | 0o755, 'sym': stat.S_IFLNK | 0o777,
             'chr': stat.S_IFCHR | 0o600, 'fifo': stat.S_IFIFO | 0o600}
    with zipfile.ZipFile(path, 'w') as zf:
        for name, kind, payload in members:
            info = zipfile.ZipInfo(name + ('/' if kind == 'dir' and not name.endswith('/') else ''))
            info.external_attr = modes[kind] << 16
            info.create_system = 3  # Unix: the mode bits above are meaningful
            data = payload.encode() if isinstance(payload, str) else (payload or b'')
            zf.writestr(info, data)
    return path


def _no_download(archive, dest):
    raise AssertionError('gdown must not be called when the archive is already present')


@pytest.mark.parametrize('name,maker', [('market1501.tgz', _make_tar), ('market1501.tar', _make_tar),
                                        ('market1501.zip', _make_zip)])
def test_archive_already_present_is_used_without_downloading(tmp_path, monkeypatch, capsys, name, maker) -> None:
    monkeypatch.setattr(dl, 'fetch', _no_download)
    monkeypatch.setitem(sys.modules, 'gdown', None)  # importing gdown would fail
    root = tmp_path / 'repo'
    (root / 'datasets').mkdir(parents=True)
    archive = maker(root / 'datasets' / name, [('market1501/Images/img/x.jpg', 'file', b'abc'),
                                               ('market1501/Label', 'dir', None)])
    target = dl.download('market1501', root, keep_archive=True)
    assert (target / 'market1501/Images/img/x.jpg').read_bytes() == b'abc'
    out = capsys.readouterr().out
    assert f'using {archive}' in out and 'no checksum known' in out
    assert archive.exists()  # --keep_archive
    dl.download('market1501', root)
    assert not archive.exists()


def test_present_archive_is_checked_against_a_known_checksum(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(dl, 'fetch', _no_download)
    root = tmp_path / 'repo'
    (root / 'checkpoints').mkdir(parents=True)
    archive = _make_tar(root / 'checkpoints' / 'pretrained_models.tgz', [('PoseTransfer_0.5/x.pth', 'file', b'w')])
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(ARCHIVES, 'models', dl.Archive('models', 'ID', 'pretrained_models.tgz', 'checkpoints', '',
                                                       sha256='0' * 64))
    with pytest.raises(ChecksumError, match=str(archive)):
        dl.download('models', root)
    assert not (root / 'checkpoints/PoseTransfer_0.5').exists() and archive.exists()
    monkeypatch.setitem(ARCHIVES, 'models', dl.Archive('models', 'ID', 'pretrained_models.tgz', 'checkpoints', '',
                                                       sha256=digest))
    dl.download('models', root, keep_archive=True)
    assert 'SHA-256 verified' in capsys.readouterr().out
    # The published checksum is that of the .tgz: a zip of the same content cannot be checked against it.
    archive.unlink()
    zipped = _make_zip(root / 'checkpoints' / 'pretrained_models.zip', [('PoseTransfer_0.5/x.pth', 'file', b'w')])
    dl.download('models', root)
    assert f'{zipped}: no checksum known' in capsys.readouterr().out


def test_two_present_archives_are_ambiguous(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(dl, 'fetch', _no_download)
    root = tmp_path / 'repo'
    (root / 'datasets').mkdir(parents=True)
    _make_tar(root / 'datasets' / 'deepfashion.tgz', [('a', 'file', b'1')])
    _make_zip(root / 'datasets' / 'deepfashion.zip', [('a', 'file', b'1')])
    with pytest.raises(DownloadError, match='deepfashion.tgz.*deepfashion.zip'):
        dl.download('deepfashion', root)


def test_download_message_says_where_to_put_the_archive(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, 'gdown', None)
    with pytest.raises(DownloadError, match=r'datasets/market1501\.tgz.*\.zip'):
        dl.download('market1501', tmp_path / 'repo')


def test_extracts_a_good_zip(tmp_path: Path) -> None:
    archive = _make_zip(tmp_path / 'good.zip', [
        ('deepfashion', 'dir', None), ('deepfashion/Img/img/a.jpg', 'file', b'jpeg-bytes'),
        ('deepfashion/link', 'sym', 'Img/img/a.jpg')])
    target = tmp_path / 'datasets'
    names = safe_extract(archive, target)
    assert len(names) == 3
    assert (target / 'deepfashion/Img/img/a.jpg').read_bytes() == b'jpeg-bytes'
    assert (target / 'deepfashion/link').is_symlink() and (target / 'deepfashion/link').read_bytes() == b'jpeg-bytes'


@pytest.mark.parametrize('members,bad', [
    ([('ok.txt', 'file', b'x'), ('../evil', 'file', b'pwned')], '../evil'),
    ([('ok.txt', 'file', b'x'), ('sub/../../evil', 'file', b'pwned')], 'sub/../../evil'),
    ([('/tmp/evil_abs_zip_member', 'file', b'pwned')], '/tmp/evil_abs_zip_member'),
    ([('C:\\evil', 'file', b'pwned')], 'C:\\evil'),
    ([('escape', 'sym', '../outside'), ('escape/evil', 'file', b'pwned')], 'escape'),
    ([('abs_link', 'sym', '/etc')], 'abs_link'),
    ([('here', 'sym', '.'), ('up', 'sym', 'here/..')], 'up'),
    ([('dev/null', 'chr', None)], 'dev/null'),
    ([('pipe', 'fifo', None)], 'pipe'),
])
def test_refuses_malicious_zip_members_and_writes_nothing(tmp_path: Path, members: list, bad: str) -> None:
    archive = _make_zip(tmp_path / 'bad.zip', members)
    target = tmp_path / 'box' / 'target'
    with pytest.raises(UnsafeArchiveError, match=f'refusing archive member {re.escape(repr(bad))}'):
        safe_extract(archive, target)
    assert list(target.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / 'box').iterdir()) == ['target']
    assert not (tmp_path / 'evil').exists() and not Path('/tmp/evil_abs_zip_member').exists()


def test_not_an_archive(tmp_path: Path) -> None:
    bogus = tmp_path / 'deepfashion.tgz'
    bogus.write_text('<html>Google Drive - quota exceeded</html>')
    with pytest.raises(DownloadError, match=f'{bogus}.*neither a tar nor a zip archive'):
        safe_extract(bogus, tmp_path / 'out')
