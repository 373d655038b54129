"""Runner `torchscript`: the PyTorch model traced and frozen (torch.jit.trace + torch.jit.freeze) on the CPU, fp32.

What a 2022 PyTorch user deploying on a server CPU would have run: freezing inlines the weights and folds
conv-BN, so the graph dispatches fewer, fused operators than eager mode.
"""
from __future__ import annotations

import warnings

from bench import zoo
from bench.core.device import DeviceSpec, RunnerSpec
from bench.core.runner import RunnerBase, RunnerOptions


class TorchScriptRunner(RunnerBase):
    def __init__(self, options: RunnerOptions):
        import torch  # when a runner is made, not with the module (the registry imports every device module)

        super().__init__(options)
        self.torch = torch
        self.module = None
        self._out = None
        self._saved_threads = torch.get_num_threads()
        self._form = "deploy"

    def load(self, model) -> None:
        torch = self.torch
        torch.set_num_threads(self.options.threads)
        info = getattr(model, "build_info", None)
        self._form = "deploy" if info is None or info.deploy else "train"
        self._x = torch.randn(zoo.model_input_shape(model), generator=torch.Generator().manual_seed(0))
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            # TorchScript is deprecated in current PyTorch releases; it is timed here as the 2022 deployment path
            warnings.simplefilter("ignore", DeprecationWarning)
            traced = torch.jit.trace(model.eval(), self._x, check_trace=False)
            self.module = torch.jit.freeze(traced)

    def infer(self) -> None:
        with self.torch.no_grad():
            self._out = self.module(self._x)

    supports_output = True

    def output(self):
        return self._out.numpy()

    def info(self) -> dict:
        return {"runtime": "torchscript", "version": self.torch.__version__, "threads": self.torch.get_num_threads(),
                "form": self._form, "transform": "torch.jit.trace + torch.jit.freeze"}

    def close(self) -> None:
        self.torch.set_num_threads(self._saved_threads)
        self.module = None


SPEC = DeviceSpec(
    "torchscript", "PyTorch TorchScript (trace + freeze) on the CPU, fp32", kind="cpu", precision="fp32",
    paper_column="cpu_x86_ms", contention_probe=True,
    runners=(("runtime", RunnerSpec("torchscript", TorchScriptRunner, exporter=None, runtime="torch",
                                     modules=("torch",))),))
