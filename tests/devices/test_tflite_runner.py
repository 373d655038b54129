"""The local `tflite` runner on a real exported model: LiteRT interpreter, XNNPACK, explicit threads."""
from __future__ import annotations

import numpy as np
import pytest

from bench.core.errors import UserError
from bench.core.protocol import get_protocol
from bench.measure import measure
from bench.core.runner import RunnerOptions
from devices.tflite import TFLiteRunner


@pytest.mark.slow
@pytest.mark.tflite
def test_runner_end_to_end_on_an_exported_model(exported):
    artifact, _ = exported("mobilenetv3_small_100")
    with TFLiteRunner(RunnerOptions(threads=1)) as runner:
        runner.load(artifact)
        assert runner.infer() is None
        logits = runner.output()
        assert logits.shape == (1, 1000) and logits.dtype == np.float32 and np.isfinite(logits).all()
        info = runner.info()
        assert info["delegate"] == "XNNPACK" and info["whole_graph_delegated"] and info["threads"] == 1
        assert info["delegate_partitions"] == 1 and info["ops_not_delegated"] == {}
        assert info["input"]["dtype"] == "int8" and info["input"]["scale"] == pytest.approx(
            artifact.metadata["input"]["scale"])
        m = measure(runner.infer, get_protocol("quick"))
        assert len(m.samples_ms) == 3 and all(x > 0 for r in m.samples_ms for x in r)
        runner.reload()  # modelbench reloads each round: a fresh interpreter, same input, same answer
        runner.infer()
        assert np.array_equal(runner.output(), logits)
    with TFLiteRunner(RunnerOptions(threads=1, extra={"xnnpack": False})) as builtin:
        builtin.load(artifact.path)
        builtin.infer()
        assert builtin.info()["delegate"].startswith("none")
        # Same int8 arithmetic in both kernels libraries, up to rounding in a few requantizations.
        assert np.abs(builtin.output() - logits).max() <= 8 * artifact.metadata["output"]["scale"]


def test_runner_refuses_bad_threads_and_missing_models(tmp_path):
    with pytest.raises(UserError, match="threads >= 1"):
        TFLiteRunner(RunnerOptions(threads=0))
    pytest.importorskip("ai_edge_litert", reason="needs the tflite extra")
    with pytest.raises(UserError, match="not found; export it first"):
        TFLiteRunner(RunnerOptions(threads=1)).load(tmp_path / "missing.tflite")


def test_undelegated_ops_are_found_from_the_node_list():
    from devices.tflite import undelegated_ops

    # conv0 -> pad1 -> conv2 -> sub3 -> fc4 -> output 9. XNNPACK took conv0, pad1 and conv2 (DELEGATE 5) and
    # fc4 (DELEGATE 7); sub3 runs on its own between the two partitions.
    ops = [
        {"index": 0, "op_name": "CONV_2D", "inputs": [0, 10], "outputs": [1]},
        {"index": 1, "op_name": "PAD", "inputs": [1, 11], "outputs": [2]},
        {"index": 2, "op_name": "CONV_2D", "inputs": [2, 12], "outputs": [3]},
        {"index": 3, "op_name": "SUB", "inputs": [3, 13], "outputs": [4]},
        {"index": 4, "op_name": "FULLY_CONNECTED", "inputs": [4, 14], "outputs": [9]},
        {"index": 5, "op_name": "DELEGATE", "inputs": [0, 10, 11, 12], "outputs": [3]},
        {"index": 7, "op_name": "DELEGATE", "inputs": [4, 14], "outputs": [9]},
    ]
    assert undelegated_ops(ops, {9}) == {"SUB": 1}
    whole = ops[:5] + [{"index": 5, "op_name": "DELEGATE", "inputs": [0, 10, 11, 12, 13, 14], "outputs": [9]}]
    assert undelegated_ops(whole, {9}) == {}
    assert undelegated_ops(ops[:5], {9}) == {"FULLY_CONNECTED": 1, "SUB": 1, "CONV_2D": 2, "PAD": 1}
