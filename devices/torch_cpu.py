"""Runner `torch`: PyTorch eager on the CPU, deploy form (or the train form, for the reparameterization ablation)."""
from __future__ import annotations

from bench import zoo
from bench.core.device import DeviceSpec, RunnerSpec
from bench.core.runner import RunnerBase, RunnerOptions


class TorchCpuRunner(RunnerBase):
    def __init__(self, options: RunnerOptions):
        # torch is imported when a runner is made, not with the module: the device registry imports every
        # device module, and `bench devices` or `bench table` should not pay seconds for torch.
        import torch

        super().__init__(options)
        self.torch = torch
        self.model = None
        self._out = None
        self._saved_threads = torch.get_num_threads()

    def load(self, model) -> None:
        torch = self.torch
        torch.set_num_threads(self.options.threads)
        self.model = model.eval()
        self._x = torch.randn(zoo.model_input_shape(model), generator=torch.Generator().manual_seed(0))

    def infer(self) -> None:
        with self.torch.inference_mode():
            self._out = self.model(self._x)

    supports_output = True

    def output(self):
        return self._out.numpy()

    def info(self) -> dict:
        torch = self.torch
        return {"runtime": "torch", "version": torch.__version__, "threads": torch.get_num_threads(),
                "form": "deploy" if getattr(self.model, "build_info", None) is None
                or self.model.build_info.deploy else "train"}

    def close(self) -> None:
        self.torch.set_num_threads(self._saved_threads)
        self.model = None


SPEC = DeviceSpec(
    "torch", "PyTorch eager on the CPU, fp32", kind="cpu", precision="fp32", paper_column="cpu_x86_ms",
    contention_probe=True,
    runners=(("runtime", RunnerSpec("torch", TorchCpuRunner, exporter=None, runtime="torch", modules=("torch",))),))
