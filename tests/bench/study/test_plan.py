import sys

import pytest

from bench.config import SuiteConfig
from bench.core.errors import UserError
from bench.study.plan import (STAGE_NAMES, parse_stages, plan_stages, shared_x86_models, sweep_configs,
                              sweep_devices)


def by_name(stages):
    return {s.name: s for s in stages}


def test_shared_models_are_the_19_with_an_x86_latency():
    shared = shared_x86_models()
    assert len(shared) == 19
    assert "mixnet_s" not in shared and "mobileone_s0" in shared


def test_stages_of_a_cpu_torch_study_on_two_cores():
    s = by_name(plan_stages(SuiteConfig(devices=("cpu", "torch")), cores=2))
    assert list(s) == list(STAGE_NAMES)
    t1 = s["table1"].config
    assert t1.devices == ("cpu", "torch") and t1.threads is None and t1.form == "deploy" and t1.interleave
    assert len(t1.models.split(",")) == 20
    assert s["reparam"].config.form == "train"
    assert len(s["ablation"].config.models.split(",")) == 10 and s["ablation"].config.form == "deploy"
    assert set(s["reparam"].config.models.split(",")) == {
        "mobileone_s0", "mobileone_s1", "mobileone_s2", "mobileone_s3", "mobileone_s4", "repvgg_a0", "repvgg_a1",
        "repvgg_a2", "repvgg_b0", "repvgg_b1", "repvgg_b2"}
    one = s["sweep_1t"].config
    assert one.threads == 1 and one.devices == ("cpu", "torch", "torchscript", "openvino") and len(one.models.split(",")) == 19
    assert s["sweep_1t_train"].config.devices == ("cpu", "torch") and s["sweep_1t_train"].config.form == "train"
    # torch and cpu at all cores are Table 1's cells: only TorchScript and OpenVINO need their own all-cores stage
    assert s["sweep_extra"].config.devices == ("torchscript", "openvino")
    assert s["sweep_extra_train"].config is None and "Table 1" in s["sweep_extra_train"].skipped


def test_a_cpu_only_study_still_sweeps_pytorch():
    s = by_name(plan_stages(SuiteConfig(devices=("cpu",)), cores=2))
    assert s["sweep_extra"].config.devices == ("torch", "torchscript", "openvino")
    assert s["sweep_extra_train"].config.devices == ("torch",)


def test_one_core_reuses_table1_for_the_one_thread_sweep():
    s = by_name(plan_stages(SuiteConfig(devices=("cpu",)), cores=1))
    assert s["sweep_1t"].config is None and "one core" in s["sweep_1t"].skipped


def test_only_and_models_restrict_the_plan():
    s = by_name(plan_stages(SuiteConfig(devices=("cpu",)), cores=2, only=("table1",),
                            models="mobileone_s0,mobilenetv2_100"))
    assert s["table1"].config.models == "mobilenetv2_100,mobileone_s0"
    assert s["reparam"].config is None and "--stages" in s["reparam"].skipped
    s = by_name(plan_stages(SuiteConfig(devices=("cpu",)), cores=2, models="mobilenetv2_100"))
    assert s["reparam"].config is None and "--models" in s["reparam"].skipped


def test_sweep_configurations():
    labels = [c.label for c in sweep_configs(("cpu", "torch"), 2)]
    # cpu and torch: 2 threads x 2 forms each; torchscript and openvino: 2 threads x deploy
    assert len(labels) == 12
    assert "ONNX Runtime, 1 thread, deploy" in labels and "PyTorch eager, 2 threads, train" in labels
    assert "OpenVINO, 1 thread, deploy" in labels and "OpenVINO, 2 threads, deploy" in labels
    assert not any(lbl.startswith(("TorchScript", "OpenVINO")) and lbl.endswith("train") for lbl in labels)
    assert sweep_devices(("coreml",)) == ()


def test_a_sweep_runtime_missing_here_is_left_out(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # as on a host without the openvino extra
    assert sweep_devices(("cpu",)) == ("cpu", "torch", "torchscript")
    labels = [c.label for c in sweep_configs(("cpu",), 2)]
    assert len(labels) == 10 and not any(lbl.startswith("OpenVINO") for lbl in labels)
    assert sweep_devices(("cpu", "openvino")) == ("cpu", "torch", "torchscript", "openvino")  # named: kept


def test_stage_names_are_checked():
    assert parse_stages("table1, reparam") == ("table1", "reparam")
    assert parse_stages(None) is None
    with pytest.raises(UserError, match="unknown stage bogus"):
        parse_stages("table1,bogus")
