#!/usr/bin/env bash
# One-time, idempotent set-up for a fresh clone: system packages (when root), the project venv
# with pinned Python packages, and the in-place collection link used by ansible.cfg.
# Re-running it is cheap: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf 'setup: %s\n' "$*" >&2; }

install_system_packages() {
  local wanted missing=()
  mapfile -t wanted < <(grep -vE '^\s*(#|$)' scripts/apt-packages.txt)
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing system packages (${missing[*]}); run as root or install them, continuing without"
    return 0
  fi
  log "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps the distro sshd from starting: the lab runs its own sshd instances.
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

pick_python() {
  for py in python3.11 python3; do
    if command -v "$py" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      echo "$py"; return 0
    fi
  done
  log "need Python >= 3.11 on PATH"; exit 1
}

install_venv() {
  local stamp=.venv/.requirements.sha256 want
  want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
  if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  log "creating .venv and installing pinned Python packages"
  [ -x .venv/bin/python ] || "$(pick_python)" -m venv .venv
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
}

link_collection() {
  local link=.collections/ansible_collections/mountops/fleet
  mkdir -p "$(dirname "$link")"
  if [ "$(readlink "$link" 2>/dev/null)" != "../../.." ]; then
    rm -rf "$link"
    ln -s ../../.. "$link"
  fi
}

install_system_packages
install_venv
link_collection
log "ready ($root)"
