"""Resource names, the choice of node, and what happens to a lost node's cell: pure, no Ray."""
from __future__ import annotations

import pytest

from bench.cluster.resources import (
    DeviceSlot,
    Fail,
    NodeInfo,
    Retry,
    after_loss,
    choose_node,
    device_resource,
    host_resource,
    missing_devices,
    node_resources,
    offered,
    parse_node,
    placement,
)

CPU = DeviceSlot("cpu", None, cpu_sharing=True)
TORCH = DeviceSlot("torch", None, cpu_sharing=True)
TRT = DeviceSlot("trt", "GPU-8a1b", cpu_sharing=False)


def node(nid: str, host: str, *slots: DeviceSlot, alive: bool = True) -> NodeInfo:
    return NodeInfo(nid, host, slots, alive)


def test_names():
    assert device_resource("cpu") == "bench-device:cpu"
    assert device_resource("trt", "GPU-8a1b") == "bench-device:trt:GPU-8a1b"
    assert host_resource("lab-3") == "bench-host:lab-3"
    assert node_resources("lab-3", (CPU, TRT)) == {"bench-host:lab-3": 1.0, "bench-device:cpu": 1.0,
                                                   "bench-device:trt:GPU-8a1b": 1.0}


@pytest.mark.parametrize("label", ["", "a b", "x:y", "h/1"])
def test_a_label_that_would_break_a_resource_name_is_refused(label):
    with pytest.raises(ValueError, match="letters, digits"):
        node_resources(label, (CPU,))


def test_a_node_is_read_back_from_ray_s_resource_table():
    res = {"CPU": 1.0, "memory": 1e9, **node_resources("h1", (CPU, TRT))}
    info = parse_node("n1", res, True, "10.0.0.5", cpu_sharing=frozenset({"cpu"}))
    assert info.host == "h1" and info.address == "10.0.0.5"
    assert {s.device: (s.ident, s.cpu_sharing) for s in info.devices} == {"cpu": (None, True),
                                                                          "trt": ("GPU-8a1b", False)}
    assert parse_node("n2", {"CPU": 4.0}, True) is None  # a Ray node that no `bench node start` made


def test_a_cpu_device_takes_the_host_slot_and_a_gpu_does_not():
    n = node("n1", "h1", CPU, TRT)
    assert dict(placement(n, "cpu").resources) == {"bench-device:cpu": 1.0, "bench-host:h1": 1.0}
    assert dict(placement(n, "trt").resources) == {"bench-device:trt:GPU-8a1b": 1.0}
    with pytest.raises(ValueError):
        placement(n, "torch")


def test_cells_spread_over_the_live_nodes_offering_their_device():
    a, b, c = node("na", "ha", CPU), node("nb", "hb", CPU, TORCH), node("nc", "hc", CPU, alive=False)
    assert choose_node("cpu", [a, b, c], {}) is a  # a tie goes to the host label's order
    assert choose_node("cpu", [a, b, c], {"na": 1}) is b
    assert choose_node("torch", [a, b, c], {"nb": 5}) is b
    assert choose_node("cpu", [a, b, c], {}, exclude=frozenset({"na", "nb"})) is None  # nc is dead
    assert choose_node("trt", [a, b], {}) is None


def test_offers_and_the_line_for_a_device_no_node_has():
    nodes = [node("na", "ha", CPU), node("nb", "hb", CPU, TORCH), node("nc", "hc", TRT, alive=False)]
    assert offered(nodes) == {"cpu": ["ha", "hb"], "torch": ["hb"]}
    assert missing_devices(("cpu", "torch"), nodes) is None
    line = missing_devices(("cpu", "trt"), nodes)
    assert "offers device trt" in line and "cpu (ha, hb), torch (hb)" in line and "\n" not in line
    assert "no bench node has joined" in missing_devices(("cpu",), [])


def test_a_lost_node_s_cell_is_retried_once_elsewhere_else_failed_with_the_reason():
    a, b = node("na", "ha", CPU), node("nb", "hb", CPU)
    decision = after_loss("cpu", 1, a, "NodeDiedError", [a, b], frozenset({"na"}), {})
    assert decision == Retry(b)
    again = after_loss("cpu", 2, b, "Ray declared it dead", [a, b], frozenset({"na", "nb"}), {})
    assert isinstance(again, Fail) and "node hb was lost (Ray declared it dead)" in again.reason
    assert "retried once" in again.reason
    alone = after_loss("cpu", 1, a, "NodeDiedError", [a], frozenset({"na"}), {})
    assert alone == Fail("node ha was lost (NodeDiedError) and no other node offers cpu")
    dead_b = node("nb", "hb", CPU, alive=False)
    assert isinstance(after_loss("cpu", 1, a, "x", [a, dead_b], frozenset({"na"}), {}), Fail)
