"""GPU tests skip, with our own diagnosis as the reason, where this host cannot run them (session-scoped, so
the skip comes before any module-scoped fixture builds a model or an engine)."""
import functools

import pytest


@functools.lru_cache(maxsize=None)
def _availability(check: str):
    from bench.env import gpu

    return getattr(gpu, check)()


@pytest.fixture(scope="session")
def cuda_device():
    avail = _availability("check_cuda")
    if not avail.can_run:
        pytest.skip(f"cuda device unavailable here: {avail.reason}")


@pytest.fixture(scope="session")
def trt_device():
    avail = _availability("check_trt")
    if not avail.can_run:
        pytest.skip(f"trt device unavailable here: {avail.reason}")


@pytest.fixture(scope="session")
def trtexec_device():
    avail = _availability("check_trtexec")
    if not avail.can_run:
        pytest.skip(f"trtexec unavailable here: {avail.reason}")
