"""Parse the text TFLite's `benchmark_model` prints: timings, run statistics, delegation, op profile tables.

Pure: a string in, a frozen record out. The formats are those of the tool's README and its sources
(tensorflow/lite/tools/benchmark; StatWithPercentiles adds `p5= median= p95=` in newer versions). Lines may
carry a log prefix ("INFO: ", "VERBOSE: ", logcat's "I tflite  : "), which is ignored.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from bench.core.errors import UserError

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PREFIX = re.compile(r"^\s*(?:(?:INFO|VERBOSE|WARNING|ERROR|DEBUG)\s*:\s*|[VDIWEF]\s+tflite\s*:\s*)?")
_STATS = re.compile(r"^count=(\d+)(.*)$")
_KV = re.compile(rf"(\w+)=({_NUM})")
_TIMINGS = re.compile(r"Inference timings in us:\s*(.*)$")
_TIMING_ITEM = re.compile(rf"([A-Za-z][A-Za-z ()]*?):\s*({_NUM})")
_DELEGATION = re.compile(r"Replacing (\d+)(?: out of (\d+))? node\(s\) with delegate \(([^)]+)\) node, "
                         r"yielding (\d+) partitions")
_FALLBACK = "will not be executed by the delegate"
_VERSION = re.compile(r"^Tensorflow Version\s*:\s*(\S+)")
_MODEL_SIZE = re.compile(rf"^The input model file size \(MB\):\s*({_NUM})")
_MEMORY = re.compile(rf"^(?:Memory footprint delta|Peak memory footprint)[^:]*:\s*init=({_NUM})\s+overall=({_NUM})")
_ACCELERATORS = re.compile(r"NNAPI accelerators available:\s*\[([^\]]*)\]")
_REGULAR_PROFILE = "Operator-wise Profiling Info for Regular Benchmark Runs"
_SECTION = re.compile(r"^=+ (.+?) =+$")


@dataclass(frozen=True)
class RunStats:
    """One `count=... first=... curr=... min=... max=... avg=... std=...` line, in microseconds."""

    count: int
    first_us: float | None
    curr_us: float | None
    min_us: float | None
    max_us: float | None
    avg_us: float | None
    std_us: float | None
    p5_us: float | None = None
    median_us: float | None = None
    p95_us: float | None = None


@dataclass(frozen=True)
class OpRow:
    """A row of the Run Order table: one node (a delegate kernel is one node)."""

    node_type: str
    first_ms: float
    avg_ms: float
    percent: float
    cdf_percent: float
    mem_kb: float
    times_called: int
    name: str


@dataclass(frozen=True)
class NodeTypeRow:
    """A row of the Summary by node type table."""

    node_type: str
    count: int
    avg_ms: float
    avg_percent: float
    cdf_percent: float
    mem_kb: float
    times_called: int


@dataclass(frozen=True)
class Delegation:
    delegate: str
    replaced: int
    total: int | None
    partitions: int


@dataclass(frozen=True)
class BenchmarkOutput:
    init_ms: float | None
    first_inference_ms: float | None
    warmup_avg_ms: float | None
    inference_avg_ms: float
    warmup: RunStats | None
    inference: RunStats | None
    delegations: tuple[Delegation, ...] = ()
    delegate_fell_back: bool = False  # "the model graph will not be executed by the delegate"
    op_profile: tuple[OpRow, ...] = ()
    op_summary: tuple[NodeTypeRow, ...] = ()
    tool_version: str | None = None
    model_size_mb: float | None = None
    memory_mb: dict = field(default_factory=dict)
    nnapi_accelerators: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


def _strip(line: str) -> str:
    return _PREFIX.sub("", line.rstrip("\r\n"), count=1).strip()


def parse_stats(text: str) -> RunStats | None:
    """A stats line; `count=1 curr=X` (one value, or "(all same)") gives every statistic as X."""
    m = _STATS.match(text.strip())
    if not m:
        return None
    kv = {k: float(v) for k, v in _KV.findall(m.group(2))}
    same = kv.get("curr") if "min" not in kv else None
    get = (lambda k: kv.get(k, same))
    return RunStats(count=int(m.group(1)), first_us=get("first"), curr_us=kv.get("curr"), min_us=get("min"),
                    max_us=get("max"), avg_us=get("avg"), std_us=kv.get("std", 0.0 if same is not None else None),
                    p5_us=get("p5"), median_us=get("median"), p95_us=get("p95"))


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.split("\t") if c.strip()]


def _pct(text: str) -> float:
    return float(text.rstrip("%"))


def _op_row(cells: list[str]) -> OpRow | None:
    # [node type] [start]? [first] [avg ms] [%] [cdf%] [mem KB] [times called] [Name]; [start] came and went.
    if len(cells) == 9:
        cells = cells[:1] + cells[2:]
    if len(cells) != 8:
        return None
    try:
        return OpRow(cells[0], float(cells[1]), float(cells[2]), _pct(cells[3]), _pct(cells[4]), float(cells[5]),
                     int(float(cells[6])), cells[7])
    except ValueError:
        return None


def _type_row(cells: list[str]) -> NodeTypeRow | None:
    if len(cells) != 7:
        return None
    try:
        return NodeTypeRow(cells[0], int(cells[1]), float(cells[2]), _pct(cells[3]), _pct(cells[4]),
                           float(cells[5]), int(float(cells[6])))
    except ValueError:
        return None


def _profile_tables(lines: list[str]) -> tuple[tuple[OpRow, ...], tuple[NodeTypeRow, ...]]:
    """The Run Order and Summary by node type tables of the regular runs' profile (not the init profile)."""
    start = next((i for i, line in enumerate(lines) if _REGULAR_PROFILE in line), None)
    if start is None:
        return (), ()
    ops: list[OpRow] = []
    types: list[NodeTypeRow] = []
    section = None
    for raw in lines[start + 1:]:
        text = _strip(raw)
        m = _SECTION.match(text)
        if m:
            section = m.group(1)
            continue
        if text.startswith("Timings (microseconds)"):
            break  # the end of the regular runs' profile
        if "\t" not in raw or text.startswith("["):
            continue
        cells = _cells(_PREFIX.sub("", raw, count=1))
        if section == "Run Order":
            row = _op_row(cells)
            if row:
                ops.append(row)
        elif section == "Summary by node type":
            row = _type_row(cells)
            if row:
                types.append(row)
    return tuple(ops), tuple(types)


def parse(text: str) -> BenchmarkOutput:
    """Everything we use from one benchmark_model run. Raises UserError when there is no timing summary
    (the tool failed), quoting the last lines it printed."""
    lines = text.splitlines()
    stats_by_phase: list[RunStats] = []  # one "count=" line per phase: warm-up, then the regular runs
    timings: dict[str, float] = {}
    delegations: list[Delegation] = []
    version = size = None
    memory: dict = {}
    accelerators: tuple[str, ...] = ()
    fell_back = False
    for raw in lines:
        text = _strip(raw)
        fell_back = fell_back or _FALLBACK in text
        if (stats := parse_stats(text)) is not None:  # profiles' "Timings (microseconds): count=" do not match
            stats_by_phase.append(stats)
        elif (m := _TIMINGS.search(text)):
            timings = {k.strip(): float(v) for k, v in _TIMING_ITEM.findall(m.group(1))}
        elif (m := _DELEGATION.search(text)):
            delegations.append(Delegation(m.group(3), int(m.group(1)), int(m.group(2)) if m.group(2) else None,
                                          int(m.group(4))))
        elif (m := _VERSION.match(text)):
            version = m.group(1)
        elif (m := _MODEL_SIZE.match(text)):
            size = float(m.group(1))
        elif (m := _MEMORY.match(text)):
            memory = {"init": float(m.group(1)), "overall": float(m.group(2))}
        elif (m := _ACCELERATORS.search(text)):
            accelerators = tuple(a.strip() for a in m.group(1).split(",") if a.strip())
    inference_us = timings.get("Inference (avg)", timings.get("Inference"))
    if inference_us is None:
        tail = " | ".join(_strip(line) for line in lines[-3:] if line.strip()) or "no output"
        raise UserError(f"benchmark_model printed no inference timings (it failed?); its last lines: {tail}")
    ops, types = _profile_tables(lines)

    def ms(key: str) -> float | None:
        return timings[key] / 1000.0 if key in timings else None

    return BenchmarkOutput(
        init_ms=ms("Init"), first_inference_ms=ms("First inference"),
        warmup_avg_ms=ms("Warmup (avg)") if "Warmup (avg)" in timings else ms("Warmup"),
        inference_avg_ms=inference_us / 1000.0,
        warmup=stats_by_phase[0] if len(stats_by_phase) > 1 else None,
        inference=stats_by_phase[-1] if stats_by_phase else None,
        delegations=tuple(delegations), delegate_fell_back=fell_back,
        op_profile=ops, op_summary=types, tool_version=version, model_size_mb=size, memory_mb=memory,
        nnapi_accelerators=accelerators)


def delegated_share(out: BenchmarkOutput) -> dict:
    """Which node types ran where, from the op profile: delegate kernels vs ops left on the CPU. Without a
    profile, the delegation lines alone (the last one decides: a second delegate takes what the first left)."""
    result: dict = {}
    if out.delegations:
        last = out.delegations[-1]
        result["delegation"] = {"delegate": last.delegate, "replaced": last.replaced, "total": last.total,
                                "partitions": last.partitions}
    if out.op_profile:
        delegate_rows = [r for r in out.op_profile if "Delegate" in r.node_type or r.node_type == "DELEGATE"]
        cpu_rows = [r for r in out.op_profile if r not in delegate_rows]
        total = sum(r.avg_ms for r in out.op_profile) or 1.0
        result["delegate_kernels"] = len(delegate_rows)
        result["delegate_time_share"] = sum(r.avg_ms for r in delegate_rows) / total
        cpu_types: dict[str, int] = {}
        for r in cpu_rows:
            cpu_types[r.node_type] = cpu_types.get(r.node_type, 0) + 1
        result["ops_not_delegated"] = cpu_types
    return result
