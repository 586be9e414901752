#!/usr/bin/env bash
# Download, verify and extract the pretrained models into checkpoints/.
# Thin wrapper over `python -m data.download models`; extra arguments are passed on (e.g. --keep_archive).
# Offline: an archive already at checkpoints/pretrained_models.tgz (or .tar.gz, .tar, .zip) is used and nothing is downloaded.
exec bash "$(dirname "${BASH_SOURCE[0]}")/_download.sh" models "$@"
