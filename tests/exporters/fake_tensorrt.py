"""A stand-in for the tensorrt module (absent here: no GPU), for tests of the orchestration around the
builder only: it follows the TensorRT 10 / 11 Python API's names and the documented behaviour that matters
to us (IBuilderConfig.set_timing_cache returns False for a cache made on another device or version, and then
get_timing_cache() gives None), and writes the engine inspector fixture as the engine's layer information.
Nothing in it builds or runs a network."""
import enum
import types
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "gpu"
FOREIGN = b"timing cache of another GPU"


def make(version: str = "10.16.1.11") -> types.ModuleType:
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.calls = []  # what the builder was told, in order
    flag_names = ["TF32", "DEBUG"] + (["FP16", "INT8"] if major < 11 else [])  # 11 removed FP16
    trt.BuilderFlag = enum.Enum("BuilderFlag", {n: i for i, n in enumerate(flag_names)})
    # 10: EXPLICIT_BATCH = 0 (deprecated), STRONGLY_TYPED = 1; 11: STRONGLY_TYPED = 0 (deprecated, always on)
    trt.NetworkDefinitionCreationFlag = enum.IntEnum(
        "NetworkDefinitionCreationFlag", {"STRONGLY_TYPED": 0} if major >= 11 else {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1})
    trt.ProfilingVerbosity = enum.Enum("ProfilingVerbosity", {"LAYER_NAMES_ONLY": 0, "DETAILED": 1})
    trt.LayerInformationFormat = enum.Enum("LayerInformationFormat", {"ONELINE": 0, "JSON": 1})

    class Logger:
        WARNING = 2

        def __init__(self, level=None):
            self.level = level

    class TimingCache:
        def __init__(self, data: bytes):
            self.data = data or b"fresh timing cache"

        def serialize(self):
            return self.data + b"+tactics"

    class Config:
        def __init__(self):
            self.builder_optimization_level = 3
            self.profiling_verbosity = None
            self._cache = None

        def set_flag(self, flag):
            trt.calls.append(("set_flag", flag.name))

        def clear_flag(self, flag):
            trt.calls.append(("clear_flag", flag.name))

        def create_timing_cache(self, data: bytes):
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch: bool) -> bool:
            ok = ignore_mismatch or not cache.data.startswith(FOREIGN)
            trt.calls.append(("set_timing_cache", ok))
            self._cache = cache if ok else None
            return ok

        def get_timing_cache(self):
            return self._cache

    class Tensor:
        name, shape = "input", (1, 3, 224, 224)

    class Network:
        num_inputs = 1

        def get_input(self, i):
            return Tensor()

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            trt.calls.append(("create_network", flags))
            return Network()

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            return b"serialized engine"

    class OnnxParser:
        num_errors = 0

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            trt.calls.append(("parse", Path(path).name))
            return Path(path).is_file()

    class Inspector:
        def get_engine_information(self, fmt):
            return (FIXTURES / "engine_inspector_fp16.json").read_text()

    class Engine:
        def create_engine_inspector(self):
            return Inspector()

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            return Engine()

    trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime
    return trt
