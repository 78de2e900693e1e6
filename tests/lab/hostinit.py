"""PID 1 of one lab host: builds the host's own /etc, /run, scenarios, then becomes its sshd.

Run by the controller as
``unshare --mount --pid --fork --mount-proc --uts --cgroup --propagation private --kill-child
python3 hostinit.py CONFIG.json``. Everything it creates lives inside the host's mount
namespace (tmpfs and overlays), so killing the namespace's PID 1 takes it all away; the only
state outside is the host directory under the lab's run dir and the host's cgroup subtree,
both of which the controller removes.

Stdlib only, standalone: it runs with ``sys.path[0]`` = this directory and imports
``scenarios`` from here.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

import scenarios  # a sibling: this file runs as a script, so its directory is sys.path[0]
from nsutil import MS_PRIVATE, MS_REC, MS_SHARED, mount, write_file

LAYERS = "/run/.lab-layers"
OVERLAID = ("/etc", "/var", "/root")


def set_up_filesystems():
    """Private /run, /tmp, /srv and copy-on-write /etc, /var, /root, then share like systemd."""
    mount("tmpfs", "/run", "tmpfs", 0, "mode=755,size=64m")
    os.makedirs("/run/sshd", mode=0o755)
    os.makedirs("/run/lock", mode=0o1777)
    mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777,size=64m")
    mount("tmpfs", "/srv", "tmpfs", 0, "mode=755,size=16m")
    os.makedirs(LAYERS, mode=0o700)
    for path in OVERLAID:
        name = path.strip("/")
        upper, work = os.path.join(LAYERS, name, "upper"), os.path.join(LAYERS, name, "work")
        os.makedirs(upper)
        os.makedirs(work)
        options = "lowerdir=%s,upperdir=%s,workdir=%s" % (path, upper, work)
        mount("overlay", path, "overlay", 0, options)
    # Pins for nsfs bind mounts must sit on a private mount (the kernel refuses shared ones).
    os.makedirs("/run/mntns")
    mount("tmpfs", "/run/mntns", "tmpfs", 0, "mode=700,size=1m")
    # systemd makes every mount shared at boot; a lab host should look like that.
    mount(None, "/", None, MS_SHARED | MS_REC)
    mount(None, "/run/mntns", None, MS_PRIVATE)


def set_identity(cfg):
    name = cfg["name"]
    write_file("/proc/sys/kernel/hostname", name)
    write_file("/etc/hostname", name + "\n")
    with open("/etc/hosts", encoding="utf-8") as handle:
        hosts = handle.read()
    write_file("/etc/hosts", "127.0.1.1\t%s\n%s" % (name, hosts))
    os.makedirs("/etc/mountops-lab", exist_ok=True)


def exec_sshd(cfg, log):
    """Become the host's sshd; it reaps orphans (waitpid(-1) in its SIGCHLD handler)."""
    os.chdir("/")
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    os.closerange(3, 1024)
    os.execv(cfg["sshd"], [cfg["sshd"], "-D", "-e", "-f", cfg["sshd_config"]])


def main(argv):
    with open(argv[1], encoding="utf-8") as handle:
        cfg = json.load(handle)
    log = open(cfg["log"], "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - handed to sshd
    built = {"name": cfg["name"], "scenarios": {}}
    try:
        set_up_filesystems()
        set_identity(cfg)
        ctx = scenarios.Context(cfg, log)
        built["host_ns"] = os.stat("/proc/self/ns/mnt").st_ino
        for spec in cfg["scenarios"]:
            built["scenarios"][spec["name"]] = scenarios.build(ctx, spec)
        built["namespaces"] = ctx.namespace_inodes()
        built["namespace_ids"] = ctx.namespace_ids()
        built["ok"] = True
    except Exception:
        built["ok"] = False
        built["error"] = traceback.format_exc()
        log.write(built["error"])
    tmp = cfg["built"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(built, handle, indent=1, sort_keys=True)
    os.rename(tmp, cfg["built"])
    if not built["ok"]:
        return 1
    exec_sshd(cfg, log)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
