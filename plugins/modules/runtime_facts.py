#!/usr/bin/python
# Copyright: mountops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: runtime_facts
short_description: Container runtime and kernel facts, with known-issue advisories
description:
  - Collects what decides whether a container host is exposed to mount storms and propagation
    fan-out, and what a safe fix is, into one fact, C(mount_runtime).
  - Engines (containerd, CRI-O, dockerd, podman, runc, crun, kubelet) with binary, version parsed
    from their C(--version) output, whether they run, their config files and the settings that
    matter (default runtime, runtime table, state and data roots, user namespace settings).
  - The engines' systemd units and drop-ins with C(MountFlags=), C(PrivateMounts=) and the other
    settings that give a service its own mount namespace, and the file and line each value comes
    from. Units are read from files, so systemd need not be running.
  - Every container found in the runtimes' state directories (runc and crun roots, containerd v2
    tasks, docker's runc root, containers/storage for CRI-O and podman) with its bundle's
    C(linux.rootfsPropagation), the runtime's default when it is unset (runc C(rslave), crun
    C(rprivate)), each mount's propagation, user namespace mappings, its pid and its mount
    namespace inode, which is the key C(mountops.fleet.propagation_facts) uses for namespaces.
  - The kubelet root directory and whether it is an rshared mount in the host namespace; kernel
    release and features (listmount/statmount, foreign namespace listing, fanotify mount events,
    tracepoints, kprobes, BTF/kfunc) and the sysctls C(fs.mount-max) and C(user.max_mnt_namespaces).
  - Advisories from a data table of known issues, each with id, severity, evidence, why, fix and
    references.
  - Malformed config or unit files do not fail the module; they are reported in C(problems) with
    file, line and reason, and everything else is still gathered. Engines that are not installed
    are absent.
version_added: 0.1.0
author:
  - mountops contributors (@mountops)
options:
  etc_root:
    description:
      - Root of the C(/etc) tree (engine configs, systemd units in C(/etc/systemd/system)).
      - Paths outside the four roots (C(/usr/lib/systemd/system), C(/usr/share/containers),
        C(/var/lib/kubelet), binaries in C(/usr/bin) ...) are looked up relative to the parent
        directory of this path, so a captured host tree C(T) is analysed with C(etc_root=T/etc).
      - Binaries are only executed when that parent is C(/), that is for the live host.
    type: path
    default: /etc
  run_root:
    description: Root of the C(/run) tree (runtime state directories, C(/run/systemd/system)).
    type: path
    default: /run
  proc_root:
    description:
      - Root of procfs (processes, container pids and mount namespaces, kernel release, sysctls,
        C(config.gz), the host mount table).
      - The kernel syscall probe for listmount/statmount only runs when this is C(/proc).
    type: path
    default: /proc
  sys_root:
    description: Root of sysfs (tracefs, the kprobe PMU, BTF).
    type: path
    default: /sys
  gather_versions:
    description: Run C(<binary> --version) for each engine found on the live host.
    type: bool
    default: true
  version_outputs:
    description:
      - Captured C(--version) outputs keyed by engine name (C(containerd), C(crio), C(docker),
        C(podman), C(runc), C(crun), C(kubelet)); used instead of running the binary, for offline
        analysis of captured trees.
    type: dict
    default: {}
  runtime_roots:
    description:
      - Extra runtime state roots (the C(--root) of runc or crun) to search for containers, in
        addition to the runtimes' default locations.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The state root; it holds one directory per container.
        type: path
        required: true
      runtime:
        description: Which runtime's state format the root holds.
        type: str
        choices: [runc, crun]
        default: runc
      engine:
        description: Engine to attribute these containers to, if any.
        type: str
  timeout:
    description: Seconds each C(--version) command may take.
    type: int
    default: 10
  on_timeout:
    description: What to do when a C(--version) command times out.
    type: str
    choices: [error, warn, ignore]
    default: warn
extends_documentation_fragment:
  - mountops.fleet.attributes.facts
notes:
  - Needs root to read other processes' namespaces and the runtimes' state directories; without
    it, containers are reported without pid-derived data.
seealso:
  - module: mountops.fleet.propagation_facts
"""

EXAMPLES = r"""
- name: Gather container runtime facts
  mountops.fleet.runtime_facts:

- name: Show advisories
  ansible.builtin.debug:
    msg: "{{ item.id }} {{ item.severity }}: {{ item.title }}"
  loop: "{{ ansible_facts.mount_runtime.advisories }}"

- name: Containers that join host peer groups
  ansible.builtin.debug:
    msg: "{{ ansible_facts.mount_runtime.containers
             | selectattr('rootfs_propagation.effective', 'in', ['shared', 'rshared'])
             | map(attribute='id') | list }}"

- name: Analyse a captured host tree offline
  mountops.fleet.runtime_facts:
    etc_root: /srv/captures/node17/etc
    run_root: /srv/captures/node17/run
    proc_root: /srv/captures/node17/proc
    sys_root: /srv/captures/node17/sys
    version_outputs:
      containerd: "containerd github.com/containerd/containerd/v2 v2.0.5 fb4c30d4"

- name: Include containers of a runc started with a custom --root
  mountops.fleet.runtime_facts:
    runtime_roots:
      - path: /run/myapp/runc
        runtime: runc
"""

RETURN = r"""
ansible_facts:
  description: Facts under one key, C(mount_runtime).
  returned: always
  type: dict
  contains:
    mount_runtime:
      description: Container runtime, service, container, kubelet and kernel facts plus advisories.
      returned: always
      type: dict
      contains:
        schema_version:
          description: Version of this fact layout.
          type: int
          sample: 1
        roots:
          description: The roots read (C(etc_root), C(run_root), C(proc_root), C(sys_root)) and C(host_root), the parent of C(etc_root).
          type: dict
        engines:
          description:
            - Engines found (binary, running process, config file or captured version), keyed by
              C(containerd), C(crio), C(docker), C(podman), C(runc), C(crun), C(kubelet).
            - Each has C(binary) (path on the host), C(binary_source) (C(process N) or C(search)),
              C(running), C(pids) (at most 20, daemons in the host mount namespace only),
              C(pids_in_other_mnt_ns) (same daemon in other mount namespaces, such as kind or
              docker-in-docker nodes, not counted as this host's), C(version) (as printed, without a leading C(v)),
              C(version_info) (C(major), C(minor), C(patch), C(prerelease)), C(version_output)
              (first line), C(version_error), C(flags) (config/state flags from the daemon's command
              line), C(config_files) (list of C(path), C(loaded), C(error)) and C(settings).
            - containerd C(settings) -- C(config_version) (1, 2 or 3), C(root), C(state),
              C(cri_plugin) and C(cri_plugin_source), C(merge_strategy) (C(replace), containerd 1.x,
              or C(deep), 2.0+) and C(merge_strategy_basis), C(default_runtime) and
              C(default_runtime_source), C(runtimes) (name to C(runtime_type), C(runtime_path),
              C(binary_name), C(root), C(systemd_cgroup), C(privileged_without_host_devices)),
              C(snapshotter), C(imports) (files merged, in order), C(unimported_dropins)
              (C(conf.d/*.toml) files no C(imports) entry loads).
            - docker C(settings) -- C(default_runtime), C(default_runtime_source), C(runtimes)
              (name to C(path), C(runtime_type), C(args)), C(data_root), C(data_root_mount) (its
              place in the host mount table, same keys as C(kubelet) without the root dir ones;
              dockerd makes it shared at start), C(exec_root),
              C(userns_remap), C(containerd), C(containerd_snapshotter).
            - crio C(settings) -- C(default_runtime), C(runtimes) (name to C(runtime_path),
              C(runtime_type), C(runtime_root), C(allowed_annotations), C(monitor_path), C(source)),
              C(storage_root), C(storage_runroot), C(sources) (setting to the file it came from).
            - podman C(settings) -- C(runtime), C(runtimes) (name to candidate paths), C(userns), C(sources).
            - Container engines also get C(user_namespaces) with C(containers),
              C(with_user_namespace) and C(with_idmapped_mounts) counted over their live
              containers; containerd adds C(idmapped_layers) (true, false, or null when unknown)
              and C(idmapped_layers_basis).
          type: dict
          sample:
            containerd:
              binary: /usr/bin/containerd
              running: true
              version: 2.0.5
              settings: {config_version: 3, default_runtime: runc, state: /run/containerd}
        services:
          description:
            - systemd units of the engines, keyed by unit name, read from unit files and drop-ins
              (C(/etc), C(/run), C(/usr/local/lib), C(/usr/lib), C(/lib)).
            - A unit is listed when its unit file or a drop-in of its own exists; C(unit_file) is null
              for drop-ins whose package is not installed (they apply once it is).
            - Each has C(engine), C(unit_file), C(masked), C(drop_ins) (in load order), C(settings)
              (C(MountFlags), C(PrivateMounts) and the settings that imply a private mount namespace,
              each C(value), C(source) file and C(line); C(value) is null where an empty assignment
              reset it), C(mount_flags), C(private_mounts) and C(own_mount_namespace) (names of the
              settings that give the service its own mount namespace).
          type: dict
        containers:
          description:
            - One entry per container found in the runtimes' state directories.
            - C(id), C(engine) (C(containerd), C(docker), C(crio), C(podman) or null for a bare
              runtime), C(runtime) (C(runc) or C(crun)), C(containerd_namespace), C(bundle),
              C(state_dirs), C(config_source) (the C(config.json) read, or C(runc state.json)).
            - C(pid), C(alive) (the pid exists and, for runc, its start time matches the state),
              C(mnt_ns) (mount namespace inode, the key C(propagation_facts) uses), C(mnt_ns_key)
              (C(mnt:[N])), C(mnt_ns_dev), C(in_host_mnt_ns).
            - C(rootfs_propagation) with C(configured) (C(linux.rootfsPropagation) or null),
              C(effective) (the configured value, else the runtime's default, which is what the runtime
              applies to the container's mount tree), C(runtime_default) and C(default_applied).
              runc makes the rootfs parent mount private before C(pivot_root), so the root mount
              itself can end up private even with C(rshared); mounts below it (volumes) follow
              C(effective) unless their own option says otherwise. The kernel's view of each
              namespace is in C(propagation_facts), joined on C(mnt_ns).
            - C(mounts) (C(destination), C(source), C(type), C(options), C(propagation),
              C(idmapped)), C(shared_mounts) and C(idmapped_mounts) (destinations),
              C(user_namespace) (C(enabled), C(uid_mappings), C(gid_mappings)), C(pod)
              (C(name), C(namespace), C(container) from CRI annotations, or null).
          type: list
          elements: dict
        host_mnt_ns:
          description: Inode of the host mount namespace (PID 1's, or kthreadd's when PID 1 is unreadable).
          type: int
        host_mnt_ns_source:
          description: Where C(host_mnt_ns) came from.
          type: str
        host_mounts:
          description:
            - From the host mount table. C(source), C(count), C(ovl_idmapped_tmpmounts) (mounts
              under containerd's C(tmpmounts/ovl-idmapped*)) and C(ovl_idmapped_examples).
          type: dict
        kubelet:
          description:
            - Null when kubelet is neither installed nor has a root directory.
            - C(root_dir) and C(root_dir_source) (C(command line) or C(default)), C(mountinfo)
              read, C(is_mount_point), C(mount_point) (the mount holding the root dir),
              C(propagation), C(peer_group), C(submounts), C(submounts_not_shared), and C(rshared)
              (the root dir is a shared mount point and every mount below it is shared).
          type: dict
        kernel:
          description:
            - C(release), C(version) (C(major), C(minor), C(patch)), C(machine), C(config_source)
              and C(config) (the relevant C(CONFIG_*) values from C(/proc/config.gz)).
            - C(features) -- C(listmount), C(statmount), C(mnt_ns_id), C(fanotify_mount_events),
              C(tracepoints_syscalls), C(tracepoints_lock_contention), C(kprobes) (from the kprobe
              PMU), C(btf), C(kfunc); each with C(available) (true, false or null when unknown),
              C(method) and C(detail); tracepoint groups also list C(missing) events.
            - C(sysctls) -- C(fs.mount-max) and C(user.max_mnt_namespaces).
          type: dict
        advisories:
          description:
            - Known issues that match this host, most severe first. Each has C(id), C(severity)
              (C(high), C(medium), C(low), C(info)), C(title), C(evidence) (list of strings),
              C(why), C(fix) and C(references).
          type: list
          elements: dict
        advisories_checked:
          description: IDs of every advisory evaluated, so that absence means "checked, not found".
          type: list
          elements: str
        problems:
          description:
            - Inputs that could not be used, each with C(component), C(file), C(line) (null when
              unknown) and C(message). The rest of the facts are still gathered.
          type: list
          elements: dict
        warnings:
          description: Collector warnings (for example an unreadable procfs).
          type: list
          elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mountops.fleet.plugins.module_utils._gather import argument_spec, run_facts_module


def get_argument_spec():
    return argument_spec("runtime")


def main():
    module = AnsibleModule(argument_spec=get_argument_spec(), supports_check_mode=True)
    run_facts_module("runtime", module)


if __name__ == "__main__":
    main()
