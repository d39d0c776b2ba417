"""Colab's kernel-to-frontend messages, simulated: ``get_ipynb`` reads the notebook in ``COLAB_SIM_NOTEBOOK``.

On Colab, ``blocking_request("get_ipynb", request="", timeout_sec=60)`` asks the browser tab for
the notebook as it stands (unsaved edits and outputs included) and answers ``{"ipynb": dict}``.
Here the test names a file that holds that notebook (papermill's output notebook, which it
rewrites after every cell, so it stands for the tab's state).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ENV_NOTEBOOK = "COLAB_SIM_NOTEBOOK"


class MessageError(RuntimeError):
    """What Colab raises when the frontend answers a request with an error."""


def blocking_request(request_type: str, request: Any = "", timeout_sec: float | None = 5, parent: Any = None) -> Any:
    """Answer the one request the course sends; any other is refused as Colab would."""
    if request_type != "get_ipynb":
        raise MessageError(f"the Colab simulation does not answer {request_type!r} requests")
    path = os.environ.get(ENV_NOTEBOOK)
    if not path:
        raise MessageError(f"the Colab simulation has no notebook: set {ENV_NOTEBOOK}")
    return {"ipynb": json.loads(Path(path).read_text(encoding="utf-8"))}
