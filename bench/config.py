"""bench.toml and CLI overrides -> a frozen SuiteConfig. Validation only: no side effects.

Every error names the key, the value and what is allowed, in one line.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from bench import zoo
from bench.core.errors import UserError
from bench.core.io import default_cache_dir
from bench.core.options import check_value
from bench.core.protocol import PRESETS, Protocol
from bench.zoo import user
from bench.zoo.user import UserModel
from devices.registry import DEVICES

DEFAULT_CONFIG = "bench.toml"
# More intra-op threads than this many per CPU only oversubscribes: the cell would crawl or never finish.
MAX_THREADS_PER_CPU = 4
FORMS = ("deploy", "train", "both")
ACTIVATIONS = ("relu", "original")

PROTOCOL_KEYS = {f.name: f.type for f in fields(Protocol) if f.name != "name"}


@dataclass(frozen=True)
class SuiteConfig:
    models: str = "all"
    devices: tuple[str, ...] = ("cpu",)
    protocol: str = "default"
    protocol_overrides: tuple[tuple[str, Any], ...] = ()
    threads: int | None = None  # None: the cores this process may use
    out: str = "results/runs"
    cache: str | None = None  # None: $BENCH_CACHE_DIR or ~/.cache/mobileone-bench
    form: str = "deploy"
    activation: str = "relu"
    weights: str | None = None
    device_options: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...] = ()
    user_models: tuple[UserModel, ...] = ()  # [models.NAME] tables and --model-file files, paths resolved
    input_size: tuple[int, int, int] | None = None  # (C, H, W) for every model; None: each model's own
    batch: int = 1  # the paper's protocol is batch 1
    wait_budget: float | None = None  # seconds the whole run may wait for quiet (None: no run-wide cap)
    # The rounds of a device's cells round-robin (bench.pipeline.measure_interleaved). None, the default:
    # interleaved on this host (benchmarks/honesty.py: half the run-to-run spread of one cell after another),
    # one cell at a time per node on a cluster; False: one cell after another.
    interleave: bool | None = None

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache).expanduser() if self.cache else default_cache_dir()

    @property
    def out_dir(self) -> Path:
        return Path(self.out).expanduser()

    def options_for(self, device: str) -> dict[str, Any]:
        return dict(dict(self.device_options).get(device, ()))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["protocol_overrides"] = dict(self.protocol_overrides)
        d["device_options"] = {k: dict(v) for k, v in self.device_options}
        d["user_models"] = [m.to_dict() for m in self.user_models]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SuiteConfig":
        d = dict(d)
        d["devices"] = tuple(d.get("devices", ("cpu",)))
        d["protocol_overrides"] = tuple(sorted(d.get("protocol_overrides", {}).items()))
        d["device_options"] = tuple(sorted((k, tuple(sorted(v.items())))
                                           for k, v in d.get("device_options", {}).items()))
        d["user_models"] = tuple(UserModel.from_dict(m) for m in d.get("user_models", ()))
        if d.get("input_size") is not None:
            d["input_size"] = tuple(d["input_size"])
        return validate(cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__}))


def _protocol_value(key: str, value: Any) -> Any:
    annotation = PROTOCOL_KEYS[key]
    if "bool" in str(annotation):
        return check_value(f"protocol.{key}", value, bool, None)
    if "int" in str(annotation) and "float" not in str(annotation):
        if value is None and "None" in str(annotation):
            return None
        return check_value(f"protocol.{key}", value, int, None)
    if value is None and "None" in str(annotation):
        return None
    value = check_value(f"protocol.{key}", value, float, None)
    if value < 0:
        raise UserError(f"protocol.{key} = {value!r} must be >= 0")
    return value


def validate(cfg: SuiteConfig) -> SuiteConfig:

    zoo.register_user_models(cfg.user_models)  # before the names are checked: they may be the user's
    zoo.list_models(cfg.models)  # raises on an unknown model, listing the known ones
    for d in cfg.devices:
        if d not in DEVICES:
            raise UserError(f"devices: unknown device {d!r}; known devices: {', '.join(DEVICES)}")
    if not cfg.devices:
        raise UserError(f"devices: the list is empty; name at least one of {', '.join(DEVICES)}")
    if cfg.protocol not in PRESETS:
        raise UserError(f"protocol = {cfg.protocol!r} is unknown; known protocols: {', '.join(PRESETS)}")
    for key, value in cfg.protocol_overrides:
        if key not in PROTOCOL_KEYS:
            raise UserError(f"protocol.{key} is not a protocol setting; allowed: {', '.join(PROTOCOL_KEYS)}")
        _protocol_value(key, value)
    try:
        replace(PRESETS[cfg.protocol], **dict(cfg.protocol_overrides))
    except ValueError as e:
        raise UserError(f"protocol: {e}") from None
    if cfg.threads is not None and (isinstance(cfg.threads, bool) or not isinstance(cfg.threads, int)
                                    or cfg.threads < 1):
        raise UserError(f"threads = {cfg.threads!r} must be a whole number >= 1, or \"auto\"")
    limit = MAX_THREADS_PER_CPU * (os.cpu_count() or 1)
    if cfg.threads is not None and cfg.threads > limit:
        raise UserError(f"threads = {cfg.threads} is more than {MAX_THREADS_PER_CPU}x this machine's "
                        f"{os.cpu_count()} CPUs ({limit}); pass --threads {os.cpu_count()} or \"auto\"")
    if cfg.form not in FORMS:
        raise UserError(f"form = {cfg.form!r} is not allowed; use one of {', '.join(FORMS)}")
    if cfg.activation not in ACTIVATIONS:
        raise UserError(f"activation = {cfg.activation!r} is not allowed; use one of {', '.join(ACTIVATIONS)}")
    check_paths(cfg)
    if cfg.input_size is not None and (
            not isinstance(cfg.input_size, tuple) or len(cfg.input_size) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in cfg.input_size)):
        raise UserError(f"input_size = {cfg.input_size!r} must be [channels, height, width], e.g. [3, 256, 256]")
    if cfg.wait_budget is not None and (isinstance(cfg.wait_budget, bool)
                                        or not isinstance(cfg.wait_budget, (int, float)) or not cfg.wait_budget >= 0):
        raise UserError(f"wait_budget = {cfg.wait_budget!r} must be a number of seconds >= 0")
    if isinstance(cfg.batch, bool) or not isinstance(cfg.batch, int) or not 1 <= cfg.batch <= MAX_BATCH:
        raise UserError(f"batch = {cfg.batch!r} must be a whole number from 1 to {MAX_BATCH}")
    for device, options in cfg.device_options:
        check_device_options(device, dict(options))
    return cfg


def writable_folder(path: Path, what: str, flag: str) -> None:
    """`path` is a folder we can write in, or can be created: checked before any work starts."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is a file, not a folder; pass a folder to {flag}")
    probe = next((p for p in (path, *path.parents) if p.exists()), None)
    if probe is None or not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path} cannot be created or written ({probe} is not writable); pass a writable "
                        f"folder to {flag}")


def check_paths(cfg: SuiteConfig) -> None:
    """Paths a suite reads or writes, checked up front: a run must not measure for minutes and then fail
    every cell on a path that was wrong from the start."""
    if cfg.weights is not None:
        w = Path(cfg.weights).expanduser()
        if not w.exists():
            raise UserError(f"weights = {cfg.weights} not found; pass an existing state_dict file to --weights")
        if not w.is_file():
            raise UserError(f"weights = {cfg.weights} is a folder; pass the state_dict file itself to --weights")
        if not os.access(w, os.R_OK):
            raise UserError(f"weights = {cfg.weights} cannot be read; check its permissions")
    writable_folder(cfg.cache_dir, "cache folder", "--cache-dir")


def check_device_options(device: str, options: dict[str, Any]) -> None:
    """Each [devices.<device>] option is known to the device's spec and of the right type and value."""
    if device not in DEVICES:
        raise UserError(f"devices.{device}: unknown device; known devices: {', '.join(DEVICES)}")
    DEVICES[device].check_options(options)


def device_options_help(device: str) -> dict[str, tuple[type, tuple | None, str]]:
    """name -> (type, allowed values, help) of a device's options, from its spec."""
    return {o.name: (o.type, o.allowed, o.help) for o in DEVICES[device].options}


SUITE_KEYS = {"models", "devices", "protocol", "threads", "out", "cache", "form", "activation", "weights",
              "input_size", "batch", "wait_budget", "interleave"}
MAX_BATCH = 1024


def parse_toml(text: str, source: str, base: Path | None = None) -> SuiteConfig:
    """A suite file's text; `base` is the folder its relative paths (models' files) are resolved against."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{source} is not valid TOML: {e}") from None
    unknown = set(data) - {"suite", "protocol", "devices", "models"}
    if unknown:
        raise UserError(f"{source}: unknown section(s) {', '.join(sorted(unknown))}; allowed: suite, protocol, devices, models")
    for section in ("suite", "protocol", "devices", "models"):
        if section in data and not isinstance(data[section], dict):
            raise UserError(f"{source}: {section} = {data[section]!r} must be a table ([{section}])")
    suite = data.get("suite", {})
    bad = set(suite) - SUITE_KEYS
    if bad:
        k = sorted(bad)[0]
        raise UserError(f"{source}: suite.{k} is not a setting; allowed: {', '.join(sorted(SUITE_KEYS))}")
    kw: dict[str, Any] = {}
    for key in ("models", "protocol", "out", "cache", "form", "activation", "weights"):
        if key in suite:
            kw[key] = check_value(f"suite.{key}", suite[key], str, None)
    if "devices" in suite:
        devs = suite["devices"]
        devs = [devs] if isinstance(devs, str) else devs
        if not isinstance(devs, list) or not all(isinstance(d, str) for d in devs):
            raise UserError(f"{source}: suite.devices = {suite['devices']!r} must be a list of device names")
        kw["devices"] = tuple(devs)
    if "input_size" in suite:
        size = suite["input_size"]
        kw["input_size"] = tuple(size) if isinstance(size, list) else size
    if "batch" in suite:
        kw["batch"] = suite["batch"]
    if "wait_budget" in suite:
        kw["wait_budget"] = suite["wait_budget"]
    if "interleave" in suite:
        kw["interleave"] = check_value("suite.interleave", suite["interleave"], bool, None)
    if "threads" in suite:
        t = suite["threads"]
        if t != "auto":
            kw["threads"] = t
    if kw.get("cache") == "auto":
        kw["cache"] = None
    proto = data.get("protocol", {})
    if not isinstance(proto, dict):
        raise UserError(f"{source}: [protocol] must be a table of protocol settings")
    kw["protocol_overrides"] = tuple(sorted(proto.items()))
    devices = data.get("devices", {})
    if not isinstance(devices, dict):
        raise UserError(f"{source}: [devices] must hold one table per device, e.g. [devices.trt]")
    for name, opts in devices.items():
        if not isinstance(opts, dict):
            raise UserError(f"{source}: devices.{name} = {opts!r} must be a table of options ([devices.{name}])")
    kw["device_options"] = tuple(sorted((name, tuple(sorted(opts.items())))
                                        for name, opts in devices.items() if isinstance(opts, dict)))
    try:
        kw["user_models"] = tuple(user.from_table(name, table, base or Path("."), f"config {source}")
                                  for name, table in data.get("models", {}).items())
        return validate(SuiteConfig(**kw))
    except UserError as e:
        raise UserError(f"{source}: {e}") from None


def load_config(path: str | None) -> SuiteConfig:
    """The suite from `path`, or ./bench.toml when present, or the built-in defaults."""
    if path is None:
        p = Path(DEFAULT_CONFIG)
        if not p.is_file():
            return SuiteConfig()
    else:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"config file {path} not found; pass an existing file to --config")
    try:
        text = p.read_bytes().decode("utf-8")
    except OSError as e:
        raise UserError(f"config file {p} cannot be read ({e.strerror}); check its permissions") from None
    except UnicodeDecodeError:
        raise UserError(f"config file {p} is not UTF-8 text; pass a TOML file to --config") from None
    return parse_toml(text, str(p), p.parent)


def with_cli(cfg: SuiteConfig, **flags) -> SuiteConfig:
    """CLI flags override the file; a flag left at None keeps the file's value."""
    changes = {k: v for k, v in flags.items() if v is not None}
    if "devices" in changes:
        changes["devices"] = tuple(d.strip() for item in changes["devices"] for d in item.split(",") if d.strip())
    if "protocol_overrides" in changes:
        merged = dict(cfg.protocol_overrides)
        merged.update(changes["protocol_overrides"])
        changes["protocol_overrides"] = tuple(sorted(merged.items()))
    if "device_options" in changes:
        merged = {k: dict(v) for k, v in cfg.device_options}
        for dev, opts in changes["device_options"].items():
            merged.setdefault(dev, {}).update(opts)
        changes["device_options"] = tuple(sorted((k, tuple(sorted(v.items()))) for k, v in merged.items()))
    if changes.get("threads") == "auto":
        changes["threads"] = None
    return validate(replace(cfg, **changes))


def _parse_scalar(text: str):
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(text)
    except ValueError:
        return text


def parse_option_flags(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """`--option DEVICE.KEY=VALUE` flags -> {device: {key: value}}, each checked against the device's spec."""
    out: dict[str, dict[str, Any]] = {}
    for opt in items or []:
        dev, _, rest = opt.partition(".")
        key, eq, value = rest.partition("=")
        if not eq or not key:
            raise UserError(f"--option {opt!r} must look like DEVICE.KEY=VALUE (e.g. coreml.compute_units=CPU_AND_NE)")
        out.setdefault(dev, {})[key] = _parse_scalar(value)
    for dev, options in out.items():
        check_device_options(dev, options)
    return out
