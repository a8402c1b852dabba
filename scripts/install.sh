#!/usr/bin/env bash
# Installs voxbox and everything it needs on a fresh Debian/Ubuntu machine.
#   scripts/install.sh          system packages + voxbox (Ray, datasets, lhotse are extras:
#                               pip install '.[ray]', '.[hf]', '.[lhotse]')
#   scripts/install.sh --test   the same, plus what the test suite needs (with every extra)
# torch is installed first with an exact pin so pip takes the CPU wheel instead of a
# multi-GB CUDA build; on a GPU machine install the torch build you want first.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
# libsndfile for soundfile; chromium renders the HTML report and drives voxbox serve in the browser tests.
APT_PKGS="libsndfile1"
if [ "${1:-}" = "--test" ]; then APT_PKGS="$APT_PKGS chromium"; fi
if command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $APT_PKGS >/dev/null
fi
python3 -m pip install -q --upgrade pip
python3 -m pip install -q "torch==2.13.0"
if [ "${1:-}" = "--test" ]; then
  python3 -m pip install -q -e ".[test,ray,bench]"
else
  python3 -m pip install -q .
fi
