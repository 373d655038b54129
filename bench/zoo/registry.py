"""The model registry: name -> ModelSpec, paper names accepted as aliases, wildcard listing, create_model."""
from __future__ import annotations

import fnmatch
import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import torch
from torch import nn

from bench import reference
from bench.core.device import PAPER_PLATFORMS
from bench.core.errors import UserError
from bench.zoo import ablation, mobileone, repvgg, user
from bench.zoo.surgery import reparameterize

ACTIVATIONS = ("relu", "original")
# The SE gate's hard-sigmoid is kept in both modes: it is a gate bounded to [0, 1], not a hidden activation,
# and ReLU in its place would leave the gate unbounded. The paper only says H-swish was replaced by ReLU.
SE_GATE_NOTE = "hard-sigmoid kept"

Builder = Callable[[bool, str, dict], nn.Module]  # (inference_mode, activation, overrides) -> train or fused form


@dataclass(frozen=True)
class ModelSpec:
    name: str
    paper_name: str
    family: str
    builder: Builder = field(repr=False, compare=False)
    reparameterizable: bool
    activation_swap: bool  # has H-swish, which the timing form replaces with ReLU
    reference_params_m: float | None
    reference_macs_m: float | None
    reference_source: str
    top1: float | None
    paper_latency_ms: Mapping[str, float | None]
    input_size: tuple[int, int, int, int] = (1, 3, 224, 224)
    in_study: bool = True  # one of the 20 models of the paper's latency study
    in_all: bool = True  # selected by `all`: Table 1's models and the micro variants, not the ablations
    groups: tuple[str, ...] = ()  # named selectors that pick it besides its name (`ablation`, `ablation_act`)
    origin: str = "zoo"  # or where a user model was declared (config file, entry point, model file)
    onnx_path: str | None = None  # a model that exists only as an ONNX file
    weights: str | None = None  # the weights its declaration names (a suite's --weights wins)
    deploy_fn: Callable | None = field(default=None, repr=False, compare=False)  # train -> inference form
    source_digest: str = ""  # what the model's own code/files hash to (user models; the zoo's is zoo_code_hash)

    @property
    def is_user(self) -> bool:
        return self.origin != "zoo"


@dataclass(frozen=True)
class BuildInfo:
    """What a built model is, recorded with every artifact and result made from it."""

    name: str
    deploy: bool
    activation: str
    se_gate: str
    overrides: tuple[tuple[str, object], ...]
    weights: str | None

    def as_dict(self) -> dict:
        return {"name": self.name, "deploy": self.deploy, "activation": self.activation,
                "se_gate": self.se_gate, "overrides": dict(self.overrides), "weights": self.weights}


def _no_overrides(name: str, overrides: dict) -> None:
    if overrides:
        raise UserError(f"model {name} takes no architecture overrides (got {sorted(overrides)}); "
                        "only MobileOne models accept widths/blocks/k/se_blocks")


def _mobileone_builder(config_fn: Callable[[str], mobileone.MobileOneConfig], variant: str) -> Builder:
    def build(inference_mode: bool, activation: str, overrides: dict) -> nn.Module:
        try:
            cfg = mobileone.with_overrides(config_fn(variant), overrides) if overrides else config_fn(variant)
        except (ValueError, TypeError) as e:
            raise UserError(str(e)) from None
        return mobileone.MobileOne(cfg, inference_mode=inference_mode)
    return build


def _repvgg_builder(variant: str) -> Builder:
    def build(inference_mode: bool, activation: str, overrides: dict) -> nn.Module:
        _no_overrides(f"repvgg_{variant}", overrides)
        return repvgg.RepVGG(repvgg.REPVGG_VARIANTS[variant], inference_mode=inference_mode)
    return build


def _baseline_builder(module: str, name: str) -> Builder:
    def build(inference_mode: bool, activation: str, overrides: dict) -> nn.Module:
        _no_overrides(name, overrides)
        import importlib
        return importlib.import_module(f"bench.zoo.{module}").build_model(name, activation=activation)
    return build


# (name, paper name, family, module for baselines) of the 15 baselines, in no particular order.
_BASELINES = [
    ("mobilenetv1_100", "MobileNetV1", "mobilenetv1", "mobilenets"),
    ("mobilenetv2_100", "MobileNetV2-x1.0", "mobilenetv2", "mobilenets"),
    ("mobilenetv2_140", "MobileNetV2-x1.4", "mobilenetv2", "mobilenets"),
    ("mobilenetv3_large_100", "MobileNetV3-L", "mobilenetv3", "mobilenets"),
    ("mobilenetv3_small_100", "MobileNetV3-S", "mobilenetv3", "mobilenets"),
    ("efficientnet_b0", "EfficientNet-B0", "efficientnet", "mobilenets"),
    ("mnasnet_a1", "MNASNet-A1", "mnasnet", "mobilenets"),
    ("mixnet_s", "MixNet-S", "mixnet", "mobilenets"),
    ("shufflenetv2_x1_0", "ShuffleNetV2-x1.0", "shufflenetv2", "shufflenet"),
]


def _ablation_builder(name: str) -> Builder:
    def build(inference_mode: bool, activation: str, overrides: dict) -> nn.Module:
        _no_overrides(name, overrides)
        return ablation.build_model(name)
    return build


# family -> the selector naming that family alone (`ablation` names them all).
ABLATION_GROUPS = {"ablation-activation": "ablation_act", "ablation-block": "ablation_block"}


def _ablation_specs() -> list[ModelSpec]:
    """The paper's Section 3 networks (bench/zoo/ablation.py): not in Table 1, so neither in `all` nor
    `study`; no published counts, top-1 or latencies in our reference data."""
    return [ModelSpec(
        name=m.name, paper_name=m.paper_name, family=m.family, builder=_ablation_builder(m.name),
        reparameterizable=False, activation_swap=False, reference_params_m=None, reference_macs_m=None,
        reference_source="none published (our definition: docs/ablations.md)", top1=None,
        paper_latency_ms=_paper_latencies(""), in_study=False, in_all=False,
        groups=("ablation", ABLATION_GROUPS[m.family])) for m in ablation.ABLATION_MODELS]


def _paper_latencies(paper_name: str) -> dict[str, float | None]:
    row = reference.paper_table1().get(paper_name, {})
    return {p: row.get(p) for p in PAPER_PLATFORMS}


def _build_registry() -> dict[str, ModelSpec]:
    table1 = reference.paper_table1()
    specs: list[ModelSpec] = []
    for variant, (params_m, macs_m, top1) in reference.mobileone_counts().items():
        v = variant.lower()
        paper = f"MobileOne-{variant}"
        specs.append(ModelSpec(
            name=f"mobileone_{v}", paper_name=paper, family="mobileone",
            builder=_mobileone_builder(mobileone.s_config, v), reparameterizable=True, activation_swap=False,
            reference_params_m=params_m, reference_macs_m=macs_m, reference_source="authors' release (deploy)",
            top1=top1, paper_latency_ms=_paper_latencies(paper)))
    micro_top1 = reference.micro_top1()
    for v, variant in mobileone.MICRO_VARIANTS.items():
        specs.append(ModelSpec(
            name=f"mobileone_{v}", paper_name=f"MobileOne-{v}", family="mobileone-micro",
            builder=_mobileone_builder(mobileone.micro_config, v), reparameterizable=True,
            activation_swap=False, reference_params_m=None, reference_macs_m=None,
            reference_source="none published", top1=micro_top1.get(v, {}).get(variant.k),
            paper_latency_ms=_paper_latencies(""), in_study=False))
    counts = reference.baseline_counts()
    for v in repvgg.REPVGG_VARIANTS:
        paper = f"RepVGG-{v.upper()}"
        params_m, macs_m = counts[paper]
        specs.append(ModelSpec(
            name=f"repvgg_{v}", paper_name=paper, family="repvgg", builder=_repvgg_builder(v),
            reparameterizable=True, activation_swap=False, reference_params_m=params_m,
            reference_macs_m=macs_m, reference_source=f"timm repvgg_{v} (deploy)",
            top1=table1[paper]["top1"], paper_latency_ms=_paper_latencies(paper)))
    for name, paper, family, module in _BASELINES:
        params_m, macs_m = counts[paper]
        specs.append(ModelSpec(
            name=name, paper_name=paper, family=family, builder=_baseline_builder(module, name),
            reparameterizable=False, activation_swap=family == "mobilenetv3", reference_params_m=params_m,
            reference_macs_m=macs_m,
            reference_source=next(r["pytorch_ref"] for r in reference.read_csv("baselines.csv")
                                  if r["model"] == paper),
            top1=table1[paper]["top1"], paper_latency_ms=_paper_latencies(paper)))
    order = paper_order()
    specs.sort(key=lambda s: (order.get(s.paper_name, len(order)), s.name))
    specs.extend(_ablation_specs())  # after the paper's models, in the paper's Section 3 order
    return {s.name: s for s in specs}


def paper_order() -> dict[str, int]:
    """Paper name -> row index in the paper's Table 1 (then Table 3's additions)."""
    return {name: i for i, name in enumerate(reference.paper_table1())}


@functools.cache
def _zoo_specs() -> dict[str, ModelSpec]:
    return _build_registry()


_USER: dict[str, ModelSpec] = {}  # user models registered in this process (config, --model-file, results)


@functools.cache
def _entry_point_specs() -> dict[str, ModelSpec]:
    return {m.name: user_spec(m) for m in user.entry_point_models()}


def model_specs() -> dict[str, ModelSpec]:
    """Every model this process knows: the zoo, installed entry points, and user models registered."""
    specs = dict(_zoo_specs())
    for name, spec in {**_entry_point_specs(), **_USER}.items():
        _refuse_clash(specs, spec)
        specs[name] = spec
    return specs


def _refuse_clash(specs: dict[str, ModelSpec], spec: ModelSpec) -> None:
    table = {_normalize(s.name): s for s in specs.values()} | {_normalize(s.paper_name): s for s in specs.values()}
    other = table.get(_normalize(spec.name)) or table.get(_normalize(spec.paper_name))
    if other is not None and other.name != spec.name or (spec.name in specs and specs[spec.name].origin != spec.origin
                                                         and specs[spec.name] is not spec):
        other = other or specs[spec.name]
        raise UserError(f"model name {spec.name!r} ({spec.origin}) clashes with {other.name!r} ({other.origin}); "
                        "rename one of them")


def user_spec(m: user.UserModel) -> ModelSpec:
    return ModelSpec(
        name=m.name, paper_name=m.label or m.name, family="user", builder=user.builder(m) if m.factory else None,
        reparameterizable=bool(m.deploy), activation_swap=False, reference_params_m=None, reference_macs_m=None,
        reference_source=m.origin, top1=m.top1, paper_latency_ms={}, input_size=(1, *m.input_size),
        in_study=False, origin=m.origin, onnx_path=m.onnx, weights=m.weights, deploy_fn=user.deployer(m),
        source_digest=user.source_digest(m))


def register_user_models(models) -> None:
    """Add user models to the registry (refusing a name another model already has, naming both origins)."""
    for m in models:
        if m.name in _USER and _USER[m.name].origin == m.origin:
            continue
        spec = user_spec(m)
        _refuse_clash({**_zoo_specs(), **_entry_point_specs(), **_USER}, spec)
        _USER[m.name] = spec


def register_recorded(name: str, info: dict) -> None:
    """A model known only from results (declared by a config or file not at hand): enough to tabulate it."""
    if name in model_specs():
        return
    _USER[name] = ModelSpec(
        name=name, paper_name=str(info.get("paper_name") or name), family=str(info.get("family") or "user"),
        builder=None, reparameterizable=False, activation_swap=False, reference_params_m=None,
        reference_macs_m=None, reference_source="recorded with the results", top1=info.get("top1"),
        paper_latency_ms={}, in_study=False, origin="recorded with the results")


def _groups() -> dict[str, list[str]]:
    """Group selector -> its models, in registry order."""
    groups: dict[str, list[str]] = {}
    for name, spec in model_specs().items():
        for g in spec.groups:
            groups.setdefault(g, []).append(name)
    return groups


def _normalize(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _aliases() -> dict[str, str]:
    """Normalized name or paper name -> registry name ('MobileOne-S0', 'mobileone-s0', 'MobileNetV2-x1.0')."""
    table = {}
    for spec in model_specs().values():
        table[_normalize(spec.name)] = spec.name
        table[_normalize(spec.paper_name)] = spec.name
    return table


def known_models_line() -> str:
    return ("known models: " + ", ".join(model_specs()) + "; selectors: all, study, " + ", ".join(_groups()))


def resolve(name: str) -> ModelSpec:
    """The spec for a registry name or a paper name (any case and punctuation)."""
    key = _aliases().get(_normalize(name))
    if key is None:
        raise UserError(f"unknown model {name!r}; {known_models_line()}")
    return model_specs()[key]


def list_models(pattern: str = "*") -> list[str]:
    """Names matching a pattern in the paper's order. Comma-separated terms; each is `all`, `study`, a group,
    an exact or paper name, or a wildcard over names (`mobileone_s*`). `all` is every registered model except
    the ablation networks (Table 1's models, MobileOne's micro variants and the user's); `study` is the 20 of
    the paper's latency study. The groups `ablation` (all ten), `ablation_act` (the seven activations) and
    `ablation_block` (the three block variants) name the paper's Section 3 networks, which `all` and `study`
    never include; wildcards (`ablation_*`) reach them too. A term that matches nothing is an error listing
    the known names."""
    names: list[str] = []
    for term in (t.strip() for t in pattern.split(",")):
        if not term:
            continue
        if term in ("all", "*"):
            matched = [n for n, s in model_specs().items() if s.in_all]
        elif term == "study":
            matched = [n for n, s in model_specs().items() if s.in_study]
        elif term in _groups():
            matched = _groups()[term]
        elif _normalize(term) in _aliases() and not any(c in term for c in "*?["):
            matched = [_aliases()[_normalize(term)]]
        else:
            matched = [n for n in model_specs() if fnmatch.fnmatchcase(n, term.lower())]
        if not matched:
            raise UserError(f"no model matches {term!r}; {known_models_line()}")
        names.extend(n for n in matched if n not in names)
    if not names:
        raise UserError(f"no model pattern given; {known_models_line()}")
    order = list(model_specs())
    return sorted(names, key=order.index)


def _load_state_dict(path: str) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.is_file():
        raise UserError(f"weights file {path} not found; pass the path of a local state_dict (.pt/.pth)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # a pickle with code in it, or not a torch file at all
        raise UserError(f"weights file {path} is not a plain state_dict loadable with weights_only=True: "
                        f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise UserError(f"weights file {path} holds a {type(state).__name__}, not a state_dict")
    return {k.removeprefix("module."): v for k, v in state.items()}


def _load_into(model: nn.Module, state: dict, path: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise UserError(
            f"weights {path} do not fit {type(model).__name__}: {len(missing)} missing keys "
            f"(first: {missing[0] if missing else '-'}), {len(unexpected)} unexpected keys "
            f"(first: {unexpected[0] if unexpected else '-'})")
    shapes = [k for k in expected if tuple(expected[k].shape) != tuple(state[k].shape)]
    if shapes:
        k = shapes[0]
        raise UserError(f"weights {path}: {len(shapes)} tensors of the wrong shape (first: {k}: "
                        f"{tuple(state[k].shape)} in the file, {tuple(expected[k].shape)} in the model)")
    model.load_state_dict(state, strict=True)


def _name_seed(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


@torch.no_grad()
def settle_batchnorm(model: nn.Module, seed: int, batch: int = 2, size: int = 128, channels: int = 3) -> None:
    """Re-estimate every BN's running statistics on one fixed random batch (a no-op without BN).

    At raw random init, BN's running statistics (mean 0, var 1) do not match the activations, which grow
    block after block: MobileOne-S0's logits reach ~8e4, beyond fp16's range (65504), so fp16 and int8
    targets would time inf/NaN arithmetic and their parity checks would mean nothing. Settled statistics
    keep activations of order one, as in a trained network. Weights are untouched."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [(m, m.momentum) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: after one batch, exactly that batch's statistics
    was_training = model.training
    model.train()
    x = torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(seed))
    try:
        model(x)
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.train(was_training)


def create_model(name: str, *, deploy: bool = True, weights: str | None = None, activation: str = "relu",
                 **overrides) -> nn.Module:
    """Build a model. deploy=True: eval-mode inference form (MobileOne/RepVGG fused, MobileNetV3's H-swish
    replaced by ReLU unless activation="original"). deploy=False: the train-time form, in eval mode.

    `weights` loads a local state_dict: an unfused (train-form) one is loaded then fused when deploy=True;
    a fused one (keys with `reparam_conv`) only fits the deploy form."""
    spec = resolve(name)
    if spec.onnx_path:
        raise UserError(f"model {spec.name} exists only as ONNX ({spec.onnx_path}); this device needs the PyTorch "
                        "model: measure it on cpu or trt, or declare a factory in bench.toml")
    if spec.builder is None:
        raise UserError(f"model {spec.name} is known only from results ({spec.origin}); load the config that "
                        "declares it (--config) to build it")
    weights = weights or spec.weights
    if activation not in ACTIVATIONS:
        raise UserError(f"activation {activation!r} is not allowed; use one of {', '.join(ACTIVATIONS)}")
    effective_activation = activation if spec.activation_swap else "original"
    state = _load_state_dict(weights) if weights else None
    fused_weights = state is not None and any("reparam_conv" in k for k in state)
    if fused_weights and not deploy:
        raise UserError(f"weights {weights} are fused (reparam_conv); the train form needs unfused weights")
    # Random init is seeded by the model's name: the same model always has the same weights, so an exported
    # artifact is reproducible and can be checked against a fresh build.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_name_seed(spec.name))
        model = spec.builder(fused_weights, effective_activation, overrides)
    if state is not None:
        _load_into(model, state, weights)
    elif not any(p.is_meta for p in model.parameters()):
        # User models settle at their own input size (a fixed-size head would refuse another one).
        settle_batchnorm(model, seed=_name_seed(spec.name),
                         **({"size": spec.input_size[-1], "channels": spec.input_size[1]} if spec.is_user else {}))
    model.eval()
    if deploy and spec.deploy_fn is not None:
        model = spec.deploy_fn(model).eval()
    elif deploy and spec.reparameterizable and not fused_weights:
        model = reparameterize(model)
    model.build_info = BuildInfo(
        name=spec.name, deploy=deploy, activation=effective_activation,
        se_gate=SE_GATE_NOTE if spec.activation_swap else "n/a",
        overrides=tuple(sorted(overrides.items())), weights=str(weights) if weights else None)
    return model
