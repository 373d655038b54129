"""The paper's reference tables (bench/data/reference/*.csv, package data), read as plain records."""
from __future__ import annotations

import csv
import functools
import io
from importlib import resources
from pathlib import Path

# The checkout's root (git revisions, bench.toml, results/); not where the reference data lives, which ships
# inside the package and is read through importlib.resources, so an installed wheel finds it too.
REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = resources.files("bench") / "data" / "reference"

# The paper's Table 1 platform columns are declared with the devices (bench.core.device.PAPER_PLATFORMS),
# and each device's spec names the column it is compared with.


def read_csv(name: str) -> list[dict[str, str]]:
    """Rows of a reference CSV; lines starting with '#' are its comment header."""
    with (REFERENCE_DIR / name).open("rb") as f:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        return list(csv.DictReader(line for line in text if not line.startswith("#")))


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None


@functools.cache
def paper_table1() -> dict[str, dict[str, float | None]]:
    """Paper name -> {top1, cpu_x86_ms, iphone12_ane_ms, trt_2080ti_ms, pixel6_tpu_ms} (None = not reported)."""
    table = {row["model"]: {k: _float(v) for k, v in row.items() if k != "model"}
             for row in read_csv("paper_table1_latency.csv")}
    for row in read_csv("paper_table3_recipes_mobile.csv"):
        table.setdefault(row["model"], {"top1": _float(row["top1"]),
                                        "iphone12_ane_ms": _float(row["iphone12_ane_ms"])})
    return table


@functools.cache
def baseline_counts() -> dict[str, tuple[float, float]]:
    """Paper name -> (params M, MACs M) counted on the PyTorch reference implementations."""
    return {row["model"]: (float(row["pytorch_params_m"]), float(row["pytorch_macs_m"]))
            for row in read_csv("baselines.csv")}


@functools.cache
def mobileone_counts() -> dict[str, tuple[float, float, float]]:
    """'S0'.. -> (deploy params M, MACs M, top-1)."""
    return {row["variant"]: (float(row["params_m"]), float(row["macs_m"]), float(row["top1"]))
            for row in read_csv("mobileone_variants.csv")}


@functools.cache
def micro_top1() -> dict[str, dict[int, float]]:
    """'mu0'.. -> {k: top-1} from supplementary Table 6."""
    return {row["variant"]: {k: float(row[f"k{k}"]) for k in (1, 2, 3)}
            for row in read_csv("paper_table6_overparam_k.csv")}


@functools.cache
def paper_spearman() -> list[dict[str, str]]:
    return read_csv("paper_spearman.csv")
