"""Runner `torch`: PyTorch eager on the CPU, deploy form (or the train form, for the reparameterization ablation)."""
from __future__ import annotations

import torch

from bench.core.runner import RunnerBase, RunnerOptions


class TorchCpuRunner(RunnerBase):
    def __init__(self, options: RunnerOptions):
        super().__init__(options)
        self.model: torch.nn.Module | None = None
        self._out = None
        self._saved_threads = torch.get_num_threads()

    def load(self, model: torch.nn.Module) -> None:
        torch.set_num_threads(self.options.threads)
        self.model = model.eval()
        self._x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))

    def infer(self) -> None:
        with torch.inference_mode():
            self._out = self.model(self._x)

    supports_output = True

    def output(self):
        return self._out.numpy()

    def info(self) -> dict:
        return {"runtime": "torch", "version": torch.__version__, "threads": torch.get_num_threads(),
                "form": "deploy" if getattr(self.model, "build_info", None) is None
                or self.model.build_info.deploy else "train"}

    def close(self) -> None:
        torch.set_num_threads(self._saved_threads)
        self.model = None
