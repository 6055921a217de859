#!/usr/bin/env bash
# Idempotent setup: a project virtualenv with the package and its dev tools, plus the
# Debian packages the pipeline shells out to. Cheap when nothing changed (stamp on the
# pyproject hash), so every README command can call it first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${REMEMBERME_VENV:-.venv}"
APT_PACKAGES=(ffmpeg)   # pydub decodes and encodes audio through ffmpeg
# `--with-test-tools`: what only the tests need (headless Chromium for the Prefect UI test).
if [ "${1:-}" = "--with-test-tools" ]; then
    # espeak-ng: the tests make their own speech; CJK font: readable Korean in UI screenshots.
    APT_PACKAGES+=(chromium chromium-driver fonts-noto-cjk espeak-ng)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "bootstrap: apt-get install ${missing[*]}" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY="${REMEMBERME_PYTHON:-$(command -v python3.11 || command -v python3)}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "bootstrap: creating $VENV with $PY" >&2
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.rememberme-installed"
want="$(cat pyproject.toml infra/bootstrap.sh | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "bootstrap: installing rememberme and dev tools into $VENV" >&2
    # The machine's pip config lists optional local indexes; their "is ignored" notes are noise.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 \
        | { grep -v "^WARNING: Location '.*' is ignored" || true; } >&2
    # The speaker encoder's weights (tasks/voice/similarity.py) ship in the resemblyzer wheel; its
    # own code (librosa, webrtcvad) is not needed: models/speaker.py re-implements it.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps resemblyzer==0.1.4 2>&1 \
        | { grep -v "^WARNING: Location '.*' is ignored" || true; } >&2
    echo "$want" > "$stamp"
fi
