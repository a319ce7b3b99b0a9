#!/usr/bin/env bash
# Create the AltaiPony venv that bench/bench_models.py runs as a contender (bench/altaipony_runner.py).
# AltaiPony is never a dependency of flarelight: it lives in its own venv, outside the repository.
#
#   bash bench/altaipony_env.sh            # -> ../altaipony-venv (beside the project root)
#   ALTAIPONY_VENV=/some/dir bash bench/altaipony_env.sh
#
# Pins: altaipony 2.1.2 (the newest on PyPI) imports k2sc, which uses numpy.linalg.linalg (gone in numpy 2),
# so numpy stays at 1.26.4; astropy >= 7 needs numpy 2, so astropy 6.1.7; lightkurve 2.6.0 and the rest as
# resolved on 2026-12-01 with those pins (python 3.11).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ALTAIPONY_VENV:-$(dirname "$ROOT")/altaipony-venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip
"$VENV/bin/python" -m pip install --disable-pip-version-check -q \
    "altaipony==2.1.2" "numpy==1.26.4" "astropy==6.1.7" "lightkurve==2.6.0" "scipy==1.13.1" "pandas==2.2.3"
# smoke: the import the runner needs, and the versions it will report
"$VENV/bin/python" -W ignore -c "import altaipony, numpy, astropy, lightkurve; from altaipony.flarelc import FlareLightCurve; \
print('altaipony venv ready:', '$VENV', 'numpy', numpy.__version__, 'astropy', astropy.__version__, 'lightkurve', lightkurve.__version__)"
