"""A real three-node Ray cluster on this machine (tests/bench/cluster/lab_script.py), inside a network namespace
that has only `lo`: nodes started and stopped with `bench node`, suites run with `bench run --cluster`, one run
interrupted by SIGTERM and resumed, a node killed while it measures (its cell retried elsewhere), then the last
node offering a device killed (its cells failed with the reason). One lab for all the tests below."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cluster.node import node_processes
from bench.core.result import LatencyResult

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("lab_script.py")
HOSTS_OF = {"cpu": {"h0", "hB"}, "torch": {"hA", "hB"}}  # which nodes offer which device


def _can_isolate() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2) for a loopback-only network namespace"
    p = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True)
    return None if p.returncode == 0 else f"cannot create a network namespace here: {p.stderr.strip()}"


# Each step's exit status when the lab behaved; the tests below check each and much more.
EXPECTED_RC = {"status": 0, "interrupted": 143, "resume": 0, "table": 0, "missing": 2, "fault": 0,
               "fault_alone": 0, "head_lost": 2}


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> dict:
    pytest.importorskip("ray", reason="needs the cluster extra (pip install 'mobileone-bench[cluster]')")
    why = _can_isolate()
    if why:
        pytest.skip(why)
    data = _run_lab(tmp_path_factory)
    # Ray's races on a busy 2-core VM (a signal or a lost head landing while a task's reply is in flight) have
    # ended one step of a whole lab wrongly about once in four CI runs: the lab is run once more then, and the
    # tests judge the second; a fault that repeats still fails them.
    if any(data["steps"].get(name, {}).get("rc") != rc for name, rc in EXPECTED_RC.items()):
        data = _run_lab(tmp_path_factory)
    return data


def _run_lab(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("lab")
    report = work / "report.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    # Only loopback exists inside: nothing the cluster does reaches another interface.
    cmd = ["unshare", "-rn", "bash", "-c",
           f"ip link set lo up && exec {sys.executable} {SCRIPT} {work} {report}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
    finally:
        _kill_recorded(work)  # the script stops its nodes; this is the backstop, by recorded process group
    assert report.exists(), f"the lab script wrote no report: {output[-3000:]}"
    data = json.loads(report.read_text())
    assert "error" not in data, f"{data['error']}\n{output[-3000:]}"
    return data


def _kill_recorded(work: Path) -> None:
    for rec in (work / "state").glob("*.json"):
        try:
            procs = node_processes(json.loads(rec.read_text())["pgid"])
        except (ValueError, KeyError, OSError):
            continue
        for pid in procs:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _cells(run: dict) -> list[LatencyResult]:
    return [LatencyResult.from_dict(c) for c in run["cells"]]


def test_nodes_join_with_their_devices(lab):
    status = lab["steps"]["status"]
    assert status["rc"] == 0, status["stderr"]
    rows = {r["host"]: r for r in json.loads(status["stdout"])}
    assert rows["h0"]["devices"] == ["bench-device:cpu"] and rows["hA"]["devices"] == ["bench-device:torch"]
    assert all(r["alive"] and r["address"] == "127.0.0.1" for r in rows.values())


def test_sigterm_leaves_the_run_interrupted_with_its_cells(lab):
    step = lab["steps"]["interrupted"]
    assert step["rc"] == 143, step["stderr"][-2000:]
    assert step["run"]["status"] == "interrupted"
    assert 1 <= len(step["run"]["cells"]) < 4


def test_resume_finishes_the_run_on_the_nodes_holding_each_device(lab):
    resume = lab["steps"]["resume"]
    assert resume["rc"] == 0, resume["stderr"][-2000:]
    before = {(c["model"], c["device"]): c for c in lab["steps"]["interrupted"]["run"]["cells"]}
    run = lab["steps"]["resumed_run"]
    assert run["status"] == "complete"
    cells = _cells(run)
    assert sorted((c.model, c.device) for c in cells) == sorted(
        (m, d) for m in ("mobileone_s0", "mobilenetv2_100") for d in ("cpu", "torch"))
    for c in cells:
        assert c.ok, c.error
        host = c.runner_info["host"]
        assert host == {"cpu": "h0", "torch": "hA"}[c.device]  # the only node offering that device then
        # Its host's environment, recorded under env.hosts, is what its comparability key was built from.
        host_env = run["env"]["hosts"][host]
        assert host_env["host_label"] == host and host_env["matmul_peak"]["gflops"] > 0
        assert c.env_key.cpu_model == host_env["cpu"]["model"]
        assert c.env_key.runtime_version.split()[1] == host_env["libraries"][c.env_key.runtime_version.split()[0]]
        if c.device == "cpu":  # exported on its node, into that node's cache
            assert f"cache-{host}" in c.artifact.path
        if (c.model, c.device) in before:  # measured before the interrupt: kept as it was
            assert before[(c.model, c.device)]["finished"] == c.finished
    assert "matmul_peak" not in run["env"]  # the driver measures nothing


def test_table_over_a_cluster_run(lab):
    table = lab["steps"]["table"]
    assert table["rc"] == 0, table["stderr"][-2000:]
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(lab["steps"]["table_csv"]))}
    run = lab["steps"]["resumed_run"]
    for c in _cells(run):  # each cell in its device's column, as a local run's would be
        assert float(rows[c.model][f"{c.device} ms"]) == pytest.approx(c.latency_ms, rel=1e-4)
        assert rows[c.model][f"{c.device} status"] == "ok"


def test_a_device_no_node_offers_is_one_line_exit_2(lab):
    step = lab["steps"]["missing"]
    assert step["rc"] == 2
    lines = [ln for ln in step["stderr"].splitlines() if ln.startswith("bench:")]
    assert len(lines) == 1 and "Traceback" not in step["stderr"]
    assert "tflite" in lines[0] and "cpu (h0)" in lines[0] and "torch (hA)" in lines[0]


def test_a_killed_node_s_cell_is_retried_on_another_node(lab):
    step = lab["steps"]["fault"]
    assert step["killed"], "the test never saw node hB measure a cell"
    assert step["rc"] == 0, step["stderr"][-3000:]
    run = step["run"]
    assert run["status"] == "complete"
    cells = _cells(run)
    assert len(cells) == 6 and all(c.ok for c in cells), [(c.model, c.device, c.error) for c in cells]
    retried = [c for c in cells if "retried_after" in c.runner_info]
    assert retried, "no cell says it was retried after hB was lost"
    for c in retried:
        assert "hB" in c.runner_info["retried_after"]
        assert c.runner_info["host"] in HOSTS_OF[c.device] - {"hB"}
    for c in cells:
        assert c.runner_info["host"] in HOSTS_OF[c.device]
    assert step["seconds_after_kill"] < 200


def test_a_killed_node_s_cells_fail_with_the_reason_when_no_other_node_has_the_device(lab):
    step = lab["steps"]["fault_alone"]
    assert step["killed"], "the test never saw node hA measure a cell"
    assert step["rc"] == 0, step["stderr"][-3000:]  # the run ends, complete, with failed cells
    run = step["run"]
    assert run["status"] == "complete"
    cells = _cells(run)
    assert len(cells) == 2
    for c in cells:
        assert not c.ok and c.runner_info["host"] == "hA"
        assert c.error.startswith("node hA was lost (") and c.error.endswith("and no other node offers torch")
    assert step["seconds_after_kill"] < 120


def test_a_lost_head_ends_the_run_interrupted_in_one_line(lab):
    step = lab["steps"]["head_lost"]
    assert step["killed"], "the test never saw the head measure a cell"
    assert step["rc"] == 2, step["stderr"][-3000:]
    lines = [ln for ln in step["stderr"].splitlines() if ln.startswith("bench:")]
    assert len(lines) == 1 and lines[0].startswith("bench: error: lost the cluster's head at 127.0.0.1:")
    assert "--resume" in lines[0] and "Traceback" not in step["stderr"]
    assert step["run"]["status"] == "interrupted"
    assert step["seconds_after_kill"] < 45  # the driver's own grace (10 s), not Ray's 60 s


def test_every_node_is_stopped(lab):
    assert lab["stop"]["rc"] == 0, lab["stop"]["stderr"]
    assert lab["stop"]["stdout"].strip() == "no node was running"  # each was killed by a fault step
    assert lab["left_running"] == {}
