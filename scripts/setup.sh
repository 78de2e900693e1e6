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

seed_ansible_test_pip() {
  # ansible-test downloads a get-pip script from a CI file server this kind of machine cannot
  # reach; its documented fallback is a script saved in its cache (see get_pip_bootstrap.py).
  local version cache
  version=$(.venv/bin/python -c 'import re, ansible_test, pathlib; p = pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py"; print(re.search(r"pip=.([0-9.]+).", p.read_text()).group(1))')
  cache="$HOME/.ansible/test/cache"
  [ -f "$cache/get_pip_${version//./_}.py" ] && ls "$cache"/pip-"$version"-*.whl >/dev/null 2>&1 && return 0
  log "seeding ansible-test's pip $version bootstrap in $cache"
  mkdir -p "$cache"
  .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps "pip==$version" -d "$cache"
  cp scripts/get_pip_bootstrap.py "$cache/get_pip_${version//./_}.py"
}

install_system_packages
install_venv
seed_ansible_test_pip
link_collection
log "ready ($root)"
