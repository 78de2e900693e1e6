"""Scenarios: real kernel state built inside one lab host, by its PID 1 (``hostinit.py``).

Each builder takes the host ``Context`` and its parameters and returns the facts the tests
need as expectations (container ids, namespace inodes, pinned inodes, counts). Those facts stay
in the lab's run dir; the inventory and the product never see them.

Composable: a host runs several scenarios in the order given (``kubelet+docker-root``).
Stdlib only; imported inside a host as top-level ``scenarios`` and on the controller as
``tests.lab.scenarios`` (for ``SCENARIOS``/``DEFAULTS``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time

try:
    from . import nsutil  # on the controller, as tests.lab.scenarios
except ImportError:  # inside a lab host, next to hostinit.py
    import nsutil

CLONE_NEWNS, CLONE_NEWUSER = nsutil.CLONE_NEWNS, nsutil.CLONE_NEWUSER
MS_BIND, MS_PRIVATE, MS_REC = nsutil.MS_BIND, nsutil.MS_PRIVATE, nsutil.MS_REC
cgroup_join, cgroup_mkdir, idmapped_bind = nsutil.cgroup_join, nsutil.cgroup_mkdir, nsutil.idmapped_bind
mount, mountinfo_points, set_propagation = nsutil.mount, nsutil.mountinfo_points, nsutil.set_propagation
unshare, write_file = nsutil.unshare, nsutil.write_file

SLEEP = "/usr/bin/sleep"

# name -> default parameter (a count; ``shared-storm:40`` overrides it).
DEFAULTS = {
    "healthy": 6,
    "shared-storm": 24,
    "slave-readers": 20,
    "kubelet": 3,
    "docker-root": 4,
    "runc": 2,
    "idmap-leak": 12,
    "pinned-ns": 1,
    "containerd-config": 0,
    "docker-config": 0,
    "crio-config": 0,
    "podman-config": 0,
    "systemd-dropins": 0,
    "runtime-configs": 0,
}
SCENARIOS = tuple(DEFAULTS)
# slave-readers: a shared tree of TREE_MOUNTS mounts, rbind-replicated TREE_REPLICAS times,
# so every master peer group a reader's slave mount points at has TREE_REPLICAS + 1 members.
TREE_MOUNTS = 40
TREE_REPLICAS = 10


def container_id(*parts):
    return hashlib.sha256("/".join(str(p) for p in parts).encode()).hexdigest()


class Context:
    """What a scenario may use: the host config, cgroups, namespace spawning, a command runner."""

    def __init__(self, cfg, log):
        self.cfg = cfg
        self.name = cfg["name"]
        self.log = log
        self.spawned = []  # (pid, role)
        self.pins = []  # (nsfs bind mount path, role)

    def say(self, message):
        self.log.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), message))

    def cgroup(self, rel):
        """Create ``rel`` under the host's cgroup in every hierarchy; return the directories."""
        paths = []
        for base in self.cfg["cgroups"].values():
            path = os.path.join(base, rel.strip("/"))
            cgroup_mkdir(path)
            paths.append(path)
        return paths

    def run(self, argv, capture=True):
        self.say("run: %s" % " ".join(argv))
        if not capture:
            self.log.flush()
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, check=False
            )
            if done.returncode != 0:
                raise RuntimeError("%s failed (%d), see host.log" % (argv[0], done.returncode))
            return ""
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (argv[0], done.returncode, done.stderr.strip()))
        return done.stdout

    def spawn(self, role, cgroup_rel=None, propagation="private", setup=None, cpu=None):
        """Fork a long-lived process (``sleep infinity``) in a new mount namespace.

        ``propagation`` is applied recursively to the new namespace's copy (``unchanged`` keeps
        the host's shared mounts as peers); ``setup`` runs in the child after that. Returns
        ``(pid, ns_inode)`` once the child has exec'd, or raises with the child's error.
        """
        cgroups = self.cgroup(cgroup_rel) if cgroup_rel else []
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: never returns
            try:
                os.close(read_fd)
                os.setsid()
                cgroup_join(cgroups)
                if cpu is not None:
                    os.sched_setaffinity(0, {cpu})
                unshare(CLONE_NEWNS)
                if propagation != "unchanged":
                    set_propagation("/", propagation)
                if setup is not None:
                    setup()
                null = os.open("/dev/null", os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.execv(SLEEP, ["sleep", "infinity"])
            except BaseException as err:  # noqa: BLE001 - report anything to the parent
                os.write(write_fd, ("%s: %s" % (type(err).__name__, err)).encode()[:4000])
            finally:
                os._exit(127)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            error = pipe.read()
        if error:
            os.waitpid(pid, 0)
            raise RuntimeError("spawning %s: %s" % (role, error.decode(errors="replace")))
        inode = os.stat("/proc/%d/ns/mnt" % pid).st_ino
        self.spawned.append((pid, role))
        return pid, inode

    def namespace_inodes(self):
        """inode -> role of every namespace this host made (pinned ones included)."""
        found = {}
        for path, role in self._namespace_paths():
            try:
                found[str(os.stat(path).st_ino)] = role
            except OSError:
                continue
        return found

    def namespace_ids(self):
        """inode -> the kernel's unique namespace id (inodes are reused, these ids are not)."""
        found = {}
        for path, _role in self._namespace_paths():
            try:
                found[str(os.stat(path).st_ino)] = nsutil.mntns_id(path)
            except OSError:
                continue
        return found

    def _namespace_paths(self):
        yield "/proc/self/ns/mnt", "host"
        for pid, role in self.spawned:
            yield "/proc/%d/ns/mnt" % pid, role
        for path, role in self.pins:
            yield path, role


def _container(ctx, runtime, cid, cgroup_rel, propagation, setup=None):
    pid, inode = ctx.spawn("%s:%s" % (runtime, cid[:12]), cgroup_rel, propagation, setup)
    return {"id": cid, "runtime": runtime, "pid": pid, "ns": inode, "cgroup": cgroup_rel}


def _kube_cgroup(pod_uid, cid):
    pod = pod_uid.replace("-", "_")
    return (
        "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/cri-containerd-%s.scope"
        % (pod, cid)
    )


def _pod_uid(*parts):
    h = container_id("pod", *parts)
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:32])


# --- runtime configuration files ----------------------------------------------------------


def _write_config(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_file(path, text)
    return path


def containerd_config(ctx, _count=0, snapshotter="overlayfs"):
    text = (
        "version = 2\n"
        'root = "/var/lib/containerd"\n'
        'state = "/run/containerd"\n\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd]\n'
        '  snapshotter = "%s"\n'
        '  default_runtime_name = "runc"\n\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n'
        '  runtime_type = "io.containerd.runc.v2"\n\n'
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
        "  SystemdCgroup = true\n" % snapshotter
    )
    return {"files": [_write_config("/etc/containerd/config.toml", text)]}


def docker_config(ctx, _count=0):
    daemon = {
        "data-root": "/var/lib/docker",
        "default-runtime": "runc",
        "runtimes": {"crun": {"path": "/usr/bin/crun"}},
        "storage-driver": "overlay2",
    }
    return {"files": [_write_config("/etc/docker/daemon.json", json.dumps(daemon, indent=2) + "\n")]}


def crio_config(ctx, _count=0):
    text = (
        "[crio.runtime]\n"
        'default_runtime = "crun"\n\n'
        "[crio.runtime.runtimes.crun]\n"
        'runtime_path = "/usr/bin/crun"\n'
        'runtime_root = "/run/crun"\n'
    )
    return {"files": [_write_config("/etc/crio/crio.conf.d/10-crun.conf", text)]}


def podman_config(ctx, _count=0):
    text = '[engine]\nruntime = "crun"\n\n[containers]\nnetns = "host"\n'
    return {"files": [_write_config("/etc/containers/containers.conf", text)]}


def systemd_dropins(ctx, _count=0):
    files = [
        _write_config(
            "/etc/systemd/system/docker.service.d/10-mountflags.conf",
            "[Service]\n# known to break container start since Docker 18.09 (moby #38191)\nMountFlags=slave\n",
        ),
        _write_config(
            "/etc/systemd/system/containerd.service.d/10-private-mounts.conf",
            "[Service]\nPrivateMounts=no\n",
        ),
    ]
    return {"files": files}


def runtime_configs(ctx, count=0):
    files = []
    for build in (containerd_config, docker_config, crio_config, podman_config, systemd_dropins):
        files += build(ctx)["files"]
    return {"files": files}


# --- scenarios that build kernel state ------------------------------------------------------


def healthy(ctx, count):
    """Kubernetes pods on containerd whose containers are private (propagation None)."""
    facts = containerd_config(ctx)
    facts["containers"] = []
    for i in range(count):
        cid = container_id(ctx.name, "healthy", i)
        cg = _kube_cgroup(_pod_uid(ctx.name, "healthy", i), cid)
        facts["containers"].append(_container(ctx, "containerd", cid, cg, "private"))
    return facts


def shared_storm(ctx, count):
    """Docker containers cloned from the shared host tree without going private: all peers."""
    facts = docker_config(ctx)
    facts["containers"] = []
    for i in range(count):
        cid = container_id(ctx.name, "storm", i)
        cg = "system.slice/docker-%s.scope" % cid
        facts["containers"].append(_container(ctx, "docker", cid, cg, "unchanged"))
    return facts


def slave_readers(ctx, count, mounts=TREE_MOUNTS, replicas=TREE_REPLICAS):
    """A large shared tree, replicated by rbind, read by systemd-like slave service namespaces."""
    tree = "/srv/tree"
    os.makedirs(tree)
    mount("tmpfs", tree, "tmpfs", 0, "size=4m")
    for i in range(mounts):
        path = os.path.join(tree, "vol%02d" % i)
        os.makedirs(path)
        mount("tmpfs", path, "tmpfs", 0, "size=64k")
    for j in range(replicas):
        path = "/srv/replica%02d" % j
        os.makedirs(path)
        mount(tree, path, None, MS_BIND | MS_REC)
    services = []
    for k in range(count):
        unit = "lab-reader-%02d.service" % k
        pid, inode = ctx.spawn(unit, "system.slice/" + unit, "slave")
        services.append({"unit": unit, "pid": pid, "ns": inode})
    return {
        "services": services,
        "tree_mounts": mounts + 1,
        "replicas": replicas,
        "ring_size": replicas + 1,
    }


def kubelet(ctx, count):
    """kubelet's rshared /var/lib/kubelet, pod volumes, HostToContainer pods and one Bidirectional."""
    facts = containerd_config(ctx)
    root = "/var/lib/kubelet"
    os.makedirs(root, exist_ok=True)
    _write_config("/var/lib/kubelet/config.yaml", "kind: KubeletConfiguration\ncgroupDriver: systemd\n")
    mount(root, root, None, MS_BIND)
    set_propagation(root, "shared")
    facts["containers"], facts["volumes"] = [], []
    for i in range(count):
        uid = _pod_uid(ctx.name, "kubelet", i)
        volume = os.path.join(root, "pods", uid, "volumes", "kubernetes.io~empty-dir", "data")
        os.makedirs(volume)
        mount("tmpfs", volume, "tmpfs", 0, "size=1m")
        facts["volumes"].append(volume)
        cid = container_id(ctx.name, "kubelet", i)
        bidirectional = i == 0
        setup = _keep_shared(volume) if bidirectional else None
        record = _container(
            ctx,
            "containerd",
            cid,
            _kube_cgroup(uid, cid),
            "unchanged" if bidirectional else "slave",
            setup,
        )
        record["mount_propagation"] = "Bidirectional" if bidirectional else "HostToContainer"
        record["volume"] = volume
        facts["containers"].append(record)
    return facts


def _keep_shared(volume):
    """In the child: make every mount private except ``volume`` (it stays a host peer)."""

    def setup():
        for point in mountinfo_points():
            if point == volume or point.startswith(volume + "/"):
                continue
            try:
                mount(None, point, None, MS_PRIVATE)
            except OSError:
                continue  # over-mounted points cannot be reached by path; they are private copies

    return setup


def docker_root(ctx, count):
    """dockerd's shared data root with overlay2 container roots and rslave containers."""
    facts = docker_config(ctx)
    root = "/var/lib/docker"
    os.makedirs(root, exist_ok=True)
    mount("tmpfs", root, "tmpfs", 0, "size=32m")
    set_propagation(root, "shared", recursive=False)
    facts["containers"] = []
    for i in range(count):
        cid = container_id(ctx.name, "docker-root", i)
        layer = os.path.join(root, "overlay2", cid)
        for sub in ("diff", "work", "merged"):
            os.makedirs(os.path.join(layer, sub))
        options = "lowerdir=%s,upperdir=%s/diff,workdir=%s/work" % (ctx.cfg["rootfs"], layer, layer)
        mount("overlay", os.path.join(layer, "merged"), "overlay", 0, options)
        cg = "system.slice/docker-%s.scope" % cid
        record = _container(ctx, "docker", cid, cg, "slave")
        record["rootfs"] = os.path.join(layer, "merged")
        facts["containers"].append(record)
    return facts


def runc_containers(ctx, count):
    """Real runc containers from the lab's busybox rootfs; half join the host peer group."""
    shared_dir = "/srv/runc-shared"
    os.makedirs(shared_dir)
    mount("tmpfs", shared_dir, "tmpfs", 0, "size=1m")
    facts = {"containers": []}
    for i in range(count):
        cid = container_id(ctx.name, "runc", i)[:32]
        shared = i % 2 == 1
        bundle = os.path.join("/run/lab-bundles", cid)
        os.makedirs(bundle)
        spec = runc_spec(ctx.cfg["rootfs"], "shared" if shared else "rslave", shared_dir if shared else None)
        # Relative, and naming the host's own subtree: runc puts v1 cgroups under its own
        # cgroup but, in hybrid mode, the unified one under the hierarchy root; this keeps both
        # inside the lab's subtree, where teardown finds them.
        spec["linux"]["cgroupsPath"] = os.path.join(ctx.cfg["cgroup_rel"], "runc", cid)
        write_file(os.path.join(bundle, "config.json"), json.dumps(spec, indent=1))
        pidfile = os.path.join(bundle, "pid")
        # -d hands runc's stdio to the container: give it the log, never a pipe we wait on.
        ctx.run(["runc", "run", "-d", "--pid-file", pidfile, "--bundle", bundle, cid], capture=False)
        with open(pidfile, encoding="utf-8") as handle:
            pid = int(handle.read().strip())
        facts["containers"].append(
            {
                "id": cid,
                "runtime": "runc",
                "pid": pid,
                "ns": os.stat("/proc/%d/ns/mnt" % pid).st_ino,
                "rootfs_propagation": "shared" if shared else "rslave",
                "bind": shared_dir if shared else None,
            }
        )
        ctx.spawned.append((pid, "runc:%s" % cid[:12]))
    return facts


def runc_spec(rootfs, rootfs_propagation, bind_shared=None):
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
    ]
    if bind_shared:
        mounts.append(
            {
                "destination": "/data",
                "type": "bind",
                "source": bind_shared,
                "options": ["rbind", "rshared", "rw"],
            }
        )
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["sleep", "2147483647"],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": "runc",
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "rootfsPropagation": rootfs_propagation,
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def idmap_leak(ctx, count):
    """Leaked idmapped layer mounts under containerd's tmpmounts (containerd #12139)."""
    facts = containerd_config(ctx)
    root = "/var/lib/containerd"
    os.makedirs(root, exist_ok=True)
    mount("tmpfs", root, "tmpfs", 0, "size=8m")
    snapshots = os.path.join(root, "io.containerd.snapshotter.v1.overlayfs", "snapshots")
    userns_fd, holder = _user_namespace()
    mounts, idmapped = [], 0
    try:
        for i in range(count):
            layer = os.path.join(snapshots, str(i + 1), "fs")
            os.makedirs(layer)
            target = os.path.join(root, "tmpmounts", "ovl-idmapped%09d" % (271828 + i * 7919))
            os.makedirs(target)
            try:
                idmapped_bind(layer, target, userns_fd)
                idmapped += 1
            except OSError as err:
                ctx.say("idmapped mount failed (%s); leaving a plain bind" % err)
                mount(layer, target, None, MS_BIND)
            mounts.append(target)
    finally:
        os.close(userns_fd)
        os.kill(holder, 9)
        os.waitpid(holder, 0)
    facts.update({"mounts": mounts, "idmapped": idmapped})
    return facts


def _user_namespace():
    """A user namespace mapping 0-65535 to 100000+ (what containerd creates per pod)."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            unshare(CLONE_NEWUSER)
            os.write(ready_w, b"x")
            os.read(go_r, 1)
        finally:
            os._exit(0)
    os.read(ready_r, 1)
    for name in ("uid_map", "gid_map"):
        write_file("/proc/%d/%s" % (pid, name), "0 100000 65536\n")
    fd = os.open("/proc/%d/ns/user" % pid, os.O_RDONLY | os.O_CLOEXEC)
    for end in (ready_r, ready_w, go_r, go_w):
        os.close(end)
    return fd, pid


def pinned_ns(ctx, count):
    """Mount namespaces kept alive only by an nsfs bind mount; their process is gone."""
    pinned = []
    for i in range(count):
        pid, inode = _newer_namespace(ctx, "pinned-%d" % i)
        target = "/run/mntns/lab-pinned-%d" % i
        write_file(target, "")
        mount("/proc/%d/ns/mnt" % pid, target, None, MS_BIND)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        ctx.spawned = [(p, r) for p, r in ctx.spawned if p != pid]
        ctx.pins.append((target, "pinned-%d" % i))
        pinned.append({"path": target, "ns": inode, "stat_ino": os.stat(target).st_ino})
    return {"pinned": pinned}


def _newer_namespace(ctx, role, attempts=64):
    """A namespace the kernel lets us pin: its id must be above ours (``mnt_ns_loop``).

    Namespace ids come from per-CPU batches on this kernel, so a namespace created after ours
    can still get a smaller id, and the bind then fails with EINVAL. Try each CPU in turn.
    """
    mine = nsutil.mntns_id("/proc/self/ns/mnt")
    cpus = sorted(os.sched_getaffinity(0))
    for attempt in range(attempts):
        pid, inode = ctx.spawn(role, None, "private", cpu=cpus[attempt % len(cpus)])
        if nsutil.mntns_id("/proc/%d/ns/mnt" % pid) > mine:
            return pid, inode
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        ctx.spawned = [(p, r) for p, r in ctx.spawned if p != pid]
    raise RuntimeError("no namespace newer than ours (id %d) after %d attempts" % (mine, attempts))


BUILDERS = {
    "healthy": healthy,
    "shared-storm": shared_storm,
    "slave-readers": slave_readers,
    "kubelet": kubelet,
    "docker-root": docker_root,
    "runc": runc_containers,
    "idmap-leak": idmap_leak,
    "pinned-ns": pinned_ns,
    "containerd-config": containerd_config,
    "docker-config": docker_config,
    "crio-config": crio_config,
    "podman-config": podman_config,
    "systemd-dropins": systemd_dropins,
    "runtime-configs": runtime_configs,
}


def build(ctx, spec):
    started = time.monotonic()
    ctx.say("scenario %s (%s)" % (spec["name"], spec["count"]))
    facts = BUILDERS[spec["name"]](ctx, spec["count"])
    facts["count"] = spec["count"]
    facts["seconds"] = round(time.monotonic() - started, 3)
    return facts
