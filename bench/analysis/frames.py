"""Results and the paper's Table 1 as tidy frames: load runs, merge them, keep the newest cell per key, join the zoo.

A *device key* names what makes two cells comparable (docs/measurement.md: CPU model, threads, runtime version,
precision, GPU, phone): cells that share it are one column of a table and one series of a plot, wherever they
were measured. Runs from different machines therefore merge into one frame; a re-run on the same machine
supersedes the older cell.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench import zoo
from bench.core.device import PAPER_PLATFORMS
from bench.core.errors import UserError
from bench.store import cell_env, load_run, result_files, to_frame
from devices.registry import paper_column

# The cell's env_key fields that make up the device key (bench.core.result.ComparabilityKey).
KEY_FIELDS = ("device", "runner", "precision", "threads", "cpu_model", "gpu", "device_name", "runtime_version")
# Which of them tell two columns with the same device name apart, most telling first.
DISTINGUISH = ("cpu_model", "gpu", "device_name", "threads", "runtime_version", "precision", "runner")
# Short names of the paper's platforms (bench.reference.PAPER_PLATFORMS has the long ones).
PLATFORM_SHORT = {"cpu_x86_ms": "x86 CPU", "iphone12_ane_ms": "iPhone 12", "trt_2080ti_ms": "RTX-2080Ti",
                  "pixel6_tpu_ms": "Pixel-6"}
PAPER_RUN_ID = "paper"


def load_runs(paths: list[Path]):
    """Read run files (each checked by store.load_run). A model this process does not know (a user model
    declared elsewhere) is tabulated from what its results recorded: label, family, params, MACs, top-1."""

    known = zoo.model_specs()
    runs, seen = [], set()
    for path in paths:
        run = load_run(path)
        if run.run_id in seen:  # the same run reached twice (a folder and a file in it)
            continue
        seen.add(run.run_id)
        for c in run.cells:
            if c.model not in known:  # a user's model (or a newer zoo's): what the result recorded of it
                zoo.register_recorded(c.model, c.model_info or {})
                known = zoo.model_specs()
        runs.append(run)
    if not any(run.cells for run in runs):
        raise UserError(f"no measured cells in {', '.join(map(str, paths))}; run `bench run` first, "
                        "or use --paper for the paper's data")
    return runs


def _env_fields(cell) -> dict:
    """The cell's device-key fields, from its comparability key (every loaded cell has one)."""
    key = cell.env_key.to_dict()
    return {f: key[f] if key[f] is not None else "" for f in KEY_FIELDS}


def cells_frame(runs) -> pd.DataFrame:
    """One row per cell of every run: store.to_frame's columns plus the device key, the cell's time, the
    machine's matmul peak and the model's params/MACs as recorded with the cell."""

    base = to_frame(runs)
    extra = []
    for run in runs:  # the same order as to_frame's rows
        for c in run.cells:
            env = cell_env(run, c)  # a cluster run's cells each have their own host's
            peak = env.get("matmul_peak") or {}
            gpu = env.get("gpu")
            fields = _env_fields(c)
            extra.append({
                "finished": c.finished or c.started or run.created,
                "error_stage": c.error_stage or "",
                "params_m": c.model_info.get("params_m"),
                "macs_m": c.model_info.get("macs_m"),
                "device_key": "|".join(str(fields[f]) for f in KEY_FIELDS),
                **{f"key_{f}": fields[f] for f in KEY_FIELDS},
                "gpu_name": gpu.get("name", "") if isinstance(gpu, dict) else "",
                "matmul_peak_gflops": peak.get("gflops"),
                "matmul_peak_threads": peak.get("threads"),
            })
    frame = pd.concat([base.reset_index(drop=True), pd.DataFrame(extra)], axis=1)
    frame["time"] = pd.to_datetime(frame["finished"], utc=True, format="ISO8601", errors="coerce")
    for col in ("latency_ms", "ci_low_ms", "ci_high_ms", "median_ms", "statistic"):
        if col not in frame:
            frame[col] = None
    frame["source"] = frame["source"].fillna("measured")
    return frame


def select_newest(frame: pd.DataFrame, keep_all: bool = False) -> pd.DataFrame:
    """One cell per (model, device key, form): the newest. keep_all keeps every run's cell, each run its own
    column (the run id joins the key)."""
    frame = frame.copy()
    if keep_all:
        frame["device_key"] = frame["device_key"] + "@" + frame["run_id"]
    frame = frame.sort_values("time", kind="stable", na_position="first")
    frame = frame.drop_duplicates(["model", "device_key", "form"], keep="last")
    return label_devices(frame, keep_all).reset_index(drop=True)


def _describe(field: str, value) -> str:
    if field == "threads":
        return f"{value} threads" if value not in ("", None) else ""
    return str(value)


def label_devices(frame: pd.DataFrame, with_run: bool = False) -> pd.DataFrame:
    """Add `device_label` (short, unique per device key) and `env_label` (the environment, for legends)."""
    frame = frame.copy()
    keys = frame.drop_duplicates("device_key")
    labels: dict[str, str] = {}
    for device, group in keys.groupby("device", sort=False):
        if len(group) == 1 and not with_run:
            labels[group["device_key"].iloc[0]] = device
            continue
        differing = [f for f in DISTINGUISH if group[f"key_{f}"].astype(str).nunique() > 1]
        for _, row in group.iterrows():
            parts = [_describe(f, row[f"key_{f}"]) for f in differing]
            if with_run:
                parts.append(f"run {row['run_id']}")
            labels[row["device_key"]] = f"{device} ({', '.join(p for p in parts if p)})" if parts else device
    # Keys that differ only in what DISTINGUISH leaves out still get distinct labels.
    counts: dict[str, int] = {}
    for key, label in list(labels.items()):
        counts[label] = counts.get(label, 0) + 1
        if counts[label] > 1:
            labels[key] = f"{label} #{counts[label]}"
    frame["device_label"] = frame["device_key"].map(labels)
    frame["env_label"] = frame["device_key"].map(_env_labels(frame))
    return frame


def _env_labels(frame: pd.DataFrame) -> dict[str, str]:
    out = {}
    for key, group in frame.groupby("device_key", sort=False):
        row = group.iloc[0]
        if row["source"] == "paper":
            out[key] = row["env_label"]
            continue
        parts = [row["key_runtime_version"] or row["key_runner"], row["key_precision"],
                 _describe("threads", row["key_threads"]), row["key_gpu"] or row["gpu_name"],
                 row["key_device_name"], row["key_cpu_model"]]
        hosts = sorted({h for h in group["host"] if h})
        if hosts:
            parts.append("host " + ", ".join(hosts))
        out[key] = ", ".join(str(p) for p in parts if p)
    return out


def models_frame(names, known: dict[str, tuple[float, float]] | None = None) -> pd.DataFrame:
    """One row per model in the paper's order: names, family, top-1, deploy-form params and MACs, and the
    paper's latency on each of its platforms (paper_<platform> columns). Params and MACs are those recorded
    with the results (`known`: model -> (params M, MACs M)), else counted by the zoo (cached on disk)."""

    reg = zoo.model_specs()
    order = {n: i for i, n in enumerate(reg)}
    rows = []
    for name in sorted(set(names), key=lambda n: order.get(n, len(order))):
        spec = reg[name]
        if known and name in known:
            params_m, macs_m = known[name]
        else:
            c = zoo.spec_complexity(name)
            params_m, macs_m = c.params_m, c.macs_m
        row = {"model": name, "paper_name": spec.paper_name, "family": spec.family, "order": order[name],
               "top1": spec.top1, "params_m": params_m, "macs_m": macs_m, "in_study": spec.in_study,
               "mobileone": spec.family.startswith("mobileone"), "user": spec.is_user}
        for platform in PAPER_PLATFORMS:
            row[f"paper_{platform}"] = spec.paper_latency_ms.get(platform)
        rows.append(row)
    return pd.DataFrame(rows)


def study_models() -> list[str]:
    return [n for n, s in zoo.model_specs().items() if s.in_study]


def paper_cells(models: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 1 as cells of the same shape as measured ones: one device key per paper platform."""

    rows = []
    for _, m in models.iterrows():
        for platform, long_name in PAPER_PLATFORMS.items():
            value = m[f"paper_{platform}"]
            if value is None or pd.isna(value):
                continue
            rows.append({
                "run_id": PAPER_RUN_ID, "model": m["model"], "device": platform.removesuffix("_ms"),
                "runner": "", "form": "deploy", "precision": "", "threads": None, "status": "ok", "error": None,
                "error_stage": "", "source": "paper", "latency_ms": float(value), "median_ms": None,
                "ci_low_ms": None, "ci_high_ms": None, "statistic": "as published", "host": "",
                "device_key": f"paper:{platform}", "device_label": f"paper {PLATFORM_SHORT[platform]}",
                "env_label": f"{long_name}, MobileOne paper Table 1",
                "matmul_peak_gflops": None, "matmul_peak_threads": None, "params_m": m["params_m"],
                "macs_m": m["macs_m"]})
    return pd.DataFrame(rows)


def platform_of(device: str, source: str = "measured") -> str | None:
    """The paper platform a device of ours is compared with (None for the paper's own columns)."""
    return None if source == "paper" else paper_column(device)


def latency_frame(cells: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """Selected cells joined with the zoo's columns; params/MACs are the zoo's (the deploy form's)."""
    drop = [c for c in ("params_m", "macs_m") if c in cells]
    out = cells.drop(columns=drop).merge(models, on="model", how="left")
    out["platform"] = [platform_of(d, s) for d, s in zip(out["device"], out["source"])]
    return out


def device_order(frame: pd.DataFrame) -> list[str]:
    """Device keys in a stable, readable order: grouped by the paper platform they match, then by label."""

    rank = {p: i for i, p in enumerate(PAPER_PLATFORMS)}
    keys = frame.drop_duplicates("device_key")
    platforms = keys["platform"] if "platform" in keys else pd.Series([None] * len(keys), index=keys.index)

    def sort_key(key: str, platform, label: str):
        paper = key.startswith("paper:")
        platform = key.removeprefix("paper:") if paper else platform
        return (rank.get(platform, len(rank)), paper, label)

    return sorted(keys["device_key"], key=lambda k: sort_key(
        k, platforms[keys["device_key"] == k].iloc[0], keys.loc[keys["device_key"] == k, "device_label"].iloc[0]))


def source_tag(runs) -> str:
    """What outputs are named after: the run id, or the newest run id plus how many others were merged."""
    if not runs:
        return PAPER_RUN_ID
    ids = sorted(r.run_id for r in runs)
    return ids[-1] if len(ids) == 1 else f"{ids[-1]}+{len(ids) - 1}"


def slug(text: str) -> str:
    """A file-name-safe form of a label."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "x"


@dataclass(frozen=True, eq=False)
class Dataset:
    """What the table, the plots and the correlations read: selected cells joined with the zoo."""

    cells: pd.DataFrame  # one row per (model, device key, form), with the zoo's columns and `platform`
    models: pd.DataFrame  # one row per model shown, in the paper's order
    source: str  # names the outputs: a run id, `<newest>+<others>`, or `paper`
    paper: bool  # built from the paper's Table 1 alone


def load_dataset(results: list[str] | None, default_dir: Path, *, paper: bool = False,
                 keep_all: bool = False) -> Dataset:
    """--results paths (or every run in default_dir), merged and reduced to the newest cell per key; or, with
    paper=True, the paper's Table 1 over the 20 models of its study."""
    if paper:
        models = models_frame(study_models())
        cells = paper_cells(models)
        return Dataset(latency_frame(cells, models), models, PAPER_RUN_ID, True)

    runs = load_runs(result_files(results, default_dir))
    selected = select_newest(cells_frame(runs), keep_all=keep_all)
    recorded = selected.dropna(subset=["params_m", "macs_m"]).drop_duplicates("model")
    known = {m: (float(p), float(c)) for m, p, c in zip(recorded["model"], recorded["params_m"], recorded["macs_m"])}
    models = models_frame(selected["model"].unique(), known)
    return Dataset(latency_frame(selected, models), models, source_tag(runs), False)
