#!/usr/bin/env bash
# Headless Chromium for the report render test (tests/test_report.py): installed with apt when it
# is missing and we are root; otherwise that one test skips, saying why.
set -euo pipefail
for name in chromium chromium-browser google-chrome google-chrome-stable; do
    if command -v "$name" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install_chromium.sh: installing chromium with apt (for the report render test)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
else
    echo "install_chromium.sh: no Chromium and no root apt: the report render test will be skipped" >&2
fi
