"""mobileone-bench: a cross-platform latency benchmarking harness for mobile vision backbones."""

__version__ = "0.1.0"
