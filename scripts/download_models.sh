#!/usr/bin/env bash
# Download, verify and extract the pretrained models into checkpoints/.
# Thin wrapper over `python -m data.download models`; extra arguments are passed on (e.g. --keep_archive).
exec bash "$(dirname "${BASH_SOURCE[0]}")/_download.sh" models "$@"
