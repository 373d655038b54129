"""`bench node start|stop|status`: this host as a node of a lab's Ray cluster, advertising its devices."""
from __future__ import annotations

from pathlib import Path

from bench.cluster import driver, node
from bench.cluster.resources import check_label
from bench.commands import print_json
from bench.console import print_table
from bench.core.errors import UserError


def _state_dir(args) -> Path:
    return Path(args.state_dir).expanduser() if args.state_dir else node.default_state_dir()


def _host(text: str | None) -> str:
    import socket
    host = text or socket.gethostname().split(".")[0]
    try:
        return check_label(host, "--host-label")
    except ValueError as e:
        raise UserError(f"{e}; pass another --host-label") from None


def cmd_start(args) -> int:
    node.require_ray("bench node start")
    if not args.head and not args.address:
        raise UserError("give --head (start the cluster's head here) or --address HEAD:PORT (join a head)")
    if args.head and args.address:
        raise UserError("--head starts a cluster and --address joins one; give one of them")
    options = node.NodeOptions(
        host=_host(args.host_label), devices=node.detect_devices(args.devices), head=args.head,
        address=args.address, port=args.port, ip=args.node_ip_address, num_cpus=args.num_cpus,
        temp_dir=args.temp_dir, cache=args.cache)
    record = node.start_node(options, _state_dir(args), timeout_s=args.timeout)
    devices = ", ".join(s.resource for s in options.devices) or "no devices"
    print(f"node {record.host} started ({'head' if record.head else 'joined ' + record.address}; "
          f"process group {record.pgid}): {devices}")
    if record.head:
        print(f"join it from each host: bench node start --address {record.address}\n"
              f"run a suite on it:      bench run --cluster {record.address} --device ... --models ...")
    return 0


def cmd_stop(args) -> int:
    stopped = node.stop_nodes(_state_dir(args), args.host_label, grace_s=args.timeout)
    print(f"stopped: {', '.join(stopped)}" if stopped else "no node was running")
    return 0


def cmd_status(args) -> int:
    ray = driver.connect(args.address)
    try:
        nodes = driver.cluster_nodes(ray)
    finally:
        ray.shutdown()
    rows = node.status_rows(nodes)
    if args.json:
        print_json(rows)
        return 0
    print_table(["host", "address", "alive", "devices"],
                [[r["host"], r["address"], "yes" if r["alive"] else "no", ", ".join(r["devices"])] for r in rows],
                title=f"cluster at {args.address}", footnotes=[f"offered: {node.offered_line(nodes)}"])
    return 0


def register(sub) -> None:
    p = sub.add_parser("node", help="this host as a node of a lab's Ray cluster (start, stop, status)")
    nsub = p.add_subparsers(dest="node_command", required=True)

    s = nsub.add_parser("start", help="start a Ray node here advertising this host's devices")
    s.add_argument("--head", action="store_true", help="start the cluster's head here")
    s.add_argument("--address", metavar="HEAD:PORT", help="join the head at this address")
    s.add_argument("--devices", default="auto", metavar="auto|none|NAME,...",
                   help="devices to offer: auto (every device `bench devices` finds available), none, or a list")
    s.add_argument("--host-label", metavar="NAME", help="this host's name in results (default: the hostname)")
    s.add_argument("--cache", metavar="DIR", help="this host's export cache (default: the usual cache)")
    s.add_argument("--port", type=int, default=node.DEFAULT_PORT, help="the head's port (default 6379)")
    s.add_argument("--node-ip-address", metavar="IP", help="the address this node listens and is reached on")
    s.add_argument("--num-cpus", type=int, default=1,
                   help="CPUs Ray may count (default 1; cells ask for none, devices are the slots)")
    s.add_argument("--temp-dir", metavar="DIR", help="Ray's session folder (keep it short: Unix socket paths)")
    s.add_argument("--state-dir", metavar="DIR", help="where the node's record and log go "
                   "(default: ~/.cache/mobileone-bench/nodes)")
    s.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the node to come up")
    s.set_defaults(func=cmd_start)

    s = nsub.add_parser("stop", help="stop the nodes `bench node start` started on this host")
    s.add_argument("--host-label", metavar="NAME", help="only this node (default: every node started here)")
    s.add_argument("--state-dir", metavar="DIR", help="the folder given to `bench node start`")
    s.add_argument("--timeout", type=float, default=10.0, help="seconds before what is left is killed")
    s.set_defaults(func=cmd_stop)

    s = nsub.add_parser("status", help="the cluster's hosts and the devices they offer")
    s.add_argument("--address", required=True, metavar="HEAD:PORT", help="the head's address")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)
