#!/usr/bin/env bash
# Download, verify and extract preprocessed DeepFashion (~23 GB) into datasets/deepfashion/.
# Thin wrapper over `python -m data.download deepfashion`; extra arguments are passed on (e.g. --keep_archive).
# Offline: an archive already at datasets/deepfashion.tgz (or .tar.gz, .tar, .zip) is used and nothing is downloaded.
exec bash "$(dirname "${BASH_SOURCE[0]}")/_download.sh" deepfashion "$@"
