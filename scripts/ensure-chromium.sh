#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver exist for the support console's browser test
# (tests/support_console.rs drives /usr/bin/chromium through /usr/bin/chromedriver). Installs
# Debian's `chromium` and `chromium-driver` packages when either is missing; quiet otherwise.
set -euo pipefail

have_browser() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}
if have_browser; then
  exit 0
fi
echo "chromium or chromedriver not found: installing Debian's chromium and chromium-driver" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
have_browser || { echo "chromium-driver installed but chromium or chromedriver is still missing" >&2; exit 1; }
