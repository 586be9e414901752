"""Download, verify and safely extract the authors' archives.

    python -m data.download {deepfashion,market1501,models} [--keep_archive] [--root .]

Run from the repository root (the ``scripts/download_*.sh`` wrappers do that). An archive that is already in the
target folder (``datasets/deepfashion.tgz``, or the same name ending ``.tar.gz``, ``.tar`` or ``.zip``, e.g. one
downloaded by hand) is used as it is and nothing is downloaded; otherwise the archive is fetched from Google Drive
with ``gdown`` (a partial download is resumed). Its SHA-256 is checked when one is known, it is extracted into the
target folder with a member-by-member safety check for tar and zip alike (no absolute paths, no ``..``, no links
pointing outside the target, no device files or FIFOs; plus tarfile's ``filter='data'``), and deleted after a
successful extraction (``--keep_archive`` keeps it). Every step names the file it uses; on failure the message
gives the manual download link and where to put the file.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import stat
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Archive:
    """One downloadable archive: Google-Drive id, file name, target folder (relative to the repo root)."""

    name: str
    drive_id: str
    filename: str
    target: str
    size_hint: str
    sha256: str | None = None  # None: no published checksum

    @property
    def manual_url(self) -> str:
        return f'https://drive.google.com/open?id={self.drive_id}'

    @property
    def stem(self) -> str:
        return self.filename.removesuffix('.tgz')

    @property
    def local_names(self) -> tuple[str, ...]:
        """File names under which an archive already in the target folder is used (tar or zip)."""
        return (self.filename, f'{self.stem}.tar.gz', f'{self.stem}.tar', f'{self.stem}.zip')


# The Google Drive ids of the authors' download scripts. They published no checksums; add a hex digest here
# once one is verified.
ARCHIVES: dict[str, Archive] = {
    'deepfashion': Archive('deepfashion', '1_VJh4TlVRMoIgkZSaicgICfye3s5eaVJ', 'deepfashion.tgz', 'datasets', '~23 GB'),
    'market1501': Archive('market1501', '1p1Jl-U4OTgmiVLUCAdyNjAo3sI56mtHa', 'market1501.tgz', 'datasets', '~9 GB'),
    'models': Archive('models', '1eClRS7is1fVTXxelOv5g7ziSGTfuSb1U', 'pretrained_models.tgz', 'checkpoints', ''),
}


class DownloadError(RuntimeError):
    """Fetching failed; the message includes the manual download link."""


class ChecksumError(ValueError):
    """The archive's SHA-256 differs from the known value."""


class UnsafeArchiveError(ValueError):
    """An archive member would escape the target folder or is a special file; the message names it."""


def sha256sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (archives are tens of GB)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(chunk_size), b''):
            h.update(chunk)
    return h.hexdigest()


def verify_checksum(path: str | os.PathLike, expected: str | None) -> bool:
    """Check ``path`` against ``expected`` (hex SHA-256).

    Returns True when verified, False when no checksum is known (prints that it was skipped); raises
    :class:`ChecksumError` naming the file and both digests on a mismatch.
    """
    if not expected:
        print(f'{path}: no checksum known, skipped')
        return False
    actual = sha256sum(path)
    if actual.lower() != expected.lower():
        raise ChecksumError(f'{path}: SHA-256 {actual} does not match the expected {expected}; the download is '
                            f'corrupt or incomplete: delete it and download again')
    print(f'{path}: SHA-256 verified')
    return True


def _is_within(base: Path, target: Path) -> bool:
    try:
        target.relative_to(base)
    except ValueError:
        return False
    return True


def _is_absolute(name: str) -> bool:
    return name.startswith(('/', '\\')) or (len(name) > 1 and name[1] == ':')


def _check_entry(name: str, target: Path, *, special: str | None = None, link: str | None = None,
                 link_kind: str = 'symbolic') -> None:
    """The safety rules shared by tar and zip members (see :func:`check_member`)."""
    if _is_absolute(name):
        raise UnsafeArchiveError(f'refusing archive member {name!r}: absolute path')
    if '..' in PurePosixPath(name.replace('\\', '/')).parts:
        raise UnsafeArchiveError(f'refusing archive member {name!r}: ".." path component')
    if not _is_within(target, (target / name).resolve()):
        raise UnsafeArchiveError(f'refusing archive member {name!r}: resolves outside {target}')
    if special is not None:
        raise UnsafeArchiveError(f'refusing archive member {name!r}: {special}')
    if link is not None:
        if _is_absolute(link):
            raise UnsafeArchiveError(f'refusing archive member {name!r}: {link_kind} link to absolute path {link!r}')
        if '..' in PurePosixPath(link.replace('\\', '/')).parts:
            raise UnsafeArchiveError(f'refusing archive member {name!r}: {link_kind} link to {link!r} may point '
                                     f'outside {target} ("..")')


def check_member(member: tarfile.TarInfo, target: Path) -> None:
    """Raise :class:`UnsafeArchiveError` if extracting ``member`` under ``target`` could write outside it.

    Refused: absolute paths (``/x``, ``C:\\x``), ``..`` components, device/FIFO files, and links (symbolic
    or hard) whose destination is absolute or contains ``..``. A relative link without ``..`` can only
    point below its own folder, so no chain of such links leads outside ``target``; checking each link's
    resolved destination alone would miss chains through links extracted earlier.
    """
    special = 'device or FIFO file' if member.isdev() or member.isfifo() else None
    link = member.linkname if member.issym() or member.islnk() else None
    _check_entry(member.name, target, special=special, link=link,
                 link_kind='symbolic' if member.issym() else 'hard')


def _zip_mode(info: zipfile.ZipInfo) -> int:
    # Unix file type and permissions live in the high 16 bits; archives made elsewhere leave them 0 (a file).
    return info.external_attr >> 16


def check_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    """:func:`check_member` for a zip member: the same rules; a symbolic link's destination is its content."""
    mode = _zip_mode(info)
    special = None
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        special = 'device, FIFO or socket file'
    link = zf.read(info).decode('utf-8', 'surrogateescape') if stat.S_ISLNK(mode) else None
    _check_entry(info.filename, target, special=special, link=link)


def safe_extract(archive: str | os.PathLike, target: str | os.PathLike) -> list[str]:
    """Extract a tar (any compression) or zip archive into ``target`` after checking every member.

    The format is recognised from the content, not the name. All members are checked before anything is
    written, so a malicious archive writes nothing. For tar, tarfile's ``filter='data'`` (Python >= 3.11.4) is
    applied as a second line of defence; zip symbolic links (which ``zipfile`` would write as small text files)
    are created as links. Returns the member names.

    Raises:
        UnsafeArchiveError: a member could write outside ``target`` or is a special file.
        DownloadError: the file is neither a tar nor a zip archive.
    """
    target = Path(target).resolve()
    if zipfile.is_zipfile(archive):
        target.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:
                check_zip_member(zf, info, target)
            for info in members:
                if stat.S_ISLNK(_zip_mode(info)):
                    dest = target / info.filename
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(zf.read(info).decode('utf-8', 'surrogateescape'), dest)
                else:
                    zf.extract(info, target)
        return [info.filename for info in members]
    if not tarfile.is_tarfile(archive):
        raise DownloadError(f'{archive} is neither a tar nor a zip archive (an error page saved instead of the '
                            f'archive, or an incomplete download?); delete it and download it again')
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, 'r:*') as tar:
        members = tar.getmembers()
        for m in members:
            check_member(m, target)
        if hasattr(tarfile, 'data_filter'):
            tar.extractall(target, members=members, filter='data')
        else:  # older Python: our own check above is the only protection
            tar.extractall(target, members=members)
    return [m.name for m in members]


def fetch(archive: Archive, dest: Path) -> Path:
    """Download ``archive`` to ``dest`` with gdown, resuming a partial file."""
    try:
        import gdown
    except ImportError as e:
        raise DownloadError(f'gdown is not installed (pip install gdown); or download {archive.filename} manually '
                            f'from {archive.manual_url} and put it at {dest} (a .zip of the same content, '
                            f'{dest.with_name(archive.stem + ".zip").name}, works too); then run this command '
                            f'again') from e
    print(f'downloading {archive.filename} ({archive.size_hint or "size unknown"}) from Google Drive '
          f'into {dest.parent}')
    try:
        out = gdown.download(id=archive.drive_id, output=str(dest), quiet=False, resume=True)
    except Exception as e:  # gdown raises many types (HTTP, quota, parsing); all mean "fetch failed"
        raise DownloadError(f'downloading {archive.filename} failed ({type(e).__name__}: {e}). Google Drive may '
                            f'limit large downloads; download it manually from {archive.manual_url}, put it at '
                            f'{dest} (or a .zip of it at {dest.with_name(archive.stem + ".zip")}) and run this '
                            f'command again') from e
    if out is None or not Path(dest).is_file():
        raise DownloadError(f'downloading {archive.filename} failed (no file written). Download it manually from '
                            f'{archive.manual_url}, put it at {dest} and run this command again')
    return Path(dest)


def local_archive(archive: Archive, target: Path) -> Path | None:
    """The archive already in ``target`` under one of :meth:`Archive.local_names`, if any.

    Raises :class:`DownloadError` when more than one is there (which one to use is unclear).
    """
    found = [target / name for name in archive.local_names if (target / name).is_file()]
    if len(found) > 1:
        raise DownloadError(f'several archives for {archive.name} are present: {", ".join(map(str, found))}; keep '
                            f'only the one to extract and run this command again')
    return found[0] if found else None


def download(name: str, root: str | os.PathLike = REPO_ROOT, keep_archive: bool = False) -> Path:
    """Use an archive already present (else fetch it), verify, extract and delete it.

    An archive already at ``<target>/<stem>.tgz|.tar.gz|.tar|.zip`` is used without calling gdown. The known
    SHA-256 belongs to the authors' ``.tgz``; other files are reported as unchecked.
    """
    if name not in ARCHIVES:
        raise ValueError(f'unknown archive {name!r}; valid names are {sorted(ARCHIVES)}')
    archive = ARCHIVES[name]
    target = Path(root) / archive.target
    target.mkdir(parents=True, exist_ok=True)
    path = local_archive(archive, target)
    if path is not None:
        print(f'using {path}, which is already present (nothing is downloaded)')
    else:
        path = fetch(archive, target / archive.filename)
    verify_checksum(path, archive.sha256 if path.name == archive.filename else None)
    print(f'extracting {path} into {target}')
    try:
        names = safe_extract(path, target)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as e:
        raise DownloadError(f'extracting {path} failed ({type(e).__name__}: {e}); the archive is probably '
                            f'incomplete: delete it and download again, or fetch it manually from '
                            f'{archive.manual_url}') from e
    if not keep_archive:
        path.unlink()
    print(f'done: {len(names)} entries extracted into {target}' + ('' if keep_archive else f'; removed {path.name}'))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description='Download the preprocessed datasets or the pretrained models. An archive already in the target '
                    'folder (datasets/ or checkpoints/, named like deepfashion.tgz, .tar.gz, .tar or .zip) is used '
                    'instead of downloading.')
    parser.add_argument('name', choices=sorted(ARCHIVES))
    parser.add_argument('--root', default=str(REPO_ROOT), help='repository root (targets are relative to it)')
    parser.add_argument('--keep_archive', action='store_true', help='keep the archive after extraction')
    args = parser.parse_args(argv)
    try:
        download(args.name, args.root, keep_archive=args.keep_archive)
    except (DownloadError, ChecksumError, UnsafeArchiveError) as e:
        print(f'error: {e}', file=sys.stderr)
        print(f'manual download: {ARCHIVES[args.name].manual_url}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
