"""Models users bring: a `[models.NAME]` table in bench.toml (a Python factory, or an ONNX file), a model file
given on the command line, or an installed package's entry point (group `mobileone_bench.models`). Each
becomes a ModelSpec in the registry, so export, run, tables and plots treat it like a zoo model.

Every problem is one line naming the model and the fix."""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from bench.core.errors import UserError

ENTRY_POINT_GROUP = "mobileone_bench.models"
DEFAULT_INPUT = (3, 224, 224)
TABLE_KEYS = {"factory", "kwargs", "deploy", "weights", "input_size", "top1", "label", "onnx"}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class UserModel:
    """A model declared outside the zoo. Paths are absolute (resolved against the declaring file's folder)."""

    name: str
    origin: str  # where it was declared, for people: "config bench.toml", "entry point my-dist", "file m.onnx"
    factory: str | None = None  # "module:callable" returning an nn.Module (train form)
    kwargs: tuple[tuple[str, Any], ...] = ()
    deploy: str | None = None  # a method name of the model, or "module:callable", returning the inference form
    weights: str | None = None
    onnx: str | None = None
    input_size: tuple[int, int, int] = DEFAULT_INPUT
    top1: float | None = None
    label: str | None = None
    import_path: str | None = None  # a folder made importable for `factory` (the config's own folder)

    def to_dict(self) -> dict:
        return {"name": self.name, "origin": self.origin, "factory": self.factory, "kwargs": dict(self.kwargs),
                "deploy": self.deploy, "weights": self.weights, "onnx": self.onnx,
                "input_size": list(self.input_size), "top1": self.top1, "label": self.label,
                "import_path": self.import_path}

    @classmethod
    def from_dict(cls, d: dict) -> "UserModel":
        d = dict(d)
        d["kwargs"] = tuple(sorted(dict(d.get("kwargs") or {}).items()))
        d["input_size"] = tuple(d.get("input_size") or DEFAULT_INPUT)
        return cls(**d)


def _fail(name: str, origin: str, problem: str) -> UserError:
    return UserError(f"model {name} ({origin}): {problem}")


def _input_size(name: str, origin: str, value) -> tuple[int, int, int]:
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        raise _fail(name, origin, f"input_size = {value!r} must be [channels, height, width], e.g. [3, 224, 224]")
    return tuple(value)


def _path(name: str, origin: str, key: str, value, base: Path) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(name, origin, f"{key} = {value!r} must be a path")
    p = (base / value).expanduser() if not Path(value).expanduser().is_absolute() else Path(value).expanduser()
    if not p.is_file():
        raise _fail(name, origin, f"{key} = {value} not found (looked for {p}); paths are relative to the "
                                  "config file's folder")
    return str(p.resolve())


def from_table(name: str, table, base: Path, origin: str) -> UserModel:
    """One `[models.NAME]` table, checked key by key."""
    if not _NAME.match(name):
        raise _fail(name, origin, "a model name is lower-case letters, digits, '_', '.' or '-'")
    if not isinstance(table, dict):
        raise _fail(name, origin, f"models.{name} must be a table ([models.{name}])")
    unknown = sorted(set(table) - TABLE_KEYS)
    if unknown:
        raise _fail(name, origin, f"{unknown[0]} is not a model setting; allowed: {', '.join(sorted(TABLE_KEYS))}")
    if ("factory" in table) == ("onnx" in table):
        raise _fail(name, origin, "give exactly one of factory = \"module:callable\" or onnx = \"path.onnx\"")
    factory = table.get("factory")
    if factory is not None and (not isinstance(factory, str) or factory.count(":") != 1
                                or not all(factory.split(":"))):
        raise _fail(name, origin, f"factory = {factory!r} must look like \"package.module:callable\"")
    kwargs = table.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise _fail(name, origin, f"kwargs = {kwargs!r} must be a table, e.g. kwargs = {{ width = 1.0 }}")
    if "onnx" in table and ({"kwargs", "deploy", "weights"} & set(table)):
        raise _fail(name, origin, "an ONNX model takes no kwargs, deploy or weights")
    deploy = table.get("deploy")
    if deploy is not None and (not isinstance(deploy, str) or not deploy):
        raise _fail(name, origin, f"deploy = {deploy!r} must be a method name or \"module:callable\"")
    top1 = table.get("top1")
    if top1 is not None and (isinstance(top1, bool) or not isinstance(top1, (int, float)) or not 0 <= top1 <= 100):
        raise _fail(name, origin, f"top1 = {top1!r} must be a percentage between 0 and 100")
    label = table.get("label")
    if label is not None and not isinstance(label, str):
        raise _fail(name, origin, f"label = {label!r} must be text")
    return UserModel(
        name=name, origin=origin, factory=factory, kwargs=tuple(sorted(kwargs.items())), deploy=deploy,
        weights=_path(name, origin, "weights", table["weights"], base) if "weights" in table else None,
        onnx=_path(name, origin, "onnx", table["onnx"], base) if "onnx" in table else None,
        input_size=_input_size(name, origin, table.get("input_size", list(DEFAULT_INPUT))),
        top1=float(top1) if top1 is not None else None, label=label,
        import_path=str(base.resolve()) if factory else None)


def from_model_file(path: str) -> UserModel:
    """`--model-file path.onnx`: an ONNX file, named after it (its input size is read from the graph)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"--model-file {path} not found; pass an existing .onnx file")
    if p.suffix.lower() != ".onnx":
        raise UserError(f"--model-file {path} is not an .onnx file; declare PyTorch models in bench.toml "
                        "([models.NAME] factory = ...)")
    name = re.sub(r"[^a-z0-9_.-]+", "_", p.stem.lower()).strip("_.-") or "model"
    return UserModel(name=name, origin=f"file {p}", onnx=str(p.resolve()), input_size=onnx_input_size(p, name))


def from_entry_point(ep) -> UserModel:
    """An entry point `name = "module:callable"`; the callable may carry `input_size`, `top1`, `label` and
    `deploy` attributes (metadata beside the constructor, as timm's registry keeps it)."""
    dist = getattr(getattr(ep, "dist", None), "name", None) or "an installed package"
    origin = f"entry point of {dist}"
    if not _NAME.match(ep.name):
        raise _fail(ep.name, origin, "a model name is lower-case letters, digits, '_', '.' or '-'")
    fn = load_callable(ep.value, None, ep.name, origin)
    return UserModel(
        name=ep.name, origin=origin, factory=ep.value, deploy=getattr(fn, "deploy", None),
        input_size=_input_size(ep.name, origin, tuple(getattr(fn, "input_size", DEFAULT_INPUT))),
        top1=getattr(fn, "top1", None), label=getattr(fn, "label", None))


def entry_point_models() -> list[UserModel]:
    return [from_entry_point(ep) for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)]


# ------------------------------------------------------------------------------------------- building

def load_callable(target: str, import_path: str | None, name: str, origin: str) -> Callable:
    module_name, _, attr = target.partition(":")
    if import_path and import_path not in sys.path:
        sys.path.insert(0, import_path)  # so a models.py beside bench.toml imports
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise _fail(name, origin, f"cannot import {module_name!r} ({type(e).__name__}: {_first_line(e)}); "
                                  "is it installed, or beside the config file?") from None
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise _fail(name, origin, f"{module_name} has no {attr!r}")
    if not callable(fn):
        raise _fail(name, origin, f"{target} is not callable")
    return fn


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def source_digest(m: UserModel) -> str:
    """What the model's artifacts and counts are keyed by: the factory's source file (or the ONNX file), the
    kwargs, the weights' hash and the declared input size."""
    h = hashlib.sha256(json.dumps([m.factory, sorted(m.kwargs), m.deploy, list(m.input_size)],
                                  default=str).encode())
    files = [m.onnx, m.weights]
    if m.factory:
        spec = None
        try:
            if m.import_path and m.import_path not in sys.path:
                sys.path.insert(0, m.import_path)
            spec = importlib.util.find_spec(m.factory.split(":")[0])
        except (ImportError, ValueError):
            pass
        files.append(spec.origin if spec and spec.origin and Path(spec.origin).is_file() else None)
    for f in files:
        if f:
            h.update(Path(f).read_bytes())
    return h.hexdigest()[:16]


def builder(m: UserModel) -> Callable:
    """The zoo's builder signature (inference form wanted?, activation, overrides) -> the train form; the
    inference form is made by `deployer(m)` after weights are loaded."""
    def build(inference_mode: bool, activation: str, overrides: dict):
        from torch import nn

        if overrides:
            raise _fail(m.name, m.origin, "takes no architecture overrides")
        fn = load_callable(m.factory, m.import_path, m.name, m.origin)
        kwargs = dict(m.kwargs)
        try:
            inspect.signature(fn).bind(**kwargs)
        except TypeError as e:
            raise _fail(m.name, m.origin, f"kwargs {sorted(kwargs)} do not fit {m.factory}: {e}") from None
        except ValueError:
            pass  # no signature to check (a builtin): the call itself will say
        try:
            model = fn(**kwargs)
        except UserError:
            raise
        except Exception as e:
            raise _fail(m.name, m.origin, f"{m.factory} raised {type(e).__name__}: {_first_line(e)}") from None
        if not isinstance(model, nn.Module):
            raise _fail(m.name, m.origin, f"{m.factory} returned a {type(model).__name__}, not a torch.nn.Module")
        return model
    return build


def deployer(m: UserModel) -> Callable | None:
    """The inference-form transform `deploy` names: a method of the model, or a "module:callable"."""
    if not m.deploy:
        return None

    def deploy(model):
        if ":" in m.deploy:
            out = load_callable(m.deploy, m.import_path, m.name, m.origin)(model)
        else:
            method = getattr(model, m.deploy, None)
            if not callable(method):
                raise _fail(m.name, m.origin, f"deploy = {m.deploy!r}: {type(model).__name__} has no such method")
            out = method()
        return model if out is None else out  # methods that fuse in place return nothing
    return deploy


def onnx_input_size(path: Path, name: str) -> tuple[int, int, int]:
    """(C, H, W) of an ONNX model's single image input; dynamic spatial dims are refused."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise UserError(f"model {name}: {path} is not a valid ONNX file ({type(e).__name__}: {_first_line(e)})") from None
    inputs = graph_inputs(model)
    if len(inputs) != 1:
        raise UserError(f"model {name}: {path} has {len(inputs)} inputs; one image input is supported")
    inp = inputs[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise UserError(f"model {name}: input {inp.name} has {len(dims)} dimensions; an NCHW image input is "
                        "expected")
    if any(d is None for d in dims[1:]):
        raise UserError(f"model {name}: input {inp.name} has a dynamic size {_shape_text(dims)}; declare it in "
                        f"bench.toml with input_size = [C, H, W] ([models.{name}] onnx = ...)")
    return tuple(dims[1:])


def graph_inputs(model) -> list:
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def _shape_text(dims) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)
