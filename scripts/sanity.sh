#!/usr/bin/env bash
# ansible-test needs the tree at .../ansible_collections/mountops/fleet: copy the tracked and
# new (not ignored) files there, as ansible.posix CI does, and run sanity on the controller Python.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/mountops/fleet"
mkdir -p "$dest"
git ls-files -co --exclude-standard -z \
  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$dest"
cd "$dest"
git init -q . && git add -A >/dev/null
"$top/.venv/bin/ansible-test" sanity --python 3.11 --color no "$@"
