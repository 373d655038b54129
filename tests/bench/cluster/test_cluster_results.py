"""A cluster run's file read like any other: each cell's host, CPU and matmul peak come from its own host's
environment (env.hosts), and the run is merged and tabulated with a local run's (synthetic files written by
the store's own classes; the lab test tabulates a measured one)."""
from __future__ import annotations

from dataclasses import replace

from bench.analysis.frames import cells_frame
from bench.cli import main
from bench.store import cell_env, load_run, to_frame

from bench.core.result import LatencyResult
from devices.registry import comparability_key


def make_env(host: str, cpu_model: str, peak: float = 25.0) -> dict:
    return {"hostname": host, "cpu": {"model": cpu_model}, "libraries": {"onnxruntime": "1.32.0", "torch": "2.13.0"},
            "matmul_peak": {"gflops": peak, "threads": 2, "dtype": "float32"}}


def make_cell(model: str, device: str, ms: float, env: dict) -> LatencyResult:
    runner = {"cpu": "onnxruntime", "torch": "torch"}[device]
    summary = {"statistic": "median", "latency_ms": ms, "median_ms": ms, "ci_low_ms": ms * 0.95,
               "ci_high_ms": ms * 1.05, "ci_rel_halfwidth": 0.05, "count": 30, "rounds": 3}
    return LatencyResult(model=model, device=device, runner=runner, threads=2, summary=summary,
                         protocol={"name": "quick", "statistic": "median"},
                         model_info={"params_m": 2.0, "macs_m": 275.0}, finished="2026-01-01T10:00:00+00:00",
                         env_key=comparability_key(env, device, runner, 2, "fp32"))


def _cluster_run(write_run):
    driver = {"hostname": "head", "cpu": {"model": "Head CPU"}, "cluster": {"address": "10.0.0.1:6379"}}
    hosts = {"xeon": make_env("lab-xeon", "Xeon Lab", peak=90.0), "epyc": make_env("lab-epyc", "EPYC Lab", peak=60.0)}
    cells = []
    for host, device, model, ms in (("xeon", "cpu", "mobileone_s0", 1.1), ("epyc", "torch", "mobileone_s0", 3.3),
                                    ("xeon", "cpu", "mobilenetv2_100", 1.5)):
        c = make_cell(model, device, ms, hosts[host])
        cells.append(replace(c, runner_info={"host": host}))
    return write_run("20260101-100000-clus", {**driver, "hosts": hosts}, cells)


def test_each_cell_reads_its_own_host_s_environment(write_run):
    run = load_run(_cluster_run(write_run))
    frame = to_frame([run]).set_index(["model", "device"])
    assert frame.loc[("mobileone_s0", "cpu"), "host"] == "xeon"
    assert frame.loc[("mobileone_s0", "cpu"), "cpu_model"] == "Xeon Lab"
    assert frame.loc[("mobileone_s0", "torch"), "cpu_model"] == "EPYC Lab"
    cells = cells_frame([run]).set_index(["model", "device"])
    assert cells.loc[("mobileone_s0", "cpu"), "matmul_peak_gflops"] == 90.0
    assert cells.loc[("mobileone_s0", "torch"), "matmul_peak_gflops"] == 60.0
    local = replace(run.cells[0], runner_info={})
    assert cell_env(run, local) is run.env  # a cell without a host: the run's one environment


def test_bench_table_merges_a_cluster_run_with_a_local_one(write_run, tmp_path, capsys):
    cluster = _cluster_run(write_run)
    env = make_env("laptop", "Laptop CPU")
    local = write_run("20260101-090000-locl", env, [make_cell("mobilenetv2_100", "torch", 7.7, env)])
    out = tmp_path / "table.csv"
    assert main(["table", "--results", str(cluster), str(local), "--format", "csv", "--out", str(out)]) == 0
    text = out.read_text()
    for ms in ("1.1", "3.3", "1.5", "7.7"):
        assert f",{ms}," in text
