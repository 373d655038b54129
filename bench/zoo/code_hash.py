"""A hash of the zoo's code: any change to it invalidates cached counts and exported artifacts."""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path


@functools.cache
def zoo_code_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]
