"""The paper's ablation networks (bench/zoo/ablation.py): each builds, runs, exports to ONNX with parity, holds
the activation it is named for, and is selected by its groups but never by `all` or `study`."""
import pytest
import torch
from torch import nn

from bench.core.artifact import ExportRequest
from bench.core.errors import UserError
# `complexity` before `spec_complexity`: importing bench.zoo.spec_complexity first would leave the package
# attribute `bench.zoo.complexity` bound to the submodule, not the function, for every later test module.
from bench.zoo import ablation, complexity, create_model, list_models, resolve, spec_complexity

ACT = ["ablation_act_relu", "ablation_act_gelu", "ablation_act_se_relu", "ablation_act_silu",
       "ablation_act_dyshiftmax", "ablation_act_dyrelu_a", "ablation_act_dyrelu_b"]
BLOCK = ["ablation_block_plain", "ablation_block_se", "ablation_block_skip"]
# Every module class that can sit at an activation position: a network must hold only its own.
ACTIVATION_KINDS = tuple(ablation.ACTIVATION_CLASSES.values())


@pytest.fixture
def one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def _activation_positions(model: nn.Module) -> list[nn.Module]:
    """The module after the BN of every conv-BN-act of the main path (stem, 28 unit convs, head)."""
    return [m[2] for m in model.modules() if isinstance(m, ablation.ConvBNAct)]


def test_selectors():
    assert list_models("ablation") == ACT + BLOCK
    assert list_models("ablation_act") == ACT
    assert list_models("ablation_block") == BLOCK
    assert list_models("ablation_act_dy*") == ACT[4:]
    assert list_models("ablation_block_se,ablation_act_relu") == ["ablation_act_relu", "ablation_block_se"]
    assert list_models("30-layer CNN (DynamicReLU-B)") == ["ablation_act_dyrelu_b"]  # paper names resolve
    everything, study = list_models("all"), list_models("study")
    assert not any(n.startswith("ablation") for n in everything + study + list_models("*"))
    assert len(everything) == 23 and len(study) == 20
    with pytest.raises(UserError, match="no model matches 'ablation_x'.*selectors: all, study, ablation, "
                                         "ablation_act, ablation_block"):
        list_models("ablation_x")


@pytest.mark.parametrize("name", ACT + BLOCK)
def test_spec(name):
    spec = resolve(name)
    assert spec.family == ("ablation-activation" if name in ACT else "ablation-block")
    assert spec.paper_name.startswith("30-layer CNN (")
    assert spec.top1 is None and not spec.in_study and not spec.in_all and not spec.reparameterizable
    assert all(v is None for v in spec.paper_latency_ms.values())  # nothing in our reference data
    with pytest.raises(UserError, match="takes no architecture overrides"):
        create_model(name, widths=(1, 2, 3, 4))


def test_paper_names():
    assert [resolve(n).paper_name for n in ACT] == [
        "30-layer CNN (ReLU)", "30-layer CNN (GELU)", "30-layer CNN (SE-ReLU)", "30-layer CNN (SiLU)",
        "30-layer CNN (Dynamic Shift-Max)", "30-layer CNN (DynamicReLU-A)", "30-layer CNN (DynamicReLU-B)"]


@pytest.mark.parametrize("name", ACT + BLOCK)
def test_builds_and_runs(name, one_thread):
    model = create_model(name)
    assert not model.training and model.build_info.name == name
    assert len(_activation_positions(model)) == 30 == model.cfg.conv_layers  # the main path's conv layers
    with torch.no_grad():
        out = model(torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)))
    assert out.shape == (2, 1000) and torch.isfinite(out).all()
    assert not torch.allclose(out[0], out[1])  # the two images give two answers
    train = create_model(name, deploy=False)  # nothing to fuse: both forms are the same network
    with torch.no_grad():
        x = torch.randn(1, 3, 224, 224)
        assert torch.equal(train(x), model(x))


@pytest.mark.parametrize("name", ACT)
def test_activation_module_is_the_one_named(name):
    kind = ablation.ACTIVATION_CLASSES[name.removeprefix("ablation_act_")]
    positions = _activation_positions(create_model(name))
    assert len(positions) == 30 and all(type(m) is kind for m in positions)
    # No other activation kind anywhere at a position (SE's inner ReLU and the hyper-functions' ReLU excepted,
    # which live inside the named module).
    others = [m for m in positions if type(m) is not kind and isinstance(m, ACTIVATION_KINDS)]
    assert others == []


@pytest.mark.parametrize("name", BLOCK)
def test_block_variants_share_the_base(name):
    model = create_model(name)
    assert all(type(m) is nn.ReLU for m in _activation_positions(model))
    units = [m for m in model.modules() if isinstance(m, ablation.SeparableUnit)]
    assert len(units) == 14
    se = sum(not isinstance(u.se, nn.Identity) for u in units)
    skips = sum(u.has_skip for u in units)
    assert (se, skips) == {"ablation_block_plain": (0, 0), "ablation_block_se": (14, 0),
                           "ablation_block_skip": (0, 10)}[name]
    plain = create_model("ablation_act_relu")
    if name == "ablation_block_plain":  # the same network as the ReLU activation model
        assert [tuple(p.shape) for p in model.parameters()] == [tuple(p.shape) for p in plain.parameters()]


def test_skip_adds_the_input():
    unit = [m for m in create_model("ablation_block_skip").modules()
            if isinstance(m, ablation.SeparableUnit) and m.has_skip][0]
    x = torch.randn(1, unit.dw[0].in_channels, 8, 8)
    with torch.no_grad():
        assert torch.allclose(unit(x), unit.pw(unit.se(unit.dw(x))) + x)


# --- the activations themselves, against their papers' formulas -----------------------------------------

def test_dyrelu_is_relu_at_zero_residual():
    """With the hyper-function's last FC at zero, 2*sigmoid(0) - 1 = 0: a^1 = 1, a^2 = b = 0, i.e. ReLU."""
    for cls in (ablation.DyReLUA, ablation.DyReLUB):
        act = cls(16).eval()
        nn.init.zeros_(act.fc[2].weight)
        nn.init.zeros_(act.fc[2].bias)
        x = torch.randn(2, 16, 5, 5)
        with torch.no_grad():
            assert torch.equal(act(x), torch.relu(x))


def _dyrelu_reference(act, x):
    """The paper's formula written out element by element for one image."""
    theta = 2 * torch.sigmoid(act.fc(x.mean(dim=(2, 3), keepdim=True)).flatten(1)) - 1
    k, c = act.K, x.shape[1]
    theta = theta.view(2 * k, -1).expand(2 * k, c) if not act.per_channel else theta.view(2 * k, c)
    a = [1.0 * (j == 0) + 1.0 * theta[j] for j in range(k)]
    b = [0.5 * theta[k + j] for j in range(k)]
    return torch.stack([a[j].view(1, c, 1, 1) * x + b[j].view(1, c, 1, 1) for j in range(k)]).amax(0)


def test_dyrelu_matches_the_paper():
    torch.manual_seed(0)
    x = torch.randn(1, 12, 4, 4)
    a, b = ablation.DyReLUA(12).eval(), ablation.DyReLUB(12).eval()
    with torch.no_grad():
        for act in (a, b):
            assert torch.allclose(act(x), _dyrelu_reference(act, x), atol=1e-6)
        assert a.fc[2].out_channels == 4 and b.fc[2].out_channels == 4 * 12  # 2K shared vs 2K per channel
        # A's coefficients are shared: the same input in every channel gives the same output in every channel.
        same = torch.randn(1, 1, 4, 4).expand(1, 12, 4, 4).contiguous()
        out = a(same)
        assert torch.allclose(out, out[:, :1].expand_as(out))


def test_dynamic_shift_max_matches_micronet():
    torch.manual_seed(0)
    c, g = 8, 4
    act = ablation.DynamicShiftMax(c, groups=g).eval()
    x = torch.randn(1, c, 3, 3)
    with torch.no_grad():
        z = act.fc(x.mean(dim=(2, 3), keepdim=True)).flatten(1)
        y = (torch.clamp(z / 6 + 0.5, 0, 1) - 0.5) * 4  # hard-sigmoid, centred, times 2 * act_max
        a = y.view(4, c) + torch.tensor([1.0, 0.0, 0.0, 0.0]).view(4, 1)
        ref = torch.empty_like(x)
        for i in range(c):
            j = (i + c // g) % c  # the channel one group over
            z1 = a[0, i] * x[0, i] + a[1, i] * x[0, j]
            z2 = a[2, i] * x[0, i] + a[3, i] * x[0, j]
            ref[0, i] = torch.maximum(z1, z2)
        assert torch.allclose(act(x), ref, atol=1e-6)
        nn.init.zeros_(act.fc[2].weight)
        nn.init.zeros_(act.fc[2].bias)
        assert torch.equal(act(x), torch.relu(x))  # zero residual: max(x, 0)
    with pytest.raises(ValueError, match="divisible"):
        ablation.DynamicShiftMax(6, groups=4)


# --- counts ------------------------------------------------------------------------------------------------

def test_counts_include_the_dynamic_parts(tmp_path):
    counts = {n: spec_complexity(n, cache_dir=tmp_path) for n in ACT + BLOCK}
    base = counts["ablation_act_relu"]
    assert counts["ablation_block_plain"] == counts["ablation_block_skip"] == base  # skips add no weights
    assert counts["ablation_act_gelu"] == counts["ablation_act_silu"] == base
    # The hyper-functions' FCs, at every one of the 30 activation positions, counted exactly.
    model = create_model("ablation_act_dyrelu_b")
    positions = _activation_positions(model)
    extra_b = sum(m.fc[0].in_channels * m.fc[0].out_channels + m.fc[2].in_channels * m.fc[2].out_channels
                  for m in positions)
    assert counts["ablation_act_dyrelu_b"].macs - base.macs == extra_b > 0
    extra_a = sum(m.fc[0].in_channels * m.fc[0].out_channels + m.fc[2].in_channels * 4
                  for m in _activation_positions(create_model("ablation_act_dyrelu_a")))
    assert counts["ablation_act_dyrelu_a"].macs - base.macs == extra_a > 0
    assert counts["ablation_act_dyshiftmax"].macs > base.macs and counts["ablation_act_se_relu"].macs > base.macs
    # The meta-device count (spec_complexity) equals a real build's.
    assert complexity(model) == counts["ablation_act_dyrelu_b"]
    # Base network: 30 convs (~200 M MACs at 224); recorded in docs/ablations.md.
    assert 190e6 < base.macs < 210e6 and 2.5e6 < base.params < 2.8e6


# --- ONNX --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.slow
@pytest.mark.parametrize("name", ACT + BLOCK)
def test_onnx_export_with_parity(name, cache_dir, one_thread):
    from exporters.onnx import export

    artifact, _ = export(ExportRequest(name), cache_dir)
    meta = artifact.metadata
    assert meta["parity"]["passed"] and meta["parity"]["rel_error"] <= 1e-4
    assert meta["batchnorm_left"] == 0 and meta["ops"]["Conv"] >= 30
    expected_op = {"ablation_act_relu": "Relu", "ablation_act_gelu": "Erf", "ablation_act_se_relu": "Sigmoid",
                   "ablation_act_silu": "Sigmoid", "ablation_act_dyshiftmax": "HardSigmoid",
                   "ablation_act_dyrelu_a": "Max", "ablation_act_dyrelu_b": "Max",
                   "ablation_block_skip": "Add", "ablation_block_se": "Sigmoid"}.get(name)
    if expected_op:
        assert meta["ops"].get(expected_op, 0) >= 10, meta["ops"]


def test_bench_models_lists_them(capsys, tmp_path, monkeypatch):
    """`bench models ablation --json` through the CLI's entry point: the ten, with their counts (that `all`
    has none of them is test_selectors')."""
    import json

    from bench.cli import main

    monkeypatch.chdir(tmp_path)  # no ./bench.toml
    assert main(["models", "ablation", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ACT + BLOCK
    dyrelu_b = next(r for r in rows if r["name"] == "ablation_act_dyrelu_b")
    assert dyrelu_b["family"] == "ablation-activation" and dyrelu_b["top1"] is None and not dyrelu_b["in_study"]
    assert dyrelu_b["macs_m"] > next(r for r in rows if r["name"] == "ablation_act_relu")["macs_m"]
