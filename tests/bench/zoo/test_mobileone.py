"""MobileOne and RepVGG: deploy form equals train form, the authors' state_dict layout, weights loading."""
import pytest
import torch
from torch import nn

from bench.core.errors import UserError
from bench.zoo import complexity, create_model, list_models, reparameterize, resolve
from bench.zoo.surgery import count_modules

REPARAM_MODELS = [n for n in list_models("all") if resolve(n).reparameterizable]


def randomize_bn(model: nn.Module, seed: int = 0, size: int = 64) -> nn.Module:
    """Random BN affine parameters, then running statistics re-estimated on random data, so that the
    fused and unfused forms are compared where activations are of order one (at init they explode)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = torch.rand(m.num_features, generator=g) * 1.5 + 0.25
            m.bias.data = torch.randn(m.num_features, generator=g) * 0.2
            m.running_mean.normal_(0, 1, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the re-estimation batches
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, size, size, generator=g))
    return model.eval()


def test_reparam_models_cover_every_mobileone_and_repvgg():
    assert {"mobileone_s0", "mobileone_s4", "mobileone_mu0", "mobileone_mu2", "repvgg_a0", "repvgg_b2"} <= set(
        REPARAM_MODELS)
    assert len(REPARAM_MODELS) == 14


@pytest.mark.parametrize("name", REPARAM_MODELS)
def test_deploy_equals_train_form(name):
    torch.manual_seed(0)
    train = randomize_bn(create_model(name, deploy=False))
    deploy = reparameterize(train)
    assert count_modules(deploy, nn.BatchNorm2d) == 0
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref, out = train(x), deploy(x)
    scale = ref.abs().max().item()
    assert 1e-2 < scale < 1e4, f"activations not of order one (scale {scale}); the test would hide errors"
    assert (out - ref).abs().max().item() <= 1e-4 * scale


def test_a_wrong_fusion_is_caught():
    """The equivalence check can fail: dropping one branch's contribution is detected."""
    torch.manual_seed(0)
    train = randomize_bn(create_model("mobileone_s0", deploy=False))
    broken = reparameterize(train)
    broken.stage1[1].reparam_conv.bias.data += 0.05
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref, out = train(x), broken(x)
    assert (out - ref).abs().max().item() > 1e-4 * ref.abs().max().item()


def test_mobileone_s0_state_dict_has_authors_layout():
    keys = set(create_model("mobileone_s0", deploy=False).state_dict())
    for key in ("stage0.rbr_conv.0.conv.weight", "stage0.rbr_conv.0.bn.running_var", "stage0.rbr_scale.conv.weight",
                "stage1.0.rbr_conv.3.conv.weight", "stage1.1.rbr_skip.weight", "stage2.15.rbr_conv.0.bn.bias",
                "stage4.1.rbr_conv.0.conv.weight", "linear.weight", "linear.bias"):
        assert key in keys, key
    # No skip in the stem (3 -> 48 channels) nor on a stride-2 block; no scale branch on a 1x1 block.
    assert not any(k.startswith("stage0.rbr_skip") or k.startswith("stage1.0.rbr_skip") for k in keys)
    assert not any(k.startswith("stage1.1.rbr_scale") for k in keys)
    assert "stage0.rbr_conv.1.conv.weight" not in keys  # the stem has k=1 in the release


def test_mobileone_s4_se_placement():
    keys = set(create_model("mobileone_s4", deploy=False).state_dict())
    se_blocks = sorted({k.rsplit(".se.", 1)[0] for k in keys if ".se." in k})
    # Last 5 of stage 3's 10 (depthwise, pointwise) pairs = modules 10..19, and stage 4's one pair.
    assert se_blocks == sorted([f"stage3.{i}" for i in range(10, 20)] + ["stage4.0", "stage4.1"])
    assert "stage3.19.se.reduce.weight" in keys and "stage3.19.se.expand.bias" in keys


def test_train_state_dict_round_trip_strict(tmp_path):
    model = create_model("mobileone_s4", deploy=False)
    path = tmp_path / "s4_unfused.pth"
    torch.save(model.state_dict(), path)
    reloaded = create_model("mobileone_s4", deploy=False, weights=str(path))
    for k, v in model.state_dict().items():
        assert torch.equal(v, reloaded.state_dict()[k])
    fused = create_model("mobileone_s4", deploy=True, weights=str(path))
    keys = list(fused.state_dict())
    assert any("reparam_conv" in k for k in keys) and not any("rbr_" in k for k in keys)


def test_fused_checkpoint_loads_into_deploy_form(tmp_path):
    fused = create_model("mobileone_s0", deploy=True)
    path = tmp_path / "s0_fused.pth"
    torch.save({"state_dict": fused.state_dict()}, path)  # wrapped, as some releases are
    loaded = create_model("mobileone_s0", weights=str(path))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(fused(x), loaded(x))
    with pytest.raises(UserError, match="train form needs unfused"):
        create_model("mobileone_s0", deploy=False, weights=str(path))


def test_mismatched_weights_name_first_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "s1.pth"
    torch.save(create_model("mobileone_s1", deploy=False).state_dict(), path)
    with pytest.raises(UserError) as err:
        create_model("mobileone_s0", weights=str(path))
    msg = str(err.value)
    assert "missing keys (first: stage0.rbr_" not in msg or "unexpected" in msg
    assert "missing" in msg and "unexpected" in msg
    with pytest.raises(UserError, match="wrong shape"):
        state = create_model("mobileone_s0", deploy=False).state_dict()
        state["linear.weight"] = torch.zeros(10, 2)
        torch.save(state, path)
        create_model("mobileone_s0", weights=str(path))
    with pytest.raises(UserError, match="not found"):
        create_model("mobileone_s0", weights=str(tmp_path / "nope.pth"))


def test_micro_variant_structure_follows_table4():
    mu0 = create_model("mobileone_mu0", deploy=False)
    assert len(mu0.stage0.rbr_conv) == 3  # the stem has k=3 in Table 4
    assert mu0.stage5[0].stride == 2 and mu0.stage4[0].stride == 1
    assert mu0.linear.in_features == 384  # 512 * 0.75
    assert complexity(create_model("mobileone_mu1")).params < complexity(create_model("mobileone_mu2")).params


def test_mobileone_overrides():
    m = create_model("mobileone_s0", deploy=False, k=2, widths=(32, 64, 128, 256), blocks=(1, 2, 2, 1),
                     se_blocks=(0, 0, 1, 1))
    assert len(m.stage1[0].rbr_conv) == 2 and m.linear.in_features == 256
    assert len(m.stage3) == 4 and hasattr(m.stage3[3].se, "reduce")
    with pytest.raises(UserError, match="unknown MobileOne override"):
        create_model("mobileone_s0", depth=3)
    with pytest.raises(UserError, match="takes no architecture overrides"):
        create_model("repvgg_a0", k=2)
