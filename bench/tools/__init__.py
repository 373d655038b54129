"""Wrappers of outside command-line tools (NVIDIA's trtexec): finding them, their command lines, parsers of
their output. Pure where possible; exporters and devices both stand on them."""
