"""A host as a node: its devices, the `ray start` command, and stopping exactly the processes it started
(real processes; no Ray needed)."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from bench.cluster import node
from bench.cluster.resources import DeviceSlot
from bench.core.errors import UserError
from devices.registry import availability


def test_devices_none_auto_and_a_list():
    assert node.detect_devices("none") == ()
    cpu = node.detect_devices("cpu,cpu")
    assert cpu == (DeviceSlot("cpu", None, True),)
    auto = {s.device for s in node.detect_devices("auto")}
    assert "cpu" in auto and "torch" in auto  # both run on every host with the core install


def test_a_device_this_host_cannot_run_is_refused_with_its_reason():
    if availability("trt").can_run:
        pytest.skip("this host can run TensorRT")
    with pytest.raises(UserError, match=r"device trt cannot run on this host: .*--devices auto"):
        node.detect_devices("cpu,trt")
    with pytest.raises(UserError, match="unknown device"):
        node.detect_devices("abacus")


def _args(cmd: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) if "=" in a else (a[2:], "") for a in cmd if a.startswith("--"))


def test_ray_start_command_of_a_head_and_of_a_worker():
    slots = (DeviceSlot("cpu", None, True),)
    head = node.ray_start_command(node.NodeOptions("h0", slots, head=True, port=6390, ip="127.0.0.1",
                                                   temp_dir="/tmp/rb-1"))
    assert head[:4] == [sys.executable, "-m", "ray.scripts.scripts", "start"]
    a = _args(head)
    assert "block" in a and "head" in a and a["port"] == "6390" and a["node-ip-address"] == "127.0.0.1"
    assert json.loads(a["resources"]) == {"bench-device:cpu": 1.0, "bench-host:h0": 1.0}
    assert a["num-cpus"] == "1" and a["include-dashboard"] == "false" and a["temp-dir"] == "/tmp/rb-1"
    worker = _args(node.ray_start_command(node.NodeOptions("h1", (), address="127.0.0.1:6390", num_cpus=2)))
    assert worker["address"] == "127.0.0.1:6390" and "head" not in worker and worker["num-cpus"] == "2"
    assert json.loads(worker["resources"]) == {"bench-host:h1": 1.0}


def test_a_node_is_a_head_or_joins_one():
    with pytest.raises(UserError, match="either a head"):
        node.NodeOptions("h0", ())
    with pytest.raises(UserError, match="either a head"):
        node.NodeOptions("h0", (), head=True, address="x:1")


def test_the_workers_learn_their_host_and_cache(tmp_path):
    env = node.node_environment(node.NodeOptions("h7", (), head=True, cache=str(tmp_path / "c")), base={})
    assert env == {node.HOST_ENV: "h7", node.CACHE_ENV: str((tmp_path / "c").resolve())}


def _tree(tmp_path):
    """A leader in its own session, a child in the group, and a grandchild that left the group (as Ray's
    workers do, each in a group of its own)."""
    script = "sleep 300 & setsid sleep 301 & wait"
    p = subprocess.Popen(["bash", "-c", script], start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(node.node_processes(p.pid)) < 3:
        time.sleep(0.05)
    return p


def test_stop_ends_every_process_of_the_node_and_nothing_else(tmp_path):
    p = _tree(tmp_path)
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)  # not the node's
    try:
        procs = node.node_processes(p.pid)
        assert len(procs) == 3 and p.pid in procs and other.pid not in procs
        assert node.stop_group(p.pid, grace_s=5) is True
        p.wait(timeout=5)
        alive = {row[0] for row in node.process_table()}
        assert not procs & alive
        assert other.poll() is None
        assert node.stop_group(p.pid) is False  # nothing left to stop
    finally:
        other.kill()
        other.wait()


def test_stop_nodes_reads_the_records_start_left(tmp_path):
    p = _tree(tmp_path)
    rec = node.NodeRecord("h3", p.pid, p.pid, False, "127.0.0.1:6390", ("cpu",), str(tmp_path / "h3.log"), "now")
    (tmp_path / "h3.json").write_text(rec.to_json())
    with pytest.raises(UserError, match=r"no node h9 was started from .* \(started there: h3\)"):
        node.stop_nodes(tmp_path, "h9")
    assert node.stop_nodes(tmp_path, grace_s=5) == ["h3"]
    p.wait(timeout=5)
    assert not (tmp_path / "h3.json").exists()
    assert node.stop_nodes(tmp_path) == []


def test_ray_s_node_table_as_bench_nodes():
    table = [{"NodeID": "b", "Alive": True, "NodeManagerAddress": "127.0.0.1",
              "Resources": {"CPU": 1.0, "bench-host:hB": 1.0, "bench-device:torch": 1.0}},
             {"NodeID": "a", "Alive": False, "NodeManagerAddress": "127.0.0.1",
              "Resources": {"bench-host:hA": 1.0, "bench-device:cpu": 1.0}},
             {"NodeID": "c", "Alive": True, "Resources": {"CPU": 8.0}}]
    nodes = node.nodes_of(table)
    assert [(n.host, n.alive) for n in nodes] == [("hA", False), ("hB", True)]
    assert nodes[1].devices == (DeviceSlot("torch", None, True),)
    assert node.offered_line(nodes) == "torch on hB"
    assert node.status_rows(nodes)[1]["devices"] == ["bench-device:torch"]


def test_a_gpu_device_is_named_by_its_gpu_s_uuid(monkeypatch):
    # No GPU here: the GPU's identity is given; what is tested is how a GPU device becomes its Ray slot.
    from bench.env import gpu
    monkeypatch.setattr(gpu, "gpu_identity", lambda cuda_index=0: gpu.GpuIdentity(
        "NVIDIA H200", "9.0", "GPU-5f2c1e7a-0b1d-4c3e-9a8f-1234567890ab"))
    slot = node.device_slot("trt")
    assert slot == DeviceSlot("trt", "GPU-5f2c1e7a-0b1d-4c3e-9a8f-1234567890ab", cpu_sharing=False)
    assert slot.resource == "bench-device:trt:GPU-5f2c1e7a-0b1d-4c3e-9a8f-1234567890ab"
    monkeypatch.setattr(gpu, "gpu_identity", lambda cuda_index=0: gpu.GpuIdentity("GPU", "8.6", None))
    assert node.device_slot("cuda").resource == "bench-device:cuda"
