"""Ray resource names of a lab's devices and hosts, and the pure decisions made on them: which node a cell
goes to, and what happens to a cell whose node was lost. No Ray here: plain names and frozen dataclasses.

Each physical device is one resource of capacity 1, `bench-device:<name>` (a GPU adds its UUID:
`bench-device:trt:GPU-1234...`), so two cells never share it. Every device that times on the host's CPUs
also takes the host's one `bench-host:<host>` slot, so a host never times two CPU cells at once."""
from __future__ import annotations

from dataclasses import dataclass

DEVICE_PREFIX = "bench-device:"
HOST_PREFIX = "bench-host:"


def device_resource(device: str, ident: str | None = None) -> str:
    return f"{DEVICE_PREFIX}{device}" + (f":{ident}" if ident else "")


def host_resource(host: str) -> str:
    return f"{HOST_PREFIX}{host}"


def check_label(text: str, what: str) -> str:
    """A host label or device id is part of a resource name: keep it to characters every shell and Ray take."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    if not text or set(text) - allowed:
        raise ValueError(f"{what} {text!r} may use letters, digits, '.', '_' and '-' only")
    return text


@dataclass(frozen=True)
class DeviceSlot:
    """One device a node offers: its bench name, its identity on the host (a GPU's UUID) or None, and whether
    it times on the host's CPUs (then its cells also take the host slot)."""

    device: str
    ident: str | None = None
    cpu_sharing: bool = False

    @property
    def resource(self) -> str:
        return device_resource(self.device, self.ident)


def node_resources(host: str, slots: tuple[DeviceSlot, ...]) -> dict[str, float]:
    """The custom resources `ray start --resources` advertises for a node: one per device, one for the host."""
    check_label(host, "host label")
    out = {host_resource(host): 1.0}
    for s in slots:
        if s.ident:
            check_label(s.ident, f"{s.device} id")
        out[s.resource] = 1.0
    return out


@dataclass(frozen=True)
class NodeInfo:
    """A node of the cluster as the driver sees it: Ray's node id, the host label, its devices, alive or not."""

    node_id: str
    host: str
    devices: tuple[DeviceSlot, ...]
    alive: bool = True
    address: str = ""

    def slot(self, device: str) -> DeviceSlot | None:
        return next((s for s in self.devices if s.device == device), None)


def parse_node(node_id: str, resources: dict[str, float], alive: bool, address: str = "",
               cpu_sharing: frozenset[str] = frozenset()) -> NodeInfo | None:
    """A node from Ray's resource table (ray.nodes()); None for a node that is no bench node (no host slot).
    `cpu_sharing`: the device names that time on the host's CPUs."""
    hosts = [r[len(HOST_PREFIX):] for r in resources if r.startswith(HOST_PREFIX)]
    if not hosts:
        return None
    slots = []
    for name in sorted(r for r in resources if r.startswith(DEVICE_PREFIX)):
        device, _, ident = name[len(DEVICE_PREFIX):].partition(":")
        slots.append(DeviceSlot(device, ident or None, device in cpu_sharing))
    return NodeInfo(node_id, hosts[0], tuple(slots), alive, address)


def offered(nodes: list[NodeInfo]) -> dict[str, list[str]]:
    """Device name -> the hosts of live nodes offering it, for messages and `bench node status`."""
    out: dict[str, list[str]] = {}
    for n in nodes:
        if n.alive:
            for s in n.devices:
                out.setdefault(s.device, []).append(n.host)
    return dict(sorted(out.items()))


def missing_devices(asked: tuple[str, ...], nodes: list[NodeInfo]) -> str | None:
    """One line naming the devices asked for that no live node offers, and what the cluster offers; None when
    every device is offered."""
    have = offered(nodes)
    absent = [d for d in asked if d not in have]
    if not absent:
        return None
    what = ", ".join(f"{d} ({', '.join(h)})" for d, h in have.items()) or "no devices (no bench node has joined)"
    return (f"no node of the cluster offers device {', '.join(absent)}; the cluster offers {what}. Start "
            f"`bench node start --address HEAD --devices {','.join(absent)}` on a host that has "
            f"{'it' if len(absent) == 1 else 'them'}, or drop {'it' if len(absent) == 1 else 'them'} from --device")


@dataclass(frozen=True)
class Placement:
    """Where one attempt of a cell runs: the node, and the resources its Ray task requests there."""

    node_id: str
    host: str
    resources: tuple[tuple[str, float], ...]


def placement(node: NodeInfo, device: str) -> Placement:
    slot = node.slot(device)
    if slot is None:
        raise ValueError(f"node {node.host} does not offer {device}")
    res = {slot.resource: 1.0}
    if slot.cpu_sharing:
        res[host_resource(node.host)] = 1.0
    return Placement(node.node_id, node.host, tuple(sorted(res.items())))


def choose_node(device: str, nodes: list[NodeInfo], load: dict[str, int],
                exclude: frozenset[str] = frozenset()) -> NodeInfo | None:
    """The live node offering `device` with the fewest cells assigned so far (`load`: node id -> cells), not in
    `exclude`; ties go to the host label's order, so a plan is reproducible. None if there is none."""
    fit = [n for n in nodes if n.alive and n.node_id not in exclude and n.slot(device) is not None]
    if not fit:
        return None
    return min(fit, key=lambda n: (load.get(n.node_id, 0), n.host, n.node_id))


MAX_ATTEMPTS = 2  # the first try and one retry on another node


@dataclass(frozen=True)
class Retry:
    node: NodeInfo


@dataclass(frozen=True)
class Fail:
    reason: str


def after_loss(device: str, attempts: int, lost: NodeInfo, why: str, nodes: list[NodeInfo],
               tried: frozenset[str], load: dict[str, int]) -> Retry | Fail:
    """What to do with a cell whose node was lost (`why`) after `attempts` tries on the nodes `tried`: once
    more on another live node offering its device, else failed with the reason."""
    lost_line = f"node {lost.host} was lost ({why})"
    if attempts >= MAX_ATTEMPTS:
        return Fail(f"{lost_line} on its retry; a cell is retried once")
    other = choose_node(device, nodes, load, exclude=tried | {lost.node_id})
    if other is None:
        return Fail(f"{lost_line} and no other node offers {device}")
    return Retry(other)
