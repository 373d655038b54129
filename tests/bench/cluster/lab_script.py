"""A lab of three Ray nodes on this machine, driven through the `bench` CLI, for tests/bench/cluster/test_lab.py.

Run inside a network namespace that has only `lo` (the test starts it with `unshare -rn`), so every packet
stays on loopback; every node also binds 127.0.0.1 explicitly. Steps, each recorded in the JSON report:
  1. head h0 (device cpu) and node hA (device torch) start; `bench node status --json`
  2. `bench run --cluster` of cpu,torch x mobileone_s0,mobilenetv2_100, SIGTERM once a cell is recorded
  3. `bench run --resume RUN --cluster` finishes it; `bench table` over it
  4. a device no node offers: exit 2, one line
  5. node hB (cpu, torch) joins; a second run; hB's processes are SIGKILLed while it measures a cell
  6. a third run, of torch alone; hA, by then the only node with torch, SIGKILLed while it measures
  7. a fourth run, of cpu; the head h0 SIGKILLed while it measures
  8. every node stopped with `bench node stop`; whatever is left of the recorded groups is killed
Usage: python lab_script.py WORKDIR REPORT.json
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.cluster.node import node_processes

PORT = 6380
ADDRESS = f"127.0.0.1:{PORT}"
BENCH = [sys.executable, "-m", "bench.cli"]
SUITE = ["--device", "cpu,torch", "--protocol", "quick", "--threads", "1"]
MODELS = "mobileone_s0,mobilenetv2_100"


def main(work: Path, report_path: Path) -> int:
    report: dict = {"steps": {}}
    state = work / "state"
    # Ray's Unix sockets live under its temp dir: keep the path short (108-byte socket path limit).
    temp = Path(tempfile.mkdtemp(prefix="rb-", dir="/tmp"))
    env = dict(os.environ)
    # Declare a killed node dead within a few seconds (defaults: about 15 s), for the fault step.
    env.update(RAY_health_check_period_ms="1000", RAY_health_check_failure_threshold="3",
               RAY_health_check_initial_delay_ms="1000")

    def bench(*args: str, timeout: float = 300, check: bool = False) -> dict:
        t0 = time.monotonic()
        p = subprocess.run([*BENCH, *args], capture_output=True, text=True, timeout=timeout, env=env)
        out = {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr, "seconds": time.monotonic() - t0}
        if check and p.returncode != 0:
            raise RuntimeError(f"bench {' '.join(args)} failed ({p.returncode}): {p.stderr[-2000:]}")
        return out

    def start(host: str, devices: str, head: bool = False) -> dict:
        where = ["--head", "--port", str(PORT)] if head else ["--address", ADDRESS]
        return bench("node", "start", *where, "--host-label", host, "--devices", devices, "--node-ip-address",
                     "127.0.0.1", "--temp-dir", str(temp), "--state-dir", str(state), "--cache",
                     str(work / f"cache-{host}"), timeout=150, check=True)

    def record(host: str) -> dict:
        return json.loads((state / f"{host}.json").read_text())

    try:
        steps = report["steps"]
        steps["start_h0"] = start("h0", "cpu", head=True)
        steps["start_hA"] = start("hA", "torch")
        report["pgids"] = {h: record(h)["pgid"] for h in ("h0", "hA")}
        steps["status"] = bench("node", "status", "--address", ADDRESS, "--json", timeout=60)

        # 2. a run interrupted by SIGTERM once its first cell is in the file
        out1 = work / "runs1"
        proc = subprocess.Popen([*BENCH, "run", "--cluster", ADDRESS, *SUITE, "--models", MODELS, "--out", str(out1)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        run_file, first_seen = None, None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            files = sorted(out1.glob("*.json")) if out1.is_dir() else []
            if files:
                try:
                    cells = json.loads(files[0].read_text())["cells"]
                except (ValueError, OSError):
                    cells = []
                if cells:
                    run_file, first_seen = files[0], len(cells)
                    break
            time.sleep(0.1)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
        run_file = run_file or (sorted(out1.glob("*.json")) or [None])[0]
        steps["interrupted"] = {"rc": proc.returncode, "stderr": stderr, "first_seen": first_seen,
                                "run": json.loads(run_file.read_text()) if run_file else None}

        # 3. resume it on the cluster, then tabulate it
        steps["resume"] = bench("run", "--resume", str(run_file), "--cluster", ADDRESS, timeout=300)
        steps["resumed_run"] = json.loads(run_file.read_text())
        steps["table"] = bench("table", "--results", str(run_file), "--format", "csv", "--out", str(work / "table.csv"),
                               timeout=120)
        steps["table_csv"] = (work / "table.csv").read_text() if (work / "table.csv").exists() else ""

        # 4. a device no node offers
        steps["missing"] = bench("run", "--cluster", ADDRESS, "--device", "tflite", "--models", "mobileone_s0",
                                 "--protocol", "quick", "--out", str(work / "runs-missing"), timeout=120)

        # 5. a third node offering both devices, killed while it measures
        steps["start_hB"] = start("hB", "cpu,torch")
        report["pgids"]["hB"] = record("hB")["pgid"]
        steps["fault"] = _run_and_kill(env, work / "runs2", report["pgids"]["hB"],
                                       [*SUITE, "--models", MODELS + ",mobileone_s1"])

        # 6. hA, now the only node offering torch, killed while it measures: its cells fail, with the reason
        steps["fault_alone"] = _run_and_kill(env, work / "runs3", report["pgids"]["hA"],
                                             ["--device", "torch", "--protocol", "quick", "--threads", "1",
                                              "--models", MODELS])

        # 7. the head itself (h0, the last node) killed while it measures: the driver ends the run, interrupted
        steps["head_lost"] = _run_and_kill(env, work / "runs4", report["pgids"]["h0"],
                                           ["--device", "cpu", "--protocol", "quick", "--threads", "1",
                                            "--models", MODELS + ",mobileone_s1"])
    except Exception as e:  # noqa: BLE001 - reported to the test, which fails naming it
        report["error"] = f"{type(e).__name__}: {e}"
    finally:
        report["stop"] = bench("node", "stop", "--state-dir", str(state), timeout=120)
        left = {}
        for host, leader in report.get("pgids", {}).items():
            procs = node_processes(leader)
            if procs:
                left[host] = sorted(procs)
                for pid in procs:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        report["left_running"] = left
        shutil.rmtree(temp, ignore_errors=True)
        report_path.write_text(json.dumps(report, indent=1))
    return 0


def _run_and_kill(env: dict, out: Path, leader: int, suite: list[str]) -> dict:
    """`bench run --cluster` in the background; every process of the node `leader` SIGKILLed as soon as it
    measures a cell; the run's exit code, stderr and file."""
    proc = subprocess.Popen([*BENCH, "run", "--cluster", ADDRESS, *suite, "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    killed_at, deadline = None, time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if _measuring(leader):
            for pid in node_processes(leader):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed_at = time.monotonic()
            break
        time.sleep(0.05)
    try:
        _, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
    files = sorted(out.glob("*.json"))
    return {"rc": proc.returncode, "stderr": stderr, "killed": killed_at is not None,
            "seconds_after_kill": time.monotonic() - killed_at if killed_at else None,
            "run": json.loads(files[0].read_text()) if files else None}


def _measuring(leader: int) -> bool:
    """Whether one of the node's processes is a Ray worker running a cell now (titled ray::run_cell)."""
    for pid in node_processes(leader):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::run_cell"):
                return True
        except OSError:
            continue
    return False


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
