"""A development node on this machine: containerd, kubelet, kube-scheduler and kube-proxy, so pods run.

The local control plane has no kubelet, so without this module no pod of the Helm chart ever runs and a
wrong probe, a missing volume or a Service that selects nothing would fail no test. A `Node` runs, next
to a `controlplane.ControlPlane` started with `address=ADDRESS`:

- containerd (from its Go module, `build.ensure_node_binaries`) with its own root, state directory and
  socket, Debian's runc, the overlayfs snapshotter, and a CNI configuration (ptp + host-local +
  portmap, Debian's plugins in /usr/lib/cni) in a conf dir of its own, so podman's is never read;
- the pause image compiled from the Kubernetes module's `build/pause/linux/pause.c` and the operator
  image, both built with podman, saved and imported (no registry can be reached);
- the kubelet (cgroup v1: `failCgroupV1: false`, `cgroupDriver: cgroupfs`), kube-scheduler and
  kube-proxy (iptables mode), each authenticated by a client certificate from the cluster CA.

Pods cannot reach 127.0.0.1 of the host, so the harness creates a dummy interface (`INTERFACE`) with one
private address (`ADDRESS`) the API server binds and advertises: the `kubernetes` Service leads there,
and so can anything the pods must reach on the host (the reference gateway). Nothing listens on, or
sends through, the machine's external interface.

`stop` (what `rental-controlplane down` runs) leaves the host as it found it, from the record `start`
wrote first (`node.json`): processes, mounts under the node's directories, kubepods cgroups, the
iptables chains kube-proxy, the kubelet and CNI added, the sysctls they changed, the dummy interface.
The pure parts (configuration documents, cleanup plans) are functions tested in
`tests/unit/devenv/test_node.py`.

Called by `rental_devenv.cli` (`up --node`) and the fixtures in `tests/node/`.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rental_devenv import build, certs, controlplane, image

__all__ = [
    "ADDRESS",
    "INTERFACE",
    "NODE_NAME",
    "POD_SUBNET",
    "SYSCTLS",
    "Node",
    "NodeError",
    "cgroups_to_remove",
    "cni_conflist",
    "containerd_config",
    "iptables_cleanup",
    "kube_proxy_config",
    "kubeconfig_document",
    "kubelet_config",
    "mounts_to_unmount",
    "node_chains",
    "pause_image",
    "remove_interface",
    "save_image",
    "setup_interface",
]

INTERFACE = "rental-node0"
# A private address no network here uses: the node's InternalIP, the API server's endpoint and the
# address host processes bind when pods must reach them.
ADDRESS = "10.250.0.1"
NODE_NAME = "rental-node0"
# Not podman's 10.88.0.0/16; the Service range is the control plane's 10.0.0.0/24.
POD_SUBNET = "10.244.0.0/24"
KUBELET_PORT = 10250
COMPONENTS = ("containerd", "kubelet", "kube-scheduler", "kube-proxy")
# What the kubelet (kernel tunables), kube-proxy and the CNI plugins may change: recorded before the
# node starts and written back by `stop`. Absent keys (no such module loaded) are skipped.
SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.ipv4.conf.all.route_localnet",
    "net.ipv6.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_timeout_established",
    "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
)
_CHAIN_PREFIXES = ("KUBE-", "CNI-")
_IPTABLES = ("iptables", "ip6tables")
_CNI_BIN_DIR = Path("/usr/lib/cni")
_RUNC = Path("/usr/bin/runc")
_CNI_NETWORK = "rental-node"
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_MNT_DETACH = 2
_PR_SET_PDEATHSIG = 1
# Directories the kubelet and CNI use outside any configurable root: removed by `stop` only if absent
# before `start`.
_HOST_DIRECTORIES = (Path("/var/log/containers"), Path("/var/lib/cni"), Path("/run/containerd"))


class NodeError(RuntimeError):
    """A node component failed to start or become ready; the message carries the end of its log."""


def _log(message: str) -> None:
    print(f"[node] {message}", file=sys.stderr, flush=True)


# -- configuration documents (pure) ------------------------------------------------------------------------
def kubeconfig_document(server: str, ca: Path, cert: Path, key: Path, user: str) -> dict[str, Any]:
    """A kubeconfig naming its certificate files (the components read them; nothing is embedded)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
        "current-context": "local",
    }


def containerd_config(
    *,
    root: Path,
    state: Path,
    socket_path: Path,
    cni_conf_dir: Path,
    pause: str,
    opt_dir: Path,
    runc: Path = _RUNC,
) -> str:
    """containerd's config (version 3): its own root, state and socket; Debian's runc; the pause image."""
    return f"""version = 3
root = '{root}'
state = '{state}'
# NRI would listen on /var/run/nri; nothing here uses it.
disabled_plugins = ['io.containerd.nri.v1.nri']

[grpc]
  address = '{socket_path}'

[plugins]
  [plugins.'io.containerd.internal.v1.opt']
    path = '{opt_dir}'
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{pause}'
  [plugins.'io.containerd.cri.v1.runtime']
    # Network namespaces under the state directory, not /var/run/netns: `stop` finds them there.
    netns_mounts_under_state_dir = true
    # A negative oom_score_adj (the kubelet asks -998 for sandboxes) needs CAP_SYS_RESOURCE, which this
    # sandboxed machine does not grant: runc would fail with "can't get final child's PID from pipe".
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = '{runc}'
      Root = '{state}/runc'
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['{_CNI_BIN_DIR}']
      conf_dir = '{cni_conf_dir}'
  [plugins.'io.containerd.grpc.v1.cri']
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
"""


def cni_conflist(*, subnet: str, ipam_dir: Path) -> dict[str, Any]:
    """ptp + host-local + portmap, as `hack/local-up-cluster.sh` configures it, without masquerading:
    pods talk only to each other and to the node's own address, so no NAT chain is needed."""
    return {
        "cniVersion": "1.0.0",
        "name": _CNI_NETWORK,
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(
    *, address: str, ca: Path, runtime_socket: Path, resolv_conf: Path, pod_logs: Path, healthz_port: int
) -> dict[str, Any]:
    """KubeletConfiguration for this machine (cgroup v1 hybrid, no systemd as PID 1, no swap)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # cgroup v1 is deprecated since 1.35 and refused by default; allowed explicitly (KEP-5573).
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": "/",
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{runtime_socket}",
        "address": address,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "Webhook"},
        # No cluster DNS: pods get this (empty) file instead of the host's resolvers.
        "resolvConf": str(resolv_conf),
        "podLogsDir": str(pod_logs),
        "protectKernelDefaults": False,
        "serializeImagePulls": False,
        # A development disk is often fuller than a server's: evict only when it is really full.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
    }


def kube_proxy_config(
    *, kubeconfig: Path, cluster_cidr: str, address: str, healthz_port: int, metrics_port: int
) -> dict[str, Any]:
    """KubeProxyConfiguration: iptables mode, and no host-wide sysctl it need not touch."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "mode": "iptables",
        "clusterCIDR": cluster_cidr,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        # NodePorts only on the node's private address, never on the external interface.
        "nodePortAddresses": [f"{address}/32"],
        # 0 leaves nf_conntrack_max and the conntrack timeouts as they are.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        # NodePorts on 127.0.0.1 would need net.ipv4.conf.all.route_localnet=1.
        "iptables": {"localhostNodePorts": False},
    }


# -- cleanup plans (pure) ------------------------------------------------------------------------------------
def _unescape_mount_path(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), path)


def mounts_to_unmount(mountinfo: str, roots: Iterable[Path]) -> list[str]:
    """Mount points at or under any of `roots`, in the order to unmount them (latest mounted first)."""
    prefixes = [str(root).rstrip("/") for root in roots]
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = _unescape_mount_path(fields[4])
        if any(point == prefix or point.startswith(prefix + "/") for prefix in prefixes):
            points.append(point)
    return list(reversed(points))


def cgroups_to_remove(directories: Iterable[Path]) -> list[Path]:
    """Cgroup directories to rmdir, children before parents (deepest paths first)."""
    return sorted(set(directories), key=lambda path: (-len(path.parts), str(path)))


def _chains(save: str) -> dict[str, set[str]]:
    """{table: chain names} from `iptables-save` output."""
    tables: dict[str, set[str]] = {}
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            tables.setdefault(table, set())
        elif line.startswith(":") and table:
            tables[table].add(line[1:].split()[0])
    return tables


def node_chains(save: str) -> dict[str, set[str]]:
    """The chains in `iptables-save` output that the node's components name (KUBE-*, CNI-*)."""
    return {
        table: {chain for chain in chains if chain.startswith(_CHAIN_PREFIXES)}
        for table, chains in _chains(save).items()
    }


def iptables_cleanup(save: str, before: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Arguments for `iptables` that remove the KUBE-*/CNI-* chains absent from `before`: first every
    rule elsewhere that jumps to one, then the chains' own rules, then the chains."""
    added = {
        table: sorted(chains - set(before.get(table, ()))) for table, chains in node_chains(save).items()
    }
    commands: list[list[str]] = []
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith("-A ") and added.get(table):
            parts = shlex.split(line)  # comments are quoted: "kubernetes service portals"
            chain = parts[1]
            target = parts[parts.index("-j") + 1] if "-j" in parts else ""
            if chain not in added[table] and target in added[table]:
                commands.append(["-t", table, "-D", *parts[1:]])
    for table, chains in added.items():
        commands += [["-t", table, "-F", chain] for chain in chains]
    for table, chains in added.items():
        commands += [["-t", table, "-X", chain] for chain in chains]
    return commands


# -- host set-up ---------------------------------------------------------------------------------------------
def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)
    if check and result.returncode != 0:
        raise NodeError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def setup_interface(*, wait_seconds: float = 0.0) -> None:
    """Create the node's interface with ADDRESS: where pods meet the API server and the gateway.

    One node per machine: while the interface exists another node runs (a test session, `up --node`),
    so wait up to `wait_seconds` for it to go, then refuse rather than share or tear down its address.
    """
    deadline = time.monotonic() + wait_seconds
    while _ip("link", "show", INTERFACE, check=False).returncode == 0:
        if time.monotonic() >= deadline:
            raise NodeError(
                f"{INTERFACE} exists: another development node runs on this machine"
                " (`rental-controlplane down` stops one started by `up --node`)"
            )
        time.sleep(2)
    # Kernels built without the dummy driver (this machine's) still have bridges: a bridge without
    # ports holds a local address just as well.
    if _ip("link", "add", INTERFACE, "type", "dummy", check=False).returncode != 0:
        _ip("link", "add", INTERFACE, "type", "bridge")
    _ip("addr", "add", f"{ADDRESS}/32", "dev", INTERFACE)
    _ip("link", "set", INTERFACE, "up")


def remove_interface() -> None:
    if _ip("link", "show", INTERFACE, check=False).returncode == 0:
        _ip("link", "del", INTERFACE)


# -- images --------------------------------------------------------------------------------------------------
def pause_image() -> tuple[str, Path]:
    """The pause image (name, saved archive): `pause.c` from the Kubernetes module, linked statically,
    in a `FROM scratch` image; built once per Kubernetes version into the cache."""
    k8s = build.kubernetes_version()
    name = f"localhost/pause:{k8s}"
    work = build.cache_root() / "images" / f"pause-{k8s}"
    archive = work / "pause.tar"
    if archive.exists():
        return name, archive
    with build.exclusive(build.cache_root() / "images.lock"):
        if archive.exists():
            return name, archive
        work.mkdir(parents=True, exist_ok=True)
        source = build.module_file("k8s.io/kubernetes", k8s, "build/pause/linux/pause.c")
        _log(f"building the pause image {name} from {source}")
        subprocess.run(
            [
                "gcc",
                "-Os",
                "-static",
                "-Wall",
                "-Werror",
                f"-DVERSION={k8s}",
                "-o",
                str(work / "pause"),
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        (work / "Containerfile").write_text(
            'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n'
        )
        image.podman("build", "--pull=never", "--tag", name, "--file", str(work / "Containerfile"), str(work))
        partial = work / "pause.tar.partial"
        partial.unlink(missing_ok=True)
        image.podman("save", "--format", "docker-archive", "--output", str(partial), name)
        partial.rename(archive)
    return name, archive


def save_image(tag: str, directory: Path) -> Path:
    """`podman save` of an image built here, ready for `ctr images import`."""
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / (re.sub(r"[^\w.-]+", "_", tag) + ".tar")
    archive.unlink(missing_ok=True)
    image.podman("save", "--format", "docker-archive", "--output", str(archive), tag)
    return archive


# -- processes -----------------------------------------------------------------------------------------------
def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _pids_of(binary: Path) -> list[int]:
    return [
        int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _exe(int(entry)) == str(binary)
    ]


def _read_sysctl(name: str) -> str | None:
    try:
        return (Path("/proc/sys") / name.replace(".", "/")).read_text().strip()
    except OSError:
        return None


def _write_sysctl(name: str, value: str) -> None:
    with contextlib.suppress(OSError):
        (Path("/proc/sys") / name.replace(".", "/")).write_text(value)


def _iptables_save(tool: str) -> str:
    result = subprocess.run([f"{tool}-save"], capture_output=True, text=True, check=False, timeout=30)
    return result.stdout if result.returncode == 0 else ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _kubepods_cgroups() -> list[Path]:
    found = []
    # cgroup v1 has one hierarchy per controller (/sys/fs/cgroup/memory/kubepods, ...); cgroup v2 one
    # tree (/sys/fs/cgroup/kubepods).
    hierarchies = [_CGROUP_ROOT, *_CGROUP_ROOT.iterdir()] if _CGROUP_ROOT.exists() else []
    for hierarchy in hierarchies:
        # The kubelet and containerd remove pod cgroups while this walks: os.walk skips a directory
        # that vanished (rglob raised FileNotFoundError, which once failed a node's teardown half-way
        # and left containerd and the control plane running).
        found += [Path(directory) for directory, _, _ in os.walk(hierarchy / "kubepods")]
    return found


@dataclass
class Node:
    """One development node whose files live in `directory`, registered with `plane`."""

    directory: Path
    plane: controlplane.ControlPlane
    tie_to_parent: bool = True
    pids: dict[str, int] = field(default_factory=dict)
    startup_seconds: dict[str, float] = field(default_factory=dict)
    _processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)
    _record: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- paths --
    @property
    def run_dir(self) -> Path:
        # containerd's state (sockets, task bundles, network namespaces) lives in /run, under a short
        # path: unix socket paths are limited to 107 bytes.
        digest = hashlib.sha256(str(self.directory.resolve()).encode()).hexdigest()[:8]
        return Path("/run") / f"purifier-rental-node-{digest}"

    @property
    def socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    def log_path(self, component: str) -> Path:
        return self.directory / "logs" / f"{component}.log"

    @property
    def _record_file(self) -> Path:
        return self.directory / "node.json"

    @property
    def kubelet_root(self) -> Path:
        return self.directory / "kubelet"

    # -- lifecycle --
    @classmethod
    def load(cls, directory: Path, plane: controlplane.ControlPlane) -> Node:
        """The node a previous `start` recorded in `directory` (for `down`)."""
        node = cls(directory=directory, plane=plane, tie_to_parent=False)
        if node._record_file.exists():
            node._record = json.loads(node._record_file.read_text())
            node.pids = dict(node._record.get("pids", {}))
        return node

    def start(self, images: Sequence[Path] = ()) -> None:
        """Start containerd (importing the pause image and `images`), the kubelet, kube-scheduler and
        kube-proxy; return when the node is Ready. The plane must run with `address=ADDRESS`."""
        if self.plane.address != ADDRESS:
            raise NodeError(f"the control plane must be started with address={ADDRESS} for a node")
        binaries = build.ensure_node_binaries()
        pause, pause_archive = pause_image()
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "logs").mkdir(exist_ok=True)
        self._remember_host()
        self._write_files(pause)
        self._start(
            "containerd", [str(binaries.containerd), f"--config={self.directory / 'containerd.toml'}"]
        )
        self._wait("containerd", lambda: self._ctr("version").returncode == 0, 60)
        for archive in (pause_archive, *images):
            self._import(archive)
        ports = self._record["ports"]
        self._start(
            "kubelet",
            [
                str(binaries.kubelet),
                f"--config={self.directory / 'kubelet.yaml'}",
                f"--kubeconfig={self.directory / 'kubelet.kubeconfig'}",
                f"--root-dir={self.kubelet_root}",
                f"--cert-dir={self.directory / 'kubelet-pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={ADDRESS}",
                "--v=1",
            ],
        )
        self._wait("kubelet", self._node_ready, 120)
        self._start(
            "kube-scheduler",
            [
                str(binaries.kube_scheduler),
                f"--kubeconfig={self.directory / 'scheduler.kubeconfig'}",
                f"--authentication-kubeconfig={self.directory / 'scheduler.kubeconfig'}",
                f"--authorization-kubeconfig={self.directory / 'scheduler.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={ports['scheduler']}",
                "--leader-elect=false",
            ],
        )
        self._wait("kube-scheduler", lambda: self._https_healthz(ports["scheduler"]), 60)
        self._start(
            "kube-proxy",
            [str(binaries.kube_proxy), f"--config={self.directory / 'kube-proxy.yaml'}", "--v=1"],
        )
        self._wait(
            "kube-proxy", lambda: self._http_ok(f"http://127.0.0.1:{ports['proxy_healthz']}/healthz"), 60
        )

    def import_image(self, archive: Path) -> None:
        """Import a saved image (`save_image`) into containerd's `k8s.io` namespace, where the CRI looks."""
        self._import(archive)

    def tag_image(self, source: str, target: str) -> None:
        """Give an imported image a second tag (a "new" image for `helm upgrade`, with no rebuild)."""
        result = self._ctr("images", "tag", "--force", source, target)
        if result.returncode != 0:
            raise NodeError(f"ctr images tag {source} {target} failed: {result.stderr.strip()}")

    def kill_container(self, container_id: str, signal_name: str = "SIGKILL") -> None:
        """Send a signal to a container's task, as the kernel's OOM killer or an operator's `kill -9`
        would: `container_id` as the pod's status gives it, with or without `containerd://`."""
        task = container_id.removeprefix("containerd://")
        result = self._ctr("tasks", "kill", "--signal", signal_name, task, timeout=30)
        if result.returncode != 0:
            raise NodeError(f"ctr tasks kill {task} failed: {result.stderr.strip()}")

    def stop(self) -> list[str]:
        """Stop everything and undo what the node changed on the host; returns what could not be undone."""
        problems: list[str] = []
        for component in ("kube-proxy", "kube-scheduler", "kubelet"):
            problems += self._stop(component)
        try:
            self._kill_pods()
        except OSError as error:  # whatever is left is counted below (cgroups, mounts)
            problems.append(f"killing the pods' processes: {error}")
        problems += self._stop("containerd")
        binaries_dir = self._record.get("binaries")
        if binaries_dir:
            for pid in _pids_of(Path(binaries_dir) / "containerd-shim-runc-v2"):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        problems += self._unmount()
        problems += self._remove_cgroups()
        problems += self._restore_iptables()
        for name, value in self._record.get("sysctls", {}).items():
            if _read_sysctl(name) != value:
                _write_sysctl(name, value)
                if _read_sysctl(name) != value:
                    problems.append(f"sysctl {name} could not be restored to {value}")
        for directory in self._record.get("created_directories", []):
            shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        try:
            remove_interface()
        except NodeError as error:
            problems.append(str(error))
        self.pids.clear()
        if self._record_file.exists():
            self._record["pids"] = {}
            self._record_file.write_text(json.dumps(self._record, indent=2))
        return problems

    def running(self) -> dict[str, bool]:
        return {c: c in self.pids and _exe(self.pids[c]).endswith("/" + c) for c in COMPONENTS}

    # -- start helpers --
    def _remember_host(self) -> None:
        """Write, before anything changes, what `stop` must restore."""
        if self._record_file.exists():
            previous = json.loads(self._record_file.read_text())
            if previous.get("pids"):
                raise NodeError(f"a node recorded in {self.directory} may still run: stop it first")
        binaries = build.ensure_node_binaries()
        self._record = {
            "binaries": str(binaries.kubelet.parent),
            "run_dir": str(self.run_dir),
            "sysctls": {name: value for name in SYSCTLS if (value := _read_sysctl(name)) is not None},
            "iptables": {
                tool: {t: sorted(c) for t, c in node_chains(_iptables_save(tool)).items()}
                for tool in _IPTABLES
            },
            "created_directories": [str(d) for d in _HOST_DIRECTORIES if not d.exists()],
            "ports": {
                "scheduler": _free_port(),
                "proxy_healthz": _free_port(),
                "proxy_metrics": _free_port(),
                "kubelet_healthz": _free_port(),
            },
            "pids": {},
        }
        self._record_file.write_text(json.dumps(self._record, indent=2))

    def _write_files(self, pause: str) -> None:
        pki = certs.ensure_pki(self.plane.directory / "pki", addresses=(ADDRESS,))
        identities = {
            "kubelet": (f"system:node:{NODE_NAME}", "system:nodes"),
            "kube-proxy": ("system:kube-proxy", ""),
            "scheduler": ("system:kube-scheduler", ""),
        }
        for name, (user, group) in identities.items():
            cert, key = certs.ensure_client(pki, f"node-{name}", common_name=user, organization=group)
            document = kubeconfig_document(self.plane.server, pki.ca_cert, cert, key, user)
            path = self.directory / f"{name}.kubeconfig"
            path.write_text(yaml.safe_dump(document, sort_keys=False))
            path.chmod(0o600)
        for sub in ("cni", "cni-ipam", "pod-logs", "containerd/root", "containerd/opt"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.directory / "containerd.toml").write_text(
            containerd_config(
                root=self.directory / "containerd" / "root",
                state=self.run_dir / "state",
                socket_path=self.socket,
                cni_conf_dir=self.directory / "cni",
                pause=pause,
                opt_dir=self.directory / "containerd" / "opt",
            )
        )
        conflist = cni_conflist(subnet=POD_SUBNET, ipam_dir=self.directory / "cni-ipam")
        (self.directory / "cni" / "10-rental-node.conflist").write_text(json.dumps(conflist, indent=2))
        (self.directory / "resolv.conf").write_text("# no cluster DNS on the development node\n")
        ports = self._record["ports"]
        kubelet = kubelet_config(
            address=ADDRESS,
            ca=pki.ca_cert,
            runtime_socket=self.socket,
            resolv_conf=self.directory / "resolv.conf",
            pod_logs=self.directory / "pod-logs",
            healthz_port=ports["kubelet_healthz"],
        )
        (self.directory / "kubelet.yaml").write_text(yaml.safe_dump(kubelet, sort_keys=False))
        proxy = kube_proxy_config(
            kubeconfig=self.directory / "kube-proxy.kubeconfig",
            cluster_cidr=POD_SUBNET,
            address=ADDRESS,
            healthz_port=ports["proxy_healthz"],
            metrics_port=ports["proxy_metrics"],
        )
        (self.directory / "kube-proxy.yaml").write_text(yaml.safe_dump(proxy, sort_keys=False))

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        binaries = self._record["binaries"]
        # containerd finds its shim, and the kubelet and kube-proxy find iptables, mount and runc.
        env["PATH"] = f"{binaries}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        return env

    def _start(self, component: str, command: list[str]) -> None:
        started = time.monotonic()
        with self.log_path(component).open("ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._environment(),
                start_new_session=True,
                # Only prctl() runs between fork and exec, which is safe even with threads around.
                preexec_fn=_die_with_parent if self.tie_to_parent else None,  # noqa: PLW1509
            )
        self._processes[component] = process
        self.pids[component] = process.pid
        self._record["pids"] = self.pids
        self._record_file.write_text(json.dumps(self._record, indent=2))
        self.startup_seconds[component] = -started

    def _wait(self, component: str, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        process = self._processes[component]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise NodeError(
                    f"{component} exited with code {process.returncode} during start-up; end of "
                    f"{self.log_path(component)}:\n{self._tail(component)}"
                )
            with contextlib.suppress(OSError, urllib.error.URLError, ssl.SSLError, ValueError):
                if ready():
                    self.startup_seconds[component] += time.monotonic()
                    return
            time.sleep(0.5)
        raise NodeError(
            f"{component} not ready after {timeout:.0f}s; end of {self.log_path(component)}:\n"
            f"{self._tail(component)}"
        )

    def _tail(self, component: str, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path(component).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        ctr = Path(self._record["binaries"]) / "ctr"
        return subprocess.run(
            [str(ctr), f"--address={self.socket}", "--namespace=k8s.io", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )

    def _import(self, archive: Path) -> None:
        result = self._ctr("images", "import", "--snapshotter=overlayfs", str(archive), timeout=300)
        if result.returncode != 0:
            raise NodeError(f"ctr images import {archive} failed: {result.stderr.strip()}")
        _log(f"imported {archive.name} into containerd")

    def _node_ready(self) -> bool:
        status, body = self.plane.get(f"/api/v1/nodes/{NODE_NAME}")
        if status != 200:
            return False
        conditions = json.loads(body).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    @staticmethod
    def _https_healthz(port: int) -> bool:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the scheduler's self-signed serving certificate
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}/healthz", context=context, timeout=2
        ) as answer:
            return bool(answer.status == 200)

    @staticmethod
    def _http_ok(url: str) -> bool:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)

    # -- stop helpers --
    def _stop(self, component: str) -> list[str]:
        """Stop one component (SIGTERM, then SIGKILL after 20 s); what could not be stopped, if anything.

        Never raises: a component slow to die must not keep `stop` from undoing the rest (a
        `TimeoutExpired` here once left containerd and a control plane running after a test module).
        """
        pid = self.pids.pop(component, None)
        process = self._processes.pop(component, None)
        if pid is None or not _exe(pid).endswith("/" + component):
            return []
        for signal_number, seconds in ((signal.SIGTERM, 20), (signal.SIGKILL, 30)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal_number)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and _exe(pid):
                if process is not None and process.poll() is not None:
                    return []
                time.sleep(0.1)
            if not _exe(pid):
                return []
        return [f"{component} (pid {pid}) still runs 30 s after SIGKILL"]

    @staticmethod
    def _kill_pods() -> None:
        """SIGKILL every process in the kubepods cgroups (the containers and their pause processes)."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pids = set()
            for cgroup in _kubepods_cgroups():
                with contextlib.suppress(OSError):
                    pids |= {int(p) for p in (cgroup / "cgroup.procs").read_text().split()}
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)

    def _unmount(self) -> list[str]:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        roots = [self.directory, Path(self._record.get("run_dir", self.run_dir))]
        for _ in range(3):
            points = mounts_to_unmount(Path("/proc/self/mountinfo").read_text(), roots)
            if not points:
                return []
            for point in points:
                libc.umount2(point.encode(), _MNT_DETACH)
        left = mounts_to_unmount(Path("/proc/self/mountinfo").read_text(), roots)
        return [f"still mounted: {point}" for point in left]

    @staticmethod
    def _remove_cgroups() -> list[str]:
        deadline = time.monotonic() + 10
        while True:
            left = []
            for cgroup in cgroups_to_remove(_kubepods_cgroups()):
                try:
                    cgroup.rmdir()
                except OSError:
                    left.append(cgroup)
            if not left or time.monotonic() > deadline:
                return [f"cgroup not removed: {path}" for path in left]
            time.sleep(0.5)

    def _restore_iptables(self) -> list[str]:
        problems = []
        before = self._record.get("iptables", {})
        for tool in _IPTABLES:
            for args in iptables_cleanup(_iptables_save(tool), before.get(tool, {})):
                result = subprocess.run(
                    [tool, "-w", "5", *args], capture_output=True, text=True, check=False, timeout=30
                )
                if result.returncode != 0:
                    problems.append(f"{tool} {' '.join(args)}: {result.stderr.strip()}")
        return problems
