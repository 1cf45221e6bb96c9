#!/usr/bin/env bash
# Train the three models one after another and export them, on one machine with only this repository and a data
# pack (no network, no ../shared). Run it again after an interruption: finished stages are skipped.
#
#   scripts/train_all.sh PACK_DIR [OUT_DIR] [extra ofer-live train flags]
#   DEVICE=cuda PRESET=paper scripts/train_all.sh pack/ runs/all
#
# Writes OUT_DIR/{occlusion,expression_stage1,reconstructor,expression}/ (runs), OUT_DIR/exported_models/ (the
# three ONNX files + manifest.json, parity-checked) and OUT_DIR/summary.json. Make the pack beforehand with
#   ofer-live train pack --data ../shared/data --out pack/
set -euo pipefail
if [[ $# -lt 1 ]]; then
    echo "usage: scripts/train_all.sh PACK_DIR [OUT_DIR] [extra 'ofer-live train' flags]" >&2
    exit 2
fi
pack=$1
out=${2:-runs/all}
shift $(( $# >= 2 ? 2 : 1 ))
cd "$(dirname "$0")/.."
python=${PYTHON:-$( [[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3 )}
exec "$python" -m ofer_live train all --data "$pack" --out "$out" --preset "${PRESET:-default}" \
    --device "${DEVICE:-auto}" --precision "${PRECISION:-auto}" "$@"
