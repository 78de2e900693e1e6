"""The SSH lab on the controller side: bring hosts up, write the inventory, take it all down.

A lab host is ``unshare --mount --pid --fork --mount-proc --uts`` around ``hostinit.py``, which
builds the host's filesystems and scenarios and then execs ``sshd -D`` on ``127.0.0.1:PORT``
as the namespace's PID 1. Each host sits in its own cgroup subtree
(``<our cgroup>/mountops-lab/<tag>-<lab id>/<host>`` in every hierarchy), which is how teardown
finds every process, including strays of a crashed run. Nothing of the machine's own SSH set-up
is read or written: keys, known_hosts, sshd configs and ControlPersist sockets all live in the
lab's run dir.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from tests.lab import nsutil
from tests.lab.scenarios import DEFAULTS

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
# hostinit gives each host its own copy of these (tmpfs or overlay): the run dir, which hosts
# read their sshd config from and write their built.json to, cannot live there.
HOST_PRIVATE_DIRS = ("/tmp", "/run", "/srv", "/etc", "/var", "/root")
FALLBACK_RUN_BASE = "/opt/mountops-lab"  # run dirs of checkouts that sit in one of those


def _hidden_dir(path):
    """The host-private directory (replaced inside every lab host) that ``path`` lies under."""
    real = os.path.realpath(path)
    return next((d for d in HOST_PRIVATE_DIRS if real == d or real.startswith(d + "/")), None)


def default_run_root():
    """``tests/lab/run`` in the checkout, unless the checkout itself sits where hosts cannot see it.

    A clone under /tmp (as CI may make) would hide the run dir (sshd configs, keys) from the
    hosts, so such a checkout gets a per-checkout directory under /opt instead.
    """
    inside = os.path.join(HERE, "run")
    if _hidden_dir(inside) is None:
        return inside
    digest = hashlib.sha1(os.path.realpath(REPO).encode()).hexdigest()[:12]
    return os.path.join(FALLBACK_RUN_BASE, digest)


RUN_ROOT = os.environ.get("MOUNTOPS_LAB_RUN") or default_run_root()
HOSTINIT = os.path.join(HERE, "hostinit.py")
SSHD = "/usr/sbin/sshd"
UNSHARE = "/usr/bin/unshare"
BUSYBOX = "/bin/busybox"
CGROUP_DIR = "mountops-lab"
# The default fleet: one host per behaviour the audit must tell apart.
DEFAULT_MIX = (
    "healthy",
    "shared-storm",
    "slave-readers",
    "kubelet+docker-root",
    "pinned-ns+idmap-leak+runtime-configs",
    "runc",
)
PR_SET_PDEATHSIG = 1


class LabError(RuntimeError):
    pass


def checkout_tag(run_root=RUN_ROOT):
    """Labs of one checkout share this tag, so ``down`` never touches another checkout's labs."""
    return hashlib.sha1(os.path.realpath(run_root).encode()).hexdigest()[:8]


def parse_host_specs(items):
    """``["healthy", "kubelet+docker-root:3"]`` (or comma-joined) -> [[(name, count), ...], ...]."""
    specs = []
    for item in items or ():
        for host in item.replace(",", " ").split():
            parts = []
            for piece in host.split("+"):
                name, _sep, count = piece.partition(":")
                if name not in DEFAULTS:
                    raise LabError("unknown scenario %r (known: %s)" % (name, ", ".join(DEFAULTS)))
                if count and not count.isdigit():
                    raise LabError(
                        "scenario %r: count %r is not a whole number (as in %s:3)" % (name, count, name)
                    )
                parts.append((name, int(count) if count else DEFAULTS[name]))
            specs.append(parts)
    return specs


def _proc_start(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def free_ports(count):
    """Distinct free loopback ports, held until all are chosen."""
    socks = []
    try:
        for _index in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def ssh_banner(port, timeout=0.5):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            return sock.recv(64).startswith(b"SSH-2.0-")
    except OSError:
        return False


def listening_ports():
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[3] == "0A":
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


def _keygen(path, comment):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    with open(path + ".pub", encoding="ascii") as handle:
        return handle.read().strip()


SSHD_CONFIG = """\
# mountops lab host {name}: generated, loopback only
ListenAddress 127.0.0.1:{port}
HostKey {hostdir}/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile {labdir}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowTcpForwarding no
MaxStartups 200:30:400
MaxSessions 64
Subsystem sftp internal-sftp
LogLevel INFO
"""


class Lab:
    """One lab: its run dir, hosts and cgroups. ``Lab.up()`` builds one, ``lab.down()`` ends it."""

    def __init__(self, state, path):
        self.state = state
        self.path = path
        self._procs = {}  # host name -> Popen of its unshare, for hosts this process started

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def up(cls, hosts=5, specs=None, persistent=False, timeout=None, run_root=RUN_ROOT, log=None):
        """Bring up ``hosts`` lab hosts; ``specs`` (see ``parse_host_specs``) go round-robin.

        Non-persistent labs die with the calling process (PR_SET_PDEATHSIG on each host), so an
        interrupted test run cannot leave hosts behind; persistent ones (``make lab-up``)
        outlive it until ``down``.
        """
        if os.geteuid() != 0:
            raise LabError("the lab needs root (namespaces, mounts, cgroups)")
        specs = specs or parse_host_specs(DEFAULT_MIX)
        real_root = os.path.realpath(run_root)
        for hidden in HOST_PRIVATE_DIRS:
            if real_root == hidden or real_root.startswith(hidden + "/"):
                raise LabError(
                    "run dir %s is under %s, which every lab host replaces with its own" % (run_root, hidden)
                )
        lab_id = "%s-%d" % (time.strftime("%H%M%S"), os.getpid())
        path = os.path.join(run_root, lab_id)
        os.makedirs(path, mode=0o755)
        tag = checkout_tag(run_root)
        state = {
            "id": lab_id,
            "tag": tag,
            "path": path,
            "cgroup_name": "%s-%s" % (tag, lab_id),
            "owner": {"pid": os.getpid(), "start": _proc_start(os.getpid())},
            "persistent": persistent,
            "complete": False,
            "created": time.time(),
            "hosts": [],
        }
        lab = cls(state, path)
        lab.save()
        started = time.monotonic()
        try:
            lab._prepare(hosts, specs)
            lab._spawn_all(persistent, log)
            lab._wait_ready(timeout or 60 + 3 * hosts)
            lab._write_inventory()
        except BaseException:
            lab.down()
            raise
        state["bringup_seconds"] = round(time.monotonic() - started, 3)
        state["complete"] = True
        lab.save()
        return lab

    def _prepare(self, count, specs):
        path = self.path
        hierarchies = nsutil.cgroup_hierarchies()
        if not hierarchies:
            raise LabError("no cgroup hierarchy is mounted; the lab tracks its processes by cgroup")
        client_pub = _keygen(os.path.join(path, "client_key"), "mountops-lab-client")
        with open(os.path.join(path, "authorized_keys"), "w", encoding="ascii") as handle:
            handle.write(client_pub + "\n")
        os.chmod(os.path.join(path, "authorized_keys"), 0o600)
        os.makedirs(self.control_dir, mode=0o700)
        build_rootfs(os.path.join(path, "rootfs"))
        ports = free_ports(count)
        known = []
        for index in range(count):
            name = "lab-%02d" % (index + 1)
            hostdir = os.path.join(path, "hosts", name)
            os.makedirs(hostdir)
            host_pub = _keygen(os.path.join(hostdir, "ssh_host_ed25519_key"), name)
            known.append("[127.0.0.1]:%d %s" % (ports[index], " ".join(host_pub.split()[:2])))
            cgroups = {
                point: os.path.join(own, CGROUP_DIR, self.state["cgroup_name"], name)
                for point, own in hierarchies.items()
            }
            for cgroup in cgroups.values():
                nsutil.cgroup_mkdir(cgroup)
            sshd_config = os.path.join(hostdir, "sshd_config")
            with open(sshd_config, "w", encoding="ascii") as handle:
                handle.write(SSHD_CONFIG.format(name=name, port=ports[index], hostdir=hostdir, labdir=path))
            spec = specs[index % len(specs)]
            init = {
                "name": name,
                "port": ports[index],
                "sshd": SSHD,
                "sshd_config": sshd_config,
                "log": os.path.join(hostdir, "host.log"),
                "built": os.path.join(hostdir, "built.json"),
                "rootfs": os.path.join(path, "rootfs"),
                "cgroups": cgroups,
                "cgroup_rel": os.path.join(CGROUP_DIR, self.state["cgroup_name"], name),
                "scenarios": [{"name": n, "count": c} for n, c in spec],
            }
            with open(os.path.join(hostdir, "init.json"), "w", encoding="utf-8") as handle:
                json.dump(init, handle, indent=1)
            self.state["hosts"].append(
                {
                    "name": name,
                    "port": ports[index],
                    "dir": hostdir,
                    "cgroups": cgroups,
                    "scenarios": [n for n, _count in spec],
                    "spec": "+".join("%s:%d" % sc for sc in spec),
                }
            )
        self._check_sshd_config(self.state["hosts"][0])
        for filename in ("known_hosts", os.path.join("home", ".ssh", "known_hosts")):
            target = os.path.join(path, filename)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="ascii") as handle:
                handle.write("\n".join(known) + "\n")
        self.save()

    def _check_sshd_config(self, host):
        # sshd -t wants its privilege separation dir; give it one in a throw-away namespace
        # rather than creating /run/sshd on the machine.
        check = 'mount -t tmpfs lab /run && mkdir -m 755 /run/sshd && exec "$0" -t -f "$1"'
        done = subprocess.run(
            [
                UNSHARE,
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                check,
                SSHD,
                os.path.join(host["dir"], "sshd_config"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise LabError("generated sshd_config is rejected by %s: %s" % (SSHD, done.stderr.strip()))

    def _spawn_all(self, persistent, log):
        for host in self.state["hosts"]:
            self._spawn(host, persistent)
            if log:
                log("spawned %s on 127.0.0.1:%d (%s)" % (host["name"], host["port"], host["spec"]))
        self.save()

    def _spawn(self, host, persistent):
        cgroups = list(host["cgroups"].values())
        libc = ctypes.CDLL(None, use_errno=True)

        def in_child():
            nsutil.cgroup_join(cgroups)
            if not persistent:
                libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

        argv = [
            UNSHARE,
            "--mount",
            "--pid",
            "--fork",
            "--mount-proc",
            "--uts",
            # private, not unchanged: the host's own mounts (/etc overlay, scenario trees) must
            # not propagate back into the machine's namespace or other hosts; hostinit then
            # makes its tree rshared as systemd would.
            "--propagation",
            "private",
            "--kill-child",
            "--",
            sys.executable,
            HOSTINIT,
            os.path.join(host["dir"], "init.json"),
        ]
        with open(os.path.join(host["dir"], "unshare.log"), "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                preexec_fn=in_child,  # noqa: PLW1509 - cgroup + pdeathsig must be set before exec
                start_new_session=True,
                close_fds=True,
            )
        host["pid"] = proc.pid
        host["pid_start"] = _proc_start(proc.pid)
        self._procs[host["name"]] = proc

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        pending = {h["name"]: h for h in self.state["hosts"]}
        while pending:
            for name, host in list(pending.items()):
                proc = self._procs.get(name)
                built_path = os.path.join(host["dir"], "built.json")
                if os.path.exists(built_path):
                    with open(built_path, encoding="utf-8") as handle:
                        built = json.load(handle)
                    if not built.get("ok"):
                        raise LabError("host %s failed to build:\n%s" % (name, built.get("error")))
                    if ssh_banner(host["port"]):
                        host["built"] = built
                        host["ready_seconds"] = round(time.time() - self.state["created"], 3)
                        del pending[name]
                        continue
                if proc is not None and proc.poll() is not None:
                    raise LabError(
                        "host %s exited (%s) before it was ready:\n%s"
                        % (name, proc.returncode, self.tail(name))
                    )
            if pending and time.monotonic() > deadline:
                raise LabError(
                    "hosts not ready after %ds: %s\n%s"
                    % (timeout, ", ".join(sorted(pending)), self.tail(sorted(pending)[0]))
                )
            time.sleep(0.05)
        for host in self.state["hosts"]:
            host["ns_pid1"] = self.host_pid1(host)
            host["ns"] = os.stat("/proc/%d/ns/mnt" % host["ns_pid1"]).st_ino
            host["ns_ids"] = self._namespace_ids(host)
        self.save()

    @staticmethod
    def _namespace_ids(host):
        """inode -> unique id of every namespace the host built (recorded inside the host)."""
        return dict((host.get("built") or {}).get("namespace_ids", {}))

    def host_pid1(self, host):
        """The host namespace's PID 1 (its sshd), as a pid in our namespace."""
        with open("/proc/%d/task/%d/children" % (host["pid"], host["pid"]), encoding="ascii") as handle:
            children = handle.read().split()
        if len(children) != 1:
            raise LabError("unshare for %s has children %r, expected one" % (host["name"], children))
        return int(children[0])

    def tail(self, name, lines=30):
        host = self.host(name)
        text = []
        for log in ("unshare.log", "host.log"):
            try:
                with open(os.path.join(host["dir"], log), encoding="utf-8", errors="replace") as handle:
                    text += handle.read().splitlines()[-lines:]
            except OSError:
                continue
        return "\n".join(text)

    def _write_inventory(self):
        path = self.path
        common = (
            "-F /dev/null -o UserKnownHostsFile=%s -o GlobalKnownHostsFile=/dev/null "
            "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes" % os.path.join(path, "known_hosts")
        )
        lines = [
            "# mountops SSH lab %s: connection details only (generated by tests/lab)." % self.state["id"],
            "all:",
            "  children:",
            "    lab:",
            "      vars:",
            "        ansible_user: root",
            "        ansible_python_interpreter: /usr/bin/python3",
            "        ansible_ssh_private_key_file: %s" % os.path.join(path, "client_key"),
            '        ansible_ssh_common_args: "%s"' % common,
            "        ansible_control_path_dir: %s" % self.control_dir,
            "      hosts:",
        ]
        for host in self.state["hosts"]:
            lines += [
                "        %s:" % host["name"],
                "          ansible_host: 127.0.0.1",
                "          ansible_port: %d" % host["port"],
            ]
        with open(self.inventory, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")

    # -- access ---------------------------------------------------------------------------

    @property
    def control_dir(self):
        """ssh ControlPersist sockets: in the run dir unless that makes the socket path too long."""
        return control_dir(self.state)

    @property
    def inventory(self):
        return os.path.join(self.path, "inventory.yml")

    @property
    def names(self):
        return [h["name"] for h in self.state["hosts"]]

    def host(self, name):
        for host in self.state["hosts"]:
            if host["name"] == name:
                return host
        raise KeyError(name)

    def built(self, name):
        return self.host(name)["built"]

    def env(self, transport="ssh"):
        """Environment for ansible-playbook against this lab (paramiko reads ~/.ssh/known_hosts)."""
        env = dict(os.environ)
        env["ANSIBLE_CONFIG"] = os.path.join(REPO, "ansible.cfg")
        env["ANSIBLE_INVENTORY"] = self.inventory
        if transport == "paramiko":
            env["HOME"] = os.path.join(self.path, "home")
        return env

    def playbook(self, *args, transport="ssh", timeout=300):
        """Run the venv's ansible-playbook against this lab; returns the CompletedProcess."""
        argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", self.inventory]
        if transport != "ssh":
            argv += ["-c", transport]
        argv += list(args)
        return subprocess.run(
            argv,
            env=self.env(transport),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def save(self):
        tmp = os.path.join(self.path, "lab.json.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.state, handle, indent=1, sort_keys=True)
        os.replace(tmp, os.path.join(self.path, "lab.json"))

    @classmethod
    def load(cls, path):
        with open(os.path.join(path, "lab.json"), encoding="utf-8") as handle:
            return cls(json.load(handle), path)

    def kill_host(self, name):
        """Kill one host's sshd (its namespace's PID 1): the whole host goes away at once."""
        host = self.host(name)
        os.kill(host["ns_pid1"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (ssh_banner(host["port"], 0.2) or _alive(host["pid"])):
            time.sleep(0.05)
        host["killed"] = True
        self.save()

    def memory_bytes(self, name):
        """memory cgroup usage of one host (processes, tmpfs, kernel mount structures)."""
        for path in self.host(name)["cgroups"].values():
            for counter in ("memory.usage_in_bytes", "memory.current"):  # cgroup v1, v2
                candidate = os.path.join(path, counter)
                if os.path.exists(candidate):
                    with open(candidate, encoding="ascii") as handle:
                        return int(handle.read())
        return None

    # -- teardown -------------------------------------------------------------------------

    def down(self):
        """Kill every process of the lab, remove its cgroups and run dir; return what was left."""
        teardown(self.state["cgroup_name"], self.path, self.state.get("hosts", []), control_dir(self.state))
        return self.leftovers()

    def leftovers(self):
        return leftovers(self.state)


def control_dir(state):
    preferred = os.path.join(state["path"], "cp")
    if len(preferred) + 41 < 104:  # ansible names sockets %C (40 hex); sun_path holds 108 bytes
        return preferred
    return os.path.join("/tmp", "mountops-lab-cp-" + state["cgroup_name"])


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return _proc_start(pid) is not None and not _zombie(pid)


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except OSError:
        return False


def build_rootfs(path):
    """A tiny busybox rootfs for runc containers and overlay lower layers (read-only use)."""
    os.makedirs(os.path.join(path, "bin"))
    for sub in ("proc", "dev", "sys", "tmp", "data", "etc"):
        os.makedirs(os.path.join(path, sub))
    shutil.copy2(BUSYBOX, os.path.join(path, "bin", "busybox"))
    for applet in ("sh", "sleep", "cat", "ls", "mount"):
        os.symlink("busybox", os.path.join(path, "bin", applet))
    with open(os.path.join(path, "etc", "hostname"), "w", encoding="ascii") as handle:
        handle.write("container\n")


# --- finding and removing labs, also after a crash ---------------------------------------------


def lab_cgroup_dirs(cgroup_name=None, max_depth=4):
    """Every ``mountops-lab/<name>`` cgroup dir in every hierarchy (``None``: all names)."""
    found = []
    for point in sorted(_hierarchy_points()):
        base_depth = point.rstrip("/").count("/")
        for dirpath, dirs, _files in os.walk(point):
            if dirpath.count("/") - base_depth >= max_depth:
                dirs[:] = []
                continue
            if os.path.basename(dirpath) == CGROUP_DIR:
                for child in sorted(dirs):
                    if cgroup_name is None or child == cgroup_name:
                        found.append(os.path.join(dirpath, child))
                dirs[:] = []
    return found


def _hierarchy_points():
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            pre, _sep, post = line.partition(" - ")
            if post.split(" ", 1)[0] in ("cgroup", "cgroup2"):
                points.append(pre.split(" ")[4])
    return points


def _processes_mentioning(text):
    """Our controller-side helpers (ssh ControlPersist masters) name the lab dir in argv."""
    needle = text.encode()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as handle:
                if needle in handle.read():
                    pids.append(int(name))
        except OSError:
            continue
    return pids


def teardown(cgroup_name, path, hosts=(), control=None, timeout=15.0):
    dirs = lab_cgroup_dirs(cgroup_name)
    for host in hosts:
        for cgroup in host.get("cgroups", {}).values():
            if os.path.isdir(cgroup) and os.path.dirname(cgroup) not in dirs:
                dirs.append(os.path.dirname(cgroup))
    deadline = time.monotonic() + timeout
    while True:
        pids = set()
        for cgroup in dirs:
            pids |= nsutil.cgroup_pids(cgroup)
        for where in (path, control):
            if where:
                pids |= set(_processes_mentioning(where))
        live = [pid for pid in pids if _alive(pid)]
        if not live or time.monotonic() > deadline:
            break
        for pid in live:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        time.sleep(0.05)
    left = []
    for cgroup in dirs:
        for _attempt in range(50):
            left = nsutil.cgroup_rmtree(cgroup)
            if not left:
                break
            time.sleep(0.05)
        parent = os.path.dirname(cgroup)
        with contextlib.suppress(OSError):
            os.rmdir(parent)  # the shared mountops-lab dir, when no other lab uses it
    for where in (control, path):
        if where and os.path.isdir(where):
            shutil.rmtree(where, ignore_errors=True)
    if path:
        _remove_empty_fallback_dirs(os.path.dirname(path))
    return left


def _remove_empty_fallback_dirs(run_root):
    """Drop the run dir once the last lab in it is gone (and /opt/mountops-lab, when the checkout's
    run dir lives there), so no empty directory outlives the tests."""
    dirs = [run_root]
    if os.path.dirname(os.path.realpath(run_root)) == FALLBACK_RUN_BASE:
        dirs.append(FALLBACK_RUN_BASE)
    for where in dirs:
        with contextlib.suppress(OSError):
            os.rmdir(where)  # only succeeds when empty


def leftovers(state):
    """What a lab left behind; empty when teardown was complete."""
    problems = []
    name = state["cgroup_name"]
    for cgroup in lab_cgroup_dirs(name):
        pids = nsutil.cgroup_pids(cgroup)
        problems.append("cgroup %s remains%s" % (cgroup, " with pids %s" % sorted(pids) if pids else ""))
    path = state.get("path")
    for where in (path, control_dir(state) if path else None):
        if where and os.path.exists(where):
            problems.append("%s remains" % where)
        if where:
            for pid in _processes_mentioning(where):
                problems.append("process %d still names %s" % (pid, where))
    ports = {h["port"] for h in state.get("hosts", []) if "port" in h}
    busy = ports & listening_ports()
    if busy:
        problems.append("ports still listening: %s" % sorted(busy))
    ids = {}
    for host in state.get("hosts", []):
        ids.update({int(k): v for k, v in host.get("ns_ids", {}).items()})
    if ids:
        problems += _namespace_references(ids)
    if path:
        with open("/proc/self/mountinfo", "rb") as handle:
            for line in handle:
                if path.encode() in line:
                    problems.append(
                        "mount in the machine's namespace: %s" % line.decode(errors="replace").strip()
                    )
    return problems


def _namespace_references(ids):
    """Processes, open fds or nsfs mounts that still hold one of the lab's mount namespaces.

    ``ids`` maps inode -> unique namespace id: inodes are reused within seconds on a busy
    machine, so a matching inode only counts when the unique id matches too.
    """
    found = []
    wanted = {"mnt:[%d]" % ino: ns_id for ino, ns_id in ids.items()}

    def ours(link, path):
        if link not in wanted:
            return False
        try:
            return nsutil.mntns_id(path) == wanted[link]
        except OSError:
            return False

    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        base = "/proc/" + name
        try:
            link = os.readlink(base + "/ns/mnt")
            if ours(link, base + "/ns/mnt"):
                found.append("process %s is in lab namespace %s" % (name, link))
            for fd in os.listdir(base + "/fd"):
                path = "%s/fd/%s" % (base, fd)
                try:
                    if ours(os.readlink(path), path):
                        found.append("process %s holds a lab namespace open (fd %s)" % (name, fd))
                except OSError:
                    continue
        except OSError:
            continue
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.split(" ")
            if fields[3] in wanted:
                found.append("nsfs mount pins lab namespace %s at %s" % (fields[3], fields[4]))
    return found


def known_labs(run_root=RUN_ROOT):
    """Lab run dirs of this checkout (complete or not)."""
    labs = []
    if os.path.isdir(run_root):
        for entry in sorted(os.listdir(run_root)):
            path = os.path.join(run_root, entry)
            if os.path.isfile(os.path.join(path, "lab.json")):
                try:
                    labs.append(Lab.load(path))
                except (OSError, ValueError):
                    labs.append(None)
    return [lab for lab in labs if lab is not None]


def owner_alive(state):
    owner = state.get("owner") or {}
    pid = owner.get("pid")
    return bool(pid) and _proc_start(pid) == owner.get("start") and not _zombie(pid)


def down_all(run_root=RUN_ROOT, only_strays=False, include_live=False, log=None):
    """Take down this checkout's labs; returns ``{lab id: leftovers}``.

    A stray is a lab whose owning process is gone before it finished (a test run that was
    killed, an ``up`` that crashed), or a lab cgroup with no run dir at all. ``only_strays``
    takes down just those (the pytest session janitor). The default also takes down persistent
    labs (``make lab-up``) but leaves labs that a live test run still owns, unless
    ``include_live``: several people may run tests in one checkout.
    """
    tag = checkout_tag(run_root)
    results = {}
    seen = set()
    for lab in known_labs(run_root):
        state = lab.state
        seen.add(state["cgroup_name"])
        alive = owner_alive(state)
        persistent = state.get("persistent") and state.get("complete")
        if only_strays and (persistent or alive):
            continue
        if not include_live and alive and not persistent:
            if log:
                log("leaving lab %s: a live process (pid %s) owns it" % (state["id"], state["owner"]["pid"]))
            continue
        if log:
            log("taking down lab %s (%d hosts)" % (state["id"], len(state.get("hosts", []))))
        results[state["id"]] = lab.down()
    orphans = {os.path.basename(d) for d in lab_cgroup_dirs()} - seen
    for name in sorted(orphans):
        if not name.startswith(tag + "-"):
            continue
        if log:
            log("removing stray lab cgroup %s (no run dir)" % name)
        lab_path = os.path.join(run_root, name[len(tag) + 1 :])
        teardown(name, lab_path, control=control_dir({"path": lab_path, "cgroup_name": name}))
        results[name] = ["cgroup %s remains" % d for d in lab_cgroup_dirs(name)]
    return results
