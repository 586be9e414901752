#!/usr/bin/env bash
# Download, verify and extract preprocessed Market-1501 (~9 GB) into datasets/market1501/.
# Thin wrapper over `python -m data.download market1501`; extra arguments are passed on (e.g. --keep_archive).
# Offline: an archive already at datasets/market1501.tgz (or .tar.gz, .tar, .zip) is used and nothing is downloaded.
exec bash "$(dirname "${BASH_SOURCE[0]}")/_download.sh" market1501 "$@"
