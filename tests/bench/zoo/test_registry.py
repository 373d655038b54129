"""The registry: counts against the reference tables, forward in both forms, names and aliases."""
import pytest
import torch

from bench.core.errors import UserError
from bench.zoo import complexity, create_model, list_models, model_specs, resolve, spec_complexity

ALL = list_models("all")


@pytest.mark.parametrize("name", [n for n in ALL if resolve(n).reference_params_m])
def test_counts_match_reference(name, tmp_path):
    spec = resolve(name)
    c = spec_complexity(name, cache_dir=tmp_path)
    params_tol = 0.005 if spec.family == "mobileone" else 0.01  # the tolerances
    assert abs(c.params_m / spec.reference_params_m - 1) <= params_tol, (c.params_m, spec.reference_params_m)
    assert abs(c.macs_m / spec.reference_macs_m - 1) <= 0.01, (c.macs_m, spec.reference_macs_m)


def test_every_study_model_has_reference_counts():
    assert sum(1 for n in list_models("study") if resolve(n).reference_params_m) == 20


def test_complexity_cache_is_used(tmp_path, monkeypatch):
    first = spec_complexity("repvgg_b2", cache_dir=tmp_path)
    import sys
    monkeypatch.setattr(sys.modules["bench.zoo.spec_complexity"], "complexity", lambda *a, **k: pytest.fail("recounted despite the cache"))
    assert spec_complexity("repvgg_b2", cache_dir=tmp_path) == first


def test_meta_count_equals_real_count():
    real = complexity(create_model("mobileone_s1"))
    assert spec_complexity("mobileone_s1").params == real.params and spec_complexity("mobileone_s1").macs == real.macs


@pytest.fixture
def one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)  # faster than 2 contended threads on a shared machine
    yield
    torch.set_num_threads(saved)


@pytest.mark.parametrize("name", ALL)
def test_forward_224_both_forms(name, one_thread):
    x = torch.randn(1, 3, 224, 224)
    for deploy in (True, False):
        model = create_model(name, deploy=deploy)
        assert not model.training
        with torch.no_grad():
            out = model(x)
        assert out.shape == (1, 1000) and torch.isfinite(out).all()
        assert model.build_info.deploy is deploy


def test_aliases_and_patterns():
    assert resolve("MobileOne-S0").name == "mobileone_s0"
    assert resolve("mobilenetv2-x1.4").name == "mobilenetv2_140"
    assert list_models("RepVGG-A0,mobileone_s0") == [n for n in ALL if n in ("repvgg_a0", "mobileone_s0")]
    assert list_models("mobileone_s*") == [n for n in ALL if n.startswith("mobileone_s")]
    assert len(list_models("all")) == 23 and len(list_models("study")) == 20
    with pytest.raises(UserError, match="known models: "):
        list_models("vit_*")


def test_paper_data_joined_onto_specs():
    s0 = resolve("mobileone_s0")
    assert s0.top1 == 71.4 and s0.paper_latency_ms["cpu_x86_ms"] == 10.55
    assert resolve("mixnet_s").paper_latency_ms["iphone12_ane_ms"] == 1.13  # from Table 3
    assert resolve("shufflenetv2_x1_0").paper_latency_ms["pixel6_tpu_ms"] is None  # "-" in the paper
    # Rows come in the paper's Table 1 order.
    assert list(model_specs())[:3] == ["repvgg_b2", "repvgg_b1", "repvgg_a2"]


def test_activation_choice_is_recorded():
    relu = create_model("mobilenetv3_small_100")
    orig = create_model("mobilenetv3_small_100", activation="original")
    assert relu.build_info.activation == "relu" and relu.build_info.se_gate == "hard-sigmoid kept"
    assert orig.build_info.activation == "original"
    assert not any(isinstance(m, torch.nn.Hardswish) for m in relu.modules())
    assert any(isinstance(m, torch.nn.Hardswish) for m in orig.modules())
    assert create_model("mobileone_s0").build_info.activation == "original"  # nothing to swap
    with pytest.raises(UserError, match="use one of relu, original"):
        create_model("mobilenetv3_small_100", activation="gelu")
