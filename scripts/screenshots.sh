#!/usr/bin/env bash
# Regenerate docs/screenshots/*.png from the app running in a real window under Xvfb.
#   scripts/screenshots.sh                # trained models in exported_models/
#   scripts/screenshots.sh --tiny         # tiny random test models (needs the train extra)
#   scripts/screenshots.sh --models DIR   # any models folder
# Needs Debian's xvfb, xauth, libxcb-icccm4, libxcb-keysyms1 and libxcb-cursor0 (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
need=()
for pkg in xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
unset QT_QPA_PLATFORM
exec xvfb-run -a -s "-screen 0 1600x900x24" "$PY" scripts/screenshots.py "$@"
