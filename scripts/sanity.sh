#!/usr/bin/env bash
# ansible-test needs the tree at .../ansible_collections/mountops/fleet: copy the tracked and
# new (not ignored) files there, as ansible.posix CI does, and run sanity on the controller Python.
# Then prove the target-side code (modules, module_utils) compiles and imports on Python 3.8.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

# ansible-test keeps its venvs under ~/.ansible/test; two runs at once corrupt them.
exec 9>/tmp/mountops-sanity.lock
flock 9

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/mountops/fleet"
mkdir -p "$dest"
git ls-files -co --exclude-standard -z \
  | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$dest"
cd "$dest"
git init -q . && git add -A >/dev/null
"$top/.venv/bin/ansible-test" sanity --python 3.11 --color no "$@"

# A real 3.8 interpreter, not a pyenv shim (which exits 127 when 3.8 is not the selected version).
py38=""
for candidate in /root/.pyenv/versions/3.8*/bin/python3.8 /usr/bin/python3.8 /usr/local/bin/python3.8; do
  if [ -x "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 8)' 2>/dev/null; then
    py38=$candidate; break
  fi
done
if [ -n "$py38" ]; then
  "$py38" - "$work" <<'PY'
import glob, importlib, os, py_compile, sys
root = sys.argv[1]
sys.path.insert(0, root)
base = os.path.join(root, "ansible_collections/mountops/fleet/plugins")
for path in sorted(glob.glob(base + "/modules/*.py") + glob.glob(base + "/module_utils/*.py")):
    py_compile.compile(path, doraise=True)
for path in sorted(glob.glob(base + "/module_utils/*.py")):
    name = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
    importlib.import_module(name)
print("python3.8: target-side code compiles and imports")
PY
else
  echo "python3.8 not found: skipped the target-side 3.8 check" >&2
fi
