#!/usr/bin/env bash
# Install what the browser tests need from Debian (tests/browser/README.md): the `chromium` package, driven by
# Playwright's Python package with executable_path (never `playwright install`), and fonts for readable
# screenshots. Quick when everything is there already. Exits 1 with the reason when it cannot install
# (not root, or no apt-get).
set -euo pipefail
packages=(chromium fonts-liberation fonts-dejavu-core)
missing=()
if [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi
if command -v dpkg-query >/dev/null 2>&1; then
  for package in "${packages[@]:1}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
fi
if [ "${#missing[@]}" -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: cannot install ${missing[*]} (needs root and apt-get):" \
    "sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "install-browser: apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
/usr/bin/chromium --version
