#!/usr/bin/env bash
# Make sure the mosquitto broker is installed: the MQTT tests and the demo start a real one on loopback.
set -euo pipefail
if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "mosquitto is not installed and apt-get is not available: install the 'mosquitto' package" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "mosquitto is not installed: run 'sudo apt-get install mosquitto' (Debian package 'mosquitto')" >&2
    exit 1
fi
echo "Installing mosquitto with apt-get ..." >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto >/dev/null
# Tests start their own broker on a free port; the packaged service is not needed.
$SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
