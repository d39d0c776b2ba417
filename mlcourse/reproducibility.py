"""Runs that repeat exactly: one call to make a program deterministic, and the random state a checkpoint needs.

:func:`make_deterministic` does in one place what a notebook otherwise does by hand, and does it
right on every device:

1. it sets the environment variable ``CUBLAS_WORKSPACE_CONFIG`` (to ``":4096:8"``) unless it is
   already set. On CUDA, PyTorch releases up to 2.8 (later ones dropped the check) make every
   cuBLAS matrix product raise a ``RuntimeError`` under ``torch.use_deterministic_algorithms(True)``
   without it, and both torch and cuBLAS read it only once, at the first matrix product, so it
   must be set **before** any work on the GPU: call :func:`make_deterministic` at the top of a
   notebook. Where it is no longer required, setting it costs nothing;
2. it seeds Python's :mod:`random`, NumPy's global generator and torch (``torch.manual_seed``
   seeds the CPU generator and the generator of every CUDA and MPS device);
3. it calls ``torch.use_deterministic_algorithms(True)`` and sets
   ``torch.backends.cudnn.benchmark = False`` (autotuning may pick another convolution algorithm
   on each run) and ``torch.backends.cudnn.deterministic = True``.

None of this starts CUDA, so it costs nothing on a machine without a GPU. What it cannot do:
``PYTHONHASHSEED`` only works when set before Python starts, and the number of CPU threads
(``torch.set_num_threads``) still changes the order of floating-point sums, so results repeat
exactly on one machine with one thread count.

A checkpoint that resumes *exactly* also saves the random state. :func:`rng_state` captures it
(Python, NumPy, torch's CPU generator, and every CUDA generator and the MPS generator when those
devices exist) in a form that ``torch.save`` writes and ``torch.load(..., weights_only=True)``
reads; :func:`set_rng_state` restores it. The CUDA generators matter: on a GPU, dropout draws
its masks from the CUDA generator, not the CPU one, so a checkpoint with only
``torch.get_rng_state()`` resumes with other masks.
"""

from __future__ import annotations

import os
import random
import warnings
from typing import Any, TypedDict

import numpy as np
import torch

__all__ = [
    "CUBLAS_WORKSPACE_CONFIG",
    "ENV_CUBLAS_WORKSPACE",
    "RNGState",
    "make_deterministic",
    "rng_state",
    "set_rng_state",
]

#: the environment variable cuBLAS reads to choose a workspace, and deterministic mode requires on CUDA
ENV_CUBLAS_WORKSPACE = "CUBLAS_WORKSPACE_CONFIG"
#: the value :func:`make_deterministic` sets: 8 buffers of 4096 KiB (``":16:8"`` also works, with less memory)
CUBLAS_WORKSPACE_CONFIG = ":4096:8"
#: NumPy's legacy seeding takes seeds in [0, 2**32)
_SEED_LIMIT = 2**32


class RNGState(TypedDict):
    """Every random-number generator's state, as :func:`rng_state` returns it.

    Only plain Python values and CPU tensors, so ``torch.load(path, weights_only=True)`` reads a
    checkpoint that holds it.
    """

    #: ``random.getstate()``
    python: tuple[Any, ...]
    #: NumPy's global generator (``np.random.get_state(legacy=False)``, its key as a list of ints)
    numpy: dict[str, Any]
    #: ``torch.get_rng_state()``: the CPU generator
    torch: torch.Tensor
    #: ``torch.cuda.get_rng_state_all()``: one state per CUDA device, empty without CUDA
    cuda: list[torch.Tensor]
    #: ``torch.mps.get_rng_state()``, None without MPS
    mps: torch.Tensor | None


def make_deterministic(seed: int, *, warn_only: bool = False) -> None:
    """Seed every generator and make torch choose deterministic algorithms, on any device.

    Call it once, at the top of a notebook or script, before any work on a GPU.

    Args:
        seed: the seed for Python's ``random``, NumPy's global generator and torch (CPU and every
            CUDA device); an int in [0, 2**32).
        warn_only: passed to ``torch.use_deterministic_algorithms``: warn instead of raising
            when an operation has no deterministic implementation.

    Raises:
        TypeError: ``seed`` is not an int.
        ValueError: ``seed`` is outside [0, 2**32). Nothing has been changed then.

    Warns:
        RuntimeWarning: CUDA had already started and ``CUBLAS_WORKSPACE_CONFIG`` was not set:
            matrix products may have been run without it (PyTorch up to 2.8 then raises on the
            next one), so restart the kernel and call this first.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < _SEED_LIMIT:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")

    if not os.environ.get(ENV_CUBLAS_WORKSPACE):
        if _cuda_started():
            warnings.warn(
                f"CUDA started before {ENV_CUBLAS_WORKSPACE} was set; matrix products may already have run "
                "without it. Restart the kernel and call make_deterministic() before any GPU work.",
                RuntimeWarning,
                stacklevel=2,
            )
        os.environ[ENV_CUBLAS_WORKSPACE] = CUBLAS_WORKSPACE_CONFIG

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # the CPU generator and, lazily, every CUDA (and the MPS) generator

    torch.use_deterministic_algorithms(True, warn_only=warn_only)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def rng_state() -> RNGState:
    """The state of every random-number generator, to save in a checkpoint.

    CUDA and MPS generators are read only when those devices are available, so this never starts
    CUDA on a machine without it.
    """
    legacy = np.random.get_state(legacy=False)
    numpy_state = {
        "bit_generator": str(legacy["bit_generator"]),
        "state": {"key": [int(k) for k in legacy["state"]["key"]], "pos": int(legacy["state"]["pos"])},
        "has_gauss": int(legacy["has_gauss"]),
        "gauss": float(legacy["gauss"]),
    }
    return RNGState(
        python=random.getstate(),
        numpy=numpy_state,
        torch=torch.get_rng_state(),
        cuda=list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        mps=torch.mps.get_rng_state() if torch.backends.mps.is_available() else None,
    )


def set_rng_state(state: RNGState) -> None:
    """Restore every generator from :func:`rng_state`'s result (also after ``torch.save`` / ``torch.load``).

    CUDA states are restored device by device, for the devices this machine has; without CUDA
    they are skipped, so a checkpoint written on a GPU also resumes on a laptop (where dropout
    draws from the CPU generator, which is restored). The MPS state is skipped likewise.

    Raises:
        KeyError: ``state`` lacks one of the generators (it is not from :func:`rng_state`).
    """
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    cuda_states = state["cuda"]
    if cuda_states and torch.cuda.is_available():
        for index, device_state in enumerate(cuda_states[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state.cpu(), index)
    mps_state = state["mps"]
    if mps_state is not None and torch.backends.mps.is_available():
        torch.mps.set_rng_state(mps_state.cpu())


def _cuda_started() -> bool:
    """Has this process started CUDA? (``torch.cuda.is_initialized``; its own name, so tests can fake it.)"""
    return torch.cuda.is_initialized()
