"""Offline stand-in for ansible-test's pip bootstrap script (get-pip-<version>.py).

ansible-test bootstraps pip in each sanity venv by downloading a get-pip script from a CI file
server; machines that only reach PyPI cannot fetch it. ansible-test's own error message says to
save the script to ~/.ansible/test/cache/get_pip_<version>.py, so setup.sh installs this file
there, next to the pip wheel of that version (downloaded from PyPI). It runs pip from the wheel
to install what it is asked for, which is all get-pip does; get-pip-only flags are dropped.
"""

import glob
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
VERSION = os.path.basename(__file__)[len("get_pip_") : -len(".py")].replace("_", ".")


def main():
    wheels = glob.glob(os.path.join(HERE, "pip-%s-*.whl" % VERSION))
    if not wheels:
        sys.exit("pip %s wheel missing next to %s; re-run scripts/setup.sh" % (VERSION, __file__))
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    sys.exit(subprocess.call([sys.executable, os.path.join(wheels[0], "pip"), "install"] + args))


if __name__ == "__main__":
    main()
