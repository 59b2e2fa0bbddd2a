#!/usr/bin/env bash
# Headless Chromium and its WebDriver from Debian's packages, for the report.html tests
# (tests/test_report_pages.py). `tools/chromium.sh install`: installs them when missing (root, apt).
set -euo pipefail
case "${1:-}" in
  install)
    if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
      exit 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
    chromium --version
    ;;
  *)
    echo "usage: tools/chromium.sh install" >&2
    exit 2
    ;;
esac
