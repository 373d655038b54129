"""One host of the lab as a Ray node: which devices it offers, the `ray start` command that advertises them,
starting it as a process group we own (and recording it), stopping exactly that group, and listing the
cluster's bench nodes.

`ray start --block` runs as the leader of a new session, so the GCS (on a head), the raylet and every worker
it spawns share its process group: `bench node stop` ends that group and nothing else (not `ray stop`, which
would end every Ray process of the machine, other nodes and other users' included)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.cluster.resources import DeviceSlot, NodeInfo, check_label, node_resources, offered, parse_node
from bench.core.errors import UserError
from bench.core.io import atomic_write_text, now_iso
from bench.core.optional import install_hint, installed
from devices.registry import DEVICES, availability, get_device

# What a node's Ray workers read (they inherit the environment of `ray start`): the host label their results
# record, and the export cache of that host.
HOST_ENV = "BENCH_NODE_HOST"
CACHE_ENV = "BENCH_NODE_CACHE"
DEFAULT_PORT = 6379
STARTED_LINE = "Ray runtime started"


def require_ray(what: str) -> None:
    if not installed("ray"):
        raise UserError(f"{what} needs Ray, which is not installed; install it with {install_hint('cluster')}")


def head_reachable(host: str, port: int, timeout_s: float = 5.0) -> None:
    """Ray's own connection retries go on for minutes when no head listens: ask once, briefly, first."""
    import socket
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as e:
        raise UserError(f"no Ray head answers at {host}:{port} ({e.strerror or type(e).__name__}); start one "
                        "with `bench node start --head`, or give the head's HOST:PORT") from None


def split_address(address: str, flag: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"{flag} {address!r} must be the head's HOST:PORT, e.g. 10.0.0.2:6379")
    return host, int(port)


def cpu_sharing_devices() -> frozenset[str]:
    """The devices whose cells time on the host's CPUs (their rounds are checked for foreign load)."""
    return frozenset(name for name, d in DEVICES.items() if d.contention_probe)


def device_slot(name: str) -> DeviceSlot:
    """A device as a Ray slot: a GPU device is named by the GPU's UUID, so two GPUs are two slots."""
    spec = get_device(name)
    ident = None
    if spec.kind == "gpu":
        from bench.env import gpu  # CUDA/NVML: only asked on a host that offers a GPU device
        uuid = gpu.gpu_identity().uuid  # the GPU cells run on (index 0 after CUDA_VISIBLE_DEVICES)
        ident = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in uuid) if uuid else None
    return DeviceSlot(name, ident, spec.contention_probe)


def detect_devices(asked: str) -> tuple[DeviceSlot, ...]:
    """`auto`: every device this host can run (what `bench devices` calls available); `none`: none (a head
    that only coordinates); else the named devices, each of which must run here."""
    if asked == "none":
        return ()
    if asked == "auto":
        return tuple(device_slot(n) for n in DEVICES if availability(n).can_run)
    names = [n.strip() for n in asked.split(",") if n.strip()]
    for n in names:
        avail = availability(get_device(n).name)
        if not avail.can_run:
            raise UserError(f"device {n} cannot run on this host: {avail.reason}; leave it out of --devices "
                            "(or use --devices auto)")
    return tuple(device_slot(n) for n in dict.fromkeys(names))


@dataclass(frozen=True)
class NodeOptions:
    host: str
    devices: tuple[DeviceSlot, ...]
    head: bool = False
    address: str | None = None  # the head's host:port, for a worker node
    port: int = DEFAULT_PORT  # a head's GCS port
    ip: str | None = None  # --node-ip-address: the address this node listens and is reached on
    num_cpus: int = 1  # Ray's CPU count; cells ask for none, so this only bounds Ray's own idle workers
    object_store_mb: int = 200  # results are small; a big store only reserves shared memory
    temp_dir: str | None = None
    cache: str | None = None  # this host's export cache (None: the default cache)

    def __post_init__(self):
        check_label(self.host, "host label")
        if self.head == (self.address is not None):
            raise UserError("a node is either a head (--head) or joins one (--address HEAD:PORT); give one of them")


def ray_start_command(o: NodeOptions) -> list[str]:
    """`ray start --block` for this node: it stays in the foreground, so its process group is ours to stop."""
    cmd = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--disable-usage-stats",
           f"--num-cpus={o.num_cpus}", "--num-gpus=0", f"--object-store-memory={o.object_store_mb * 1_000_000}",
           "--resources=" + json.dumps(node_resources(o.host, o.devices), sort_keys=True)]
    if o.head:
        cmd += ["--head", f"--port={o.port}", "--include-dashboard=false"]
        if o.ip:  # the GCS and every head service listen on this address only
            cmd += [f"--node-ip-address={o.ip}", f"--dashboard-host={o.ip}"]
    else:
        cmd += [f"--address={o.address}"]
        if o.ip:
            cmd += [f"--node-ip-address={o.ip}"]
    if o.temp_dir:
        cmd += [f"--temp-dir={o.temp_dir}"]
    return cmd


def node_environment(o: NodeOptions, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env[HOST_ENV] = o.host
    if o.cache:
        env[CACHE_ENV] = str(Path(o.cache).expanduser().resolve())
    return env


@dataclass(frozen=True)
class NodeRecord:
    """What `bench node start` leaves for `bench node stop`: the process group it started, and how."""

    host: str
    pid: int  # of `ray start --block`, the leader of the group
    pgid: int
    head: bool
    address: str  # the head's address (a head's own)
    devices: tuple[str, ...]
    log: str
    started: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def read(cls, path: Path) -> "NodeRecord":
        d = json.loads(Path(path).read_text())
        d["devices"] = tuple(d["devices"])
        return cls(**d)


def default_state_dir() -> Path:
    return Path(os.environ.get("BENCH_NODE_STATE_DIR") or Path.home() / ".cache" / "mobileone-bench" / "nodes")


def start_node(o: NodeOptions, state_dir: Path, timeout_s: float = 90.0) -> NodeRecord:
    """Start the node and wait, at most `timeout_s`, until Ray says it runs; record it in `state_dir`.
    A node that fails to start is stopped again, and its log's last lines are in the error."""
    require_ray("bench node start")
    if o.address:
        head_reachable(*split_address(o.address, "--address"))
    state_dir.mkdir(parents=True, exist_ok=True)
    record_path = state_dir / f"{o.host}.json"
    if record_path.exists():
        old = NodeRecord.read(record_path)
        if _alive(old.pgid):
            raise UserError(f"node {o.host} already runs here (process group {old.pgid}); stop it with "
                            f"`bench node stop --host-label {o.host}` or pick another --host-label")
    log = state_dir / f"{o.host}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(ray_start_command(o), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=node_environment(o), start_new_session=True)
    address = o.address or f"{o.ip or _local_ip()}:{o.port}"
    record = NodeRecord(o.host, proc.pid, proc.pid, o.head, address, tuple(s.device for s in o.devices),
                        str(log), now_iso())
    atomic_write_text(record_path, record.to_json())
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if STARTED_LINE in log.read_text(errors="replace"):
            return record
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    stop_group(record.pgid)
    record_path.unlink(missing_ok=True)
    tail = " | ".join(line.strip() for line in log.read_text(errors="replace").splitlines()[-3:] if line.strip())
    why = f"ray start exited ({proc.returncode})" if proc.poll() is not None else f"not up after {timeout_s:g} s"
    raise UserError(f"node {o.host} did not start: {why}: {tail or 'no output'} (log: {log})")


def _local_ip() -> str:
    import socket
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def process_table() -> list[tuple[int, int, int]]:
    """(pid, parent pid, process group) of every process, from `ps` (Linux and macOS alike)."""
    out = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,pgid=,stat="], capture_output=True, text=True,
                         timeout=30).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split()
        # A zombie has ended; only its parent's wait is missing.
        if len(parts) == 4 and all(p.isdigit() for p in parts[:3]) and not parts[3].startswith("Z"):
            rows.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return rows


def node_processes(leader: int) -> set[int]:
    """The processes of the node whose `ray start --block` is `leader`: its process group, and every
    descendant (Ray's workers put themselves in groups of their own, so the group alone misses them)."""
    table = process_table()
    found = {pid for pid, _, pgid in table if pgid == leader or pid == leader}
    children: dict[int, list[int]] = {}
    for pid, ppid, _ in table:
        children.setdefault(ppid, []).append(pid)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _signal(pids: set[int], sig: int) -> set[int]:
    """Send `sig` to each; return those that still existed."""
    alive = set()
    for pid in pids:
        try:
            os.kill(pid, sig)
            alive.add(pid)
        except ProcessLookupError:
            pass
        except PermissionError:
            alive.add(pid)
    return alive


def _alive(pgid: int) -> bool:
    return bool(node_processes(pgid))


def stop_group(leader: int, grace_s: float = 10.0) -> bool:
    """SIGTERM the node's processes (ray start --block then stops its own), SIGKILL what is left after
    `grace_s`. Returns whether anything was running."""
    procs = node_processes(leader)
    if not procs:
        return False
    _signal(procs, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        procs = _running(procs) | node_processes(leader)  # a worker spawned meanwhile is the node's too
        if not procs:
            return True
        time.sleep(0.2)
    procs = _signal(procs | node_processes(leader), signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    while procs and time.monotonic() < deadline:
        time.sleep(0.1)
        procs = _running(procs)
    return True


def _running(pids: set[int]) -> set[int]:
    """Those of `pids` still running (a zombie has ended)."""
    return pids & {row[0] for row in process_table()}


def stop_nodes(state_dir: Path, host: str | None = None, grace_s: float = 10.0) -> list[str]:
    """Stop the nodes started from `state_dir` (one host label, or all); return what was stopped. Worker
    nodes go first, so the head outlives the nodes that report to it."""
    paths = sorted(state_dir.glob("*.json")) if state_dir.is_dir() else []
    records = [(p, NodeRecord.read(p)) for p in paths]
    if host is not None:
        records = [(p, r) for p, r in records if r.host == host]
        if not records:
            known = ", ".join(r.host for _, r in ((p, NodeRecord.read(p)) for p in paths)) or "none"
            raise UserError(f"no node {host} was started from {state_dir} (started there: {known})")
    stopped = []
    for p, r in sorted(records, key=lambda pr: pr[1].head):
        if stop_group(r.pgid, grace_s):
            stopped.append(r.host)
        p.unlink(missing_ok=True)
    return stopped


# ---- The cluster as Ray sees it (needs a connection: bench.cluster.driver.connect) ----

def nodes_of(ray_nodes: list[dict]) -> list[NodeInfo]:
    """ray.nodes() as bench nodes (nodes without a bench host slot are left out)."""
    sharing = cpu_sharing_devices()
    out = []
    for n in ray_nodes:
        info = parse_node(n["NodeID"], n.get("Resources") or {}, bool(n.get("Alive")),
                          n.get("NodeManagerAddress", ""), sharing)
        if info is not None:
            out.append(info)
    return sorted(out, key=lambda i: (i.host, i.node_id))


def status_rows(nodes: list[NodeInfo]) -> list[dict]:
    return [{"host": n.host, "address": n.address, "alive": n.alive, "node_id": n.node_id,
             "devices": [s.resource for s in n.devices]} for n in nodes]


def offered_line(nodes: list[NodeInfo]) -> str:
    have = offered(nodes)
    return ", ".join(f"{d} on {', '.join(h)}" for d, h in have.items()) or "no devices"
