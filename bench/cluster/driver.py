"""`bench run --cluster`: the suite's cells as Ray tasks, each pinned to a node that holds its device, and
their results written into the one run file as they arrive.

Every cell is submitted at once; Ray's resources (bench.cluster.resources) keep each device, and each host's
CPUs, to one cell at a time. The driver polls: finished cells are recorded; a node that died (or sent nothing
for `node_timeout_s` while it had cells) is dropped, and its cells go once more to another node offering their
device, else are recorded failed with the reason. Ray is imported here only when a cluster run starts."""
from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from ipaddress import ip_address

from bench import env as envmod
from bench.cluster import remote
from bench.cluster.node import head_reachable, nodes_of, require_ray, split_address
from bench.cluster.resources import Fail, NodeInfo, Retry, after_loss, choose_node, missing_devices, placement
from bench.config import SuiteConfig
from bench.core.errors import Terminated, UserError
from bench.core.io import now_iso
from bench.core.result import FAILED, ComparabilityKey, LatencyResult
from bench.measure import WaitBudget
from bench.pipeline import Cell, Reporter, cell_protocol
from bench.store import RunWriter
from devices.registry import get_device, runtime_of

POLL_S = 1.0
HEAD_GRACE_S = 10.0  # the head unreachable this long ends the run (Ray itself would end the process at 60 s)
DEFAULT_NODE_TIMEOUT_S = 1800.0  # a node that sends no result for this long while it has cells is lost


def _ray():
    require_ray("bench run --cluster")
    import ray  # the cluster extra: imported only when a cluster run starts
    return ray


def connect(address: str):
    """Join the cluster at `address` (host:port of the head) as a driver; one line and exit 2 if it cannot.
    A loopback address is a cluster on this machine, and the driver joins it on that address too."""
    ray = _ray()
    host, port = split_address(address, "--cluster")
    head_reachable(host, port)
    try:
        loopback = ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    # Ray's core worker installs its own SIGTERM handler (it logs and exits): keep ours, so SIGTERM leaves the
    # run file `interrupted` as it does locally.
    main = threading.current_thread() is threading.main_thread()
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)} if main else {}
    try:
        ray.init(address=address, _node_ip_address="127.0.0.1" if loopback else None, log_to_driver=False,
                 logging_level=logging.WARNING, configure_logging=True, namespace="mobileone-bench")
    except (ConnectionError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot join the Ray cluster at {address}: {first}; start a head with "
                        "`bench node start --head` and run this on one of the cluster's hosts") from None
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)
    return ray


def cluster_nodes(ray) -> list[NodeInfo]:
    return nodes_of(ray.nodes())


@dataclass
class Attempt:
    cell: Cell
    node: NodeInfo
    attempts: int  # 1 for the first try
    tried: frozenset[str]  # node ids
    retried_after: str = ""  # why the previous attempt was lost (a retry's result says so)
    submitted: float = field(default_factory=time.monotonic)


def overdue(now: float, submitted: float, last_result: float | None, timeout_s: float) -> bool:
    """A node's pending cell is overdue when the node sent nothing for `timeout_s` since the cell was
    submitted (cells on a node run one after another, so only the node's silence counts, not the queue)."""
    return now - max(submitted, last_result or submitted) > timeout_s


def failed_result(cell: Cell, cfg: SuiteConfig, reason: str, host_env: dict | None, threads: int | None,
                  host: str | None) -> LatencyResult:
    """The record of a cell that never came back from its node: failed, with the reason and the host."""
    device = get_device(cell.device)
    precision = cfg.options_for(cell.device).get("precision", device.precision)
    key = ComparabilityKey.of(host_env or {}, cell.device, cell.runner_label, threads, precision,
                              runtime_of(cell.device, cell.runner_label))
    return LatencyResult(model=cell.model, device=cell.device, runner=cell.runner_label, form=cell.form,
                         precision=precision, threads=threads, status=FAILED, error=reason, error_stage="run",
                         protocol=cell_protocol(cfg, cell), env_key=key,
                         runner_info={"host": host} if host else {}, started=now_iso(), finished=now_iso())


class HeadLost(Exception):
    """The cluster's head stopped answering: nothing can be scheduled or collected any more."""


class ClusterExecutor:
    """Runs a suite's cells on a Ray cluster (bench.pipeline.CellExecutor)."""

    def __init__(self, address: str, node_timeout_s: float = DEFAULT_NODE_TIMEOUT_S, poll_s: float = POLL_S):
        self.address, self.node_timeout_s, self.poll_s = address, node_timeout_s, poll_s
        self.ray = None

    def _connect(self):
        if self.ray is None:
            self.ray = connect(self.address)
        return self.ray

    def check(self, cfg: SuiteConfig) -> None:
        if cfg.interleave:
            raise UserError("--interleave steps the cells of one host in turn; it cannot spread them over a "
                            "cluster (drop --interleave or --cluster)")
        line = missing_devices(cfg.devices, cluster_nodes(self._connect()))
        if line:
            self.close()
            raise UserError(line)

    def environment(self, cfg: SuiteConfig, threads: int) -> dict:
        """The driver's environment (no matmul peak: it measures nothing) and, under `hosts`, each measuring
        host's, added as its cells arrive."""
        env = envmod.capture(threads, measure_peak=False)
        env["cluster"] = {"address": self.address}
        env["hosts"] = {}
        return env

    def close(self) -> None:
        if self.ray is not None and self.ray.is_initialized():
            self.ray.shutdown()
        self.ray = None

    def execute(self, cells: list[Cell], cfg: SuiteConfig, threads: int, run_env: dict, reporter: Reporter,
                run_budget: WaitBudget, writer: RunWriter) -> None:
        # Ray turns any exception a signal handler raises inside ray.wait into a plain KeyboardInterrupt; note
        # SIGTERM ourselves, so the CLI still tells Ctrl-C (130) from SIGTERM (143).
        termed = []
        main = threading.current_thread() is threading.main_thread()
        previous = signal.getsignal(signal.SIGTERM) if main else None

        def on_term(signum, frame):
            termed.append(signum)
            if callable(previous):
                previous(signum, frame)
            raise Terminated()

        if main:
            signal.signal(signal.SIGTERM, on_term)
        head_lost = stopped = False
        try:
            _Run(self, cfg, run_env, reporter, writer).go(cells)
        except KeyboardInterrupt as e:
            stopped = True  # cells may be in flight: no Ray shutdown under them (see bench/commands/run.py)
            if termed and not isinstance(e, Terminated):
                raise Terminated() from None
            raise
        except HeadLost as e:
            head_lost = True
            writer.finish("interrupted")
            raise UserError(f"lost the cluster's head at {self.address} ({e}); the {len(writer.run.cells)} cells "
                            f"recorded are saved and the run is left interrupted: finish it with `bench run "
                            f"--resume {writer.path} --cluster HEAD:PORT` once a head is up") from None
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
            if not head_lost and not stopped:  # without a head, Ray's shutdown would wait for it
                self.close()


class _Run:
    """One cluster run's bookkeeping: the attempts in flight, each node's load and last result."""

    def __init__(self, ex: ClusterExecutor, cfg: SuiteConfig, run_env: dict, reporter: Reporter,
                 writer: RunWriter):
        self.ex, self.cfg, self.run_env, self.reporter, self.writer = ex, cfg, run_env, reporter, writer
        self.ray = ex._connect()
        self.task = self.ray.remote(num_cpus=0, max_retries=0)(remote.run_cell)
        self.pending: dict = {}  # ObjectRef -> Attempt
        self.load: dict[str, int] = {}
        self.last_result: dict[str, float] = {}
        self.lost: dict[str, str] = {}  # node id -> why it was dropped
        self.nodes: list[NodeInfo] = []
        self.index = 0
        self.total = 0
        self.head_silent_since: float | None = None
        run_env.setdefault("hosts", {})

    # -- the loop --------------------------------------------------------------------------------------------
    def go(self, cells: list[Cell]) -> None:
        self.total = len(cells)
        self.nodes = cluster_nodes(self.ray)
        try:
            for cell in cells:
                node = choose_node(cell.device, self._usable(), self.load)
                if node is None:  # every node offering it left between the check and now
                    self._record(failed_result(cell, self.cfg, f"no live node offers {cell.device}", None,
                                               self.cfg.threads, None))
                    continue
                self._submit(cell, node, 1, frozenset())
            while self.pending:
                self._poll()
        except KeyboardInterrupt:
            self._cancel_all()
            raise

    def _usable(self) -> list[NodeInfo]:
        return [n for n in self.nodes if n.alive and n.node_id not in self.lost]

    def _submit(self, cell: Cell, node: NodeInfo, attempts: int, tried: frozenset[str], why: str = "") -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        where = placement(node, cell.device)
        ref = self.task.options(resources=dict(where.resources), scheduling_strategy=NodeAffinitySchedulingStrategy(
            node.node_id, soft=False)).remote(cell, self.cfg, cell_protocol(self.cfg, cell), self.cfg.threads,
                                             self.cfg.wait_budget)
        self.pending[ref] = Attempt(cell, node, attempts, tried | {node.node_id}, why)
        self.load[node.node_id] = self.load.get(node.node_id, 0) + 1
        self.index += attempts == 1
        placed = getattr(self.reporter, "cell_placed", None)
        if placed:
            placed(cell, node.host, attempts)
        else:
            self.reporter.cell_started(cell, self.index - 1, self.total)

    def _poll(self) -> None:
        ready, _ = self.ray.wait(list(self.pending), num_returns=1, timeout=self.ex.poll_s)
        for ref in ready:
            self._collect(ref)
        if self._head_answers():  # asking Ray for its nodes without a head would block
            self._check_nodes()

    def _head_answers(self) -> bool:
        """Whether the head's port takes a connection; a head silent for HEAD_GRACE_S ends the run."""
        try:
            head_reachable(*split_address(self.ex.address, "--cluster"), timeout_s=2.0)
        except UserError:
            now = time.monotonic()
            self.head_silent_since = self.head_silent_since or now
            if now - self.head_silent_since > HEAD_GRACE_S:
                raise HeadLost(f"no answer for {HEAD_GRACE_S:g} s") from None
            return False
        self.head_silent_since = None
        return True

    def _collect(self, ref) -> None:
        att = self.pending.pop(ref)
        self.load[att.node.node_id] -= 1
        ray = self.ray
        try:
            outcome = ray.get(ref, timeout=self.ex.poll_s * 10)
        except ray.exceptions.RayTaskError as e:  # the cell function itself raised on the node: not a loss
            self.last_result[att.node.node_id] = time.monotonic()  # the node answered
            cause = e.cause if getattr(e, "cause", None) is not None else e
            text = str(cause).strip().splitlines()
            self._record(failed_result(att.cell, self.cfg, f"on host {att.node.host}: {type(cause).__name__}: "
                                       f"{text[0] if text else ''}", self.run_env["hosts"].get(att.node.host),
                                       self.cfg.threads, att.node.host))
            return
        except (ray.exceptions.RayError, TimeoutError) as e:  # the worker or its node went away
            # Only this attempt moves on; the node's other cells follow if Ray declares the node dead.
            self._after_loss(att, type(e).__name__)
            return
        self.last_result[att.node.node_id] = time.monotonic()
        self.run_env["hosts"][outcome.host] = outcome.env
        result = outcome.result
        if att.retried_after:
            result = replace(result, runner_info={**result.runner_info, "retried_after": att.retried_after})
        self._record(result)

    def _record(self, result: LatencyResult) -> None:
        self.writer.add(result)
        self.reporter.cell_done(result)

    def _lose(self, node: NodeInfo, why: str) -> None:
        self.lost.setdefault(node.node_id, why)

    def _after_loss(self, att: Attempt, why: str) -> None:
        decision = after_loss(att.cell.device, att.attempts, att.node, why, self._usable(), att.tried, self.load)
        if isinstance(decision, Retry):
            self._submit(att.cell, decision.node, att.attempts + 1, att.tried,
                         f"node {att.node.host} was lost ({why})")
        elif isinstance(decision, Fail):
            env = self.run_env["hosts"].get(att.node.host)
            self._record(failed_result(att.cell, self.cfg, decision.reason, env, self.cfg.threads, att.node.host))

    def _check_nodes(self) -> None:
        """Drop nodes Ray declared dead, or that sent nothing for too long while they had cells; move their
        cells on."""
        try:
            self.nodes = cluster_nodes(self.ray)
        except Exception:  # noqa: BLE001 - the GCS itself unreachable: judged by silence below
            pass
        now = time.monotonic()
        alive = {n.node_id for n in self.nodes if n.alive}
        for ref, att in list(self.pending.items()):
            nid = att.node.node_id
            if nid in self.lost:
                why = self.lost[nid]
            elif nid not in alive:
                why = "Ray declared it dead"
            elif overdue(now, att.submitted, self.last_result.get(nid), self.ex.node_timeout_s):
                why = f"no result for {self.ex.node_timeout_s:g} s"
            else:
                continue
            self._lose(att.node, why)
            self.pending.pop(ref)
            self.load[nid] -= 1
            self._cancel(ref)
            self._after_loss(att, why)

    def _cancel(self, ref) -> None:
        try:
            self.ray.cancel(ref, force=True)
        except Exception:  # noqa: BLE001 - the task's node is gone: nothing left to cancel
            pass

    def _cancel_all(self) -> None:
        for ref in list(self.pending):
            self._cancel(ref)
        self.pending.clear()
