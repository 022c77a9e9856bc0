"""Makes `rental_gateway` importable while `gateway/` is not (yet) installed under that name.

Once the project's packaging maps `rental_gateway` to `gateway/` the package is found as installed
and this does nothing; until then a throwaway directory holding a `rental_gateway` symlink goes first
on `sys.path`.
"""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

GATEWAY_SOURCE = Path(__file__).resolve().parents[3] / "gateway"

if importlib.util.find_spec("rental_gateway") is None:
    _links = Path(tempfile.mkdtemp(prefix="rental-gateway-path-"))
    (_links / "rental_gateway").symlink_to(GATEWAY_SOURCE, target_is_directory=True)
    sys.path.insert(0, str(_links))
    atexit.register(shutil.rmtree, _links, True)
