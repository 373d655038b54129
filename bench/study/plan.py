"""The study's stages: which suites to run (each one ordinary run file) and which CPU configurations the sweep
compares. Pure planning: no measuring, no files.

Cells are shared between stages where the configuration is identical: the sweep's all-cores deploy cells are
Table 1's, its all-cores train cells are the reparameterization stage's, and a baseline (nothing to fuse) in
the train form is its deploy cell (the network is the same).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from bench import zoo
from bench.config import SuiteConfig, validate
from bench.core.errors import UserError
from devices.registry import DEVICES, availability, get_device

# The runtimes the CPU sweep compares, in report order: all of them whenever the study has a CPU device (the
# sweep is about this CPU, not about the devices Table 1 is measured on). TorchScript is there because a 2022
# PyTorch user deploying on a server CPU would have traced and frozen the model.
SWEEP_RUNTIMES = ("cpu", "torch", "torchscript", "openvino")
# Forms the sweep times per runtime: the unfused train form only where a runtime can take it as it is.
SWEEP_FORMS = {"cpu": ("deploy", "train"), "torch": ("deploy", "train"), "torchscript": ("deploy",),
               "openvino": ("deploy",)}
RUNTIME_LABEL = {"cpu": "ONNX Runtime", "torch": "PyTorch eager", "torchscript": "TorchScript",
                 "openvino": "OpenVINO"}
ABLATION_PATTERN = "ablation"
STAGE_NAMES = ("table1", "reparam", "ablation", "sweep_1t", "sweep_1t_train", "sweep_extra", "sweep_extra_train")


@dataclass(frozen=True)
class Stage:
    name: str
    title: str
    config: SuiteConfig | None  # None: the stage is skipped (see `skipped`)
    skipped: str = ""


@dataclass(frozen=True)
class SweepConfig:
    """One CPU configuration of the sweep: a runtime (device), a thread count and a form."""
    device: str
    threads: int
    form: str

    @property
    def label(self) -> str:
        return f"{RUNTIME_LABEL.get(self.device, self.device)}, {self.threads} thread{'s' if self.threads > 1 else ''}, {self.form}"


def shared_x86_models() -> list[str]:
    """The models of the paper's study with a published x86 CPU latency (19 of the 20)."""
    return [n for n in zoo.list_models("study") if zoo.resolve(n).paper_latency_ms.get("cpu_x86_ms") is not None]


def reparameterizable(models: list[str]) -> list[str]:
    return [m for m in models if zoo.resolve(m).reparameterizable]


def ablation_models() -> list[str]:
    """The ablation networks, or [] where this zoo does not have them."""
    try:
        return zoo.list_models(ABLATION_PATTERN)
    except UserError:
        return []


def cpu_devices(devices: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(d for d in devices if DEVICES[d].kind == "cpu" and DEVICES[d].contention_probe)


def sweep_devices(devices: tuple[str, ...]) -> tuple[str, ...]:
    """The sweep's runtimes: SWEEP_RUNTIMES and any other CPU device of the study, when it has one. A sweep
    runtime whose optional package is absent here (openvino) is left out rather than failing its stages; a
    device the study names itself stays (the run refuses it with the reason)."""
    chosen = cpu_devices(devices)
    if not chosen:
        return ()
    optional = tuple(d for d in SWEEP_RUNTIMES if d in chosen or availability(d).can_run)
    return optional + tuple(d for d in chosen if d not in SWEEP_RUNTIMES)


def sweep_configs(devices: tuple[str, ...], cores: int) -> list[SweepConfig]:
    threads = sorted({1, cores})
    return [SweepConfig(d, t, f) for d in sweep_devices(devices) for t in threads
            for f in SWEEP_FORMS.get(d, ("deploy",))]


def plan_stages(base: SuiteConfig, cores: int, only: tuple[str, ...] | None = None,
                models: str | None = None) -> list[Stage]:
    """The stages of a study on `base.devices` with `base`'s protocol, cache and device options; `only`
    restricts to those stage names (the others are listed as skipped, so the report says why they are empty);
    `models` (a model pattern) restricts every stage to those of its models that match (a small study)."""
    keep = set(zoo.list_models(models)) if models else None
    devices = base.devices
    cfg = replace(base, interleave=True, threads=None, form="deploy", weights=None, input_size=None, batch=1,
                  user_models=(), activation="relu")

    def suite(names: list[str], devs: tuple[str, ...], **changes) -> SuiteConfig | None:
        names = [n for n in names if keep is None or n in keep]
        return validate(replace(cfg, models=",".join(names), devices=devs, **changes)) if names else None

    shared = shared_x86_models()
    sweep = sweep_devices(devices)
    stages: list[Stage] = []
    stages.append(Stage("table1", "Table 1: the paper's 20 models, deploy form, all cores",
                        suite(zoo.list_models("study"), devices)))
    fusable = reparameterizable(zoo.list_models("study"))
    stages.append(Stage("reparam", "Reparameterization: the unfused train form, all cores",
                        suite(fusable, devices, form="train")))
    ablation = ablation_models()
    stages.append(Stage("ablation", "Activation and block ablations, deploy form, all cores",
                        suite(ablation, devices) if ablation else None,
                        "" if ablation else "the ablation networks are not in this zoo"))
    one = cores > 1  # on one core, one thread is all cores: the Table 1 cells are the sweep's
    why_one = "" if one else "this process has one core: the 1-thread cells are Table 1's"
    no_sweep = "no CPU device in the study"
    stages.append(Stage("sweep_1t", "CPU sweep: one thread, deploy form",
                        suite(shared, sweep, threads=1) if sweep and one else None, why_one if sweep else no_sweep))
    train_devs = tuple(d for d in sweep if "train" in SWEEP_FORMS.get(d, ()))
    stages.append(Stage("sweep_1t_train", "CPU sweep: one thread, train form",
                        suite(reparameterizable(shared), train_devs, threads=1, form="train")
                        if train_devs and one else None, why_one if train_devs else no_sweep))
    extra = tuple(d for d in sweep if d not in devices)
    all_in = "every sweep runtime is a study device (Table 1 has these cells)"
    stages.append(Stage("sweep_extra", "CPU sweep: runtimes beyond the study's devices, all cores, deploy form",
                        suite(shared, extra) if extra else None, "" if extra else (all_in if sweep else no_sweep)))
    extra_train = tuple(d for d in extra if "train" in SWEEP_FORMS.get(d, ()))
    stages.append(Stage("sweep_extra_train", "CPU sweep: runtimes beyond the study's devices, all cores, train form",
                        suite(reparameterizable(shared), extra_train, form="train") if extra_train else None,
                        "" if extra_train else (all_in if sweep else no_sweep)))
    stages = [replace(s, skipped="none of its models is among --models") if s.config is None and not s.skipped
              else s for s in stages]
    if only is not None:
        stages = [s if s.name in only else replace(s, config=None, skipped="not asked for (--stages)")
                  for s in stages]
    return stages


def parse_stages(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [n for n in names if n not in STAGE_NAMES]
    if bad or not names:
        raise UserError(f"--stages {text!r}: unknown stage {bad[0] if bad else '(none given)'}; "
                        f"choose from {', '.join(STAGE_NAMES)}")
    return names


def check_study_devices(devices: tuple[str, ...]) -> None:
    for d in devices:
        get_device(d)
