"""mlcourse.reproducibility: one call makes a run deterministic, and the RNG state survives a checkpoint.

Real torch on the CPU. The CUDA and MPS branches are tested without a GPU: availability and the
device functions are monkeypatched, to check that the cuBLAS variable is set before torch is
touched and that nothing of CUDA is called where CUDA is not available.
"""

from __future__ import annotations

import io
import os
import random
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch

from mlcourse import reproducibility as rep


@pytest.fixture(autouse=True)
def restore_global_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without CUBLAS_WORKSPACE_CONFIG and leaves torch's switches and generators as it found them."""
    monkeypatch.delenv(rep.ENV_CUBLAS_WORKSPACE, raising=False)
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark, cudnn_deterministic = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    python, numpy_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = benchmark, cudnn_deterministic
    random.setstate(python)
    np.random.set_state(numpy_state)
    torch.set_rng_state(cpu)


def _draws() -> tuple[float, float, list[float]]:
    """One draw from each generator the helpers handle: Python, NumPy, torch's CPU generator."""
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


@contextmanager
def warnings_as_errors() -> Iterator[None]:
    """Any warning inside fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _forbid(monkeypatch: pytest.MonkeyPatch, module: Any, *names: str) -> None:
    """Make these functions fail the test if anything calls them."""
    for name in names:

        def refuse(*args: object, _name: str = name, **kwargs: object) -> None:
            raise AssertionError(f"{_name} was called although the device is not available")

        monkeypatch.setattr(module, name, refuse)


def _no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend a machine without CUDA and MPS, whose device functions must not be called."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    _forbid(monkeypatch, torch.cuda, "get_rng_state_all", "set_rng_state_all", "set_rng_state", "get_rng_state")
    _forbid(monkeypatch, torch.mps, "get_rng_state", "set_rng_state")


# --- make_deterministic ---------------------------------------------------------------------


def test_sets_the_cublas_workspace_when_unset() -> None:
    """Is CUBLAS_WORKSPACE_CONFIG set to a value cuBLAS accepts for deterministic work?"""
    rep.make_deterministic(0)
    assert os.environ[rep.ENV_CUBLAS_WORKSPACE] == ":4096:8"


def test_keeps_a_cublas_workspace_already_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    """Does a value the user set (the smaller ':16:8') stay as it is?"""
    monkeypatch.setenv(rep.ENV_CUBLAS_WORKSPACE, ":16:8")
    rep.make_deterministic(0)
    assert os.environ[rep.ENV_CUBLAS_WORKSPACE] == ":16:8"


def test_cublas_workspace_is_set_before_torch_is_seeded_or_switched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Is the variable already in the environment when torch seeds CUDA and turns deterministic mode on?"""
    seen: list[tuple[str, str | None]] = []
    real_seed, real_switch = torch.manual_seed, torch.use_deterministic_algorithms

    def seed(value: int) -> Any:
        seen.append(("manual_seed", os.environ.get(rep.ENV_CUBLAS_WORKSPACE)))
        return real_seed(value)

    def switch(mode: bool, *, warn_only: bool = False) -> None:
        seen.append(("use_deterministic_algorithms", os.environ.get(rep.ENV_CUBLAS_WORKSPACE)))
        real_switch(mode, warn_only=warn_only)

    monkeypatch.setattr(torch, "manual_seed", seed)
    monkeypatch.setattr(torch, "use_deterministic_algorithms", switch)
    rep.make_deterministic(5)
    assert seen == [("manual_seed", ":4096:8"), ("use_deterministic_algorithms", ":4096:8")]


def test_turns_on_deterministic_algorithms_and_cudnn_switches() -> None:
    """Are deterministic algorithms on (raising, not warning), cuDNN autotuning off and cuDNN deterministic?"""
    torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = True, False
    rep.make_deterministic(0)
    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.benchmark is False
    assert torch.backends.cudnn.deterministic is True


def test_warn_only_is_passed_to_torch() -> None:
    """Does warn_only=True make torch warn instead of raising for operations without a deterministic version?"""
    rep.make_deterministic(0, warn_only=True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled()


def test_the_same_seed_repeats_every_generator() -> None:
    """Do Python, NumPy and torch draw the same numbers after the same seed, and other numbers after another?"""
    rep.make_deterministic(123)
    first = _draws()
    rep.make_deterministic(123)
    again = _draws()
    rep.make_deterministic(124)
    other = _draws()
    assert first == again
    assert all(a != b for a, b in zip(first, other, strict=True)), "each generator should change with the seed"


def test_seeds_each_generator_itself() -> None:
    """Is each of the three generators seeded, not only one of them? (scramble one at a time)"""
    rep.make_deterministic(7)
    reference = _draws()
    for scramble in (lambda: random.seed(99), lambda: np.random.seed(99), lambda: torch.manual_seed(99)):
        scramble()
        rep.make_deterministic(7)
        assert _draws() == reference


def test_does_not_start_cuda_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine without CUDA, is no CUDA generator read or written, and no warning given?"""
    _no_gpu(monkeypatch)
    monkeypatch.setattr(rep, "_cuda_started", lambda: False)
    with warnings_as_errors():
        rep.make_deterministic(0)
    assert os.environ[rep.ENV_CUBLAS_WORKSPACE] == ":4096:8"


def test_does_not_initialise_cuda() -> None:
    """Does make_deterministic leave CUDA unstarted? (On a CUDA machine, seeding must stay lazy.)"""
    started = torch.cuda.is_initialized()
    rep.make_deterministic(0)
    assert torch.cuda.is_initialized() == started


def test_cuda_started_asks_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Is the warning's question the one torch answers, whether CUDA has been initialised?"""
    for answer in (True, False):
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda answer=answer: answer)
        assert rep._cuda_started() is answer


def test_warns_when_cuda_started_before_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """If CUDA is already running without the variable, does it say so (and still set the variable)?"""
    monkeypatch.setattr(rep, "_cuda_started", lambda: True)
    with pytest.warns(RuntimeWarning, match="before any GPU work"):
        rep.make_deterministic(0)
    assert os.environ[rep.ENV_CUBLAS_WORKSPACE] == ":4096:8"


def test_no_warning_when_the_variable_was_set_before_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the variable set before CUDA started, is there nothing to warn about?"""
    monkeypatch.setenv(rep.ENV_CUBLAS_WORKSPACE, ":4096:8")
    monkeypatch.setattr(rep, "_cuda_started", lambda: True)
    with warnings_as_errors():
        rep.make_deterministic(0)


@pytest.mark.parametrize(
    ("seed", "error"), [(-1, ValueError), (2**32, ValueError), (1.5, TypeError), (True, TypeError)]
)
def test_refuses_a_bad_seed_before_changing_anything(seed: Any, error: type[Exception]) -> None:
    """Is a seed NumPy cannot take refused up front, with the environment and the generators untouched?"""
    torch.use_deterministic_algorithms(False)
    before = random.getstate()
    with pytest.raises(error, match="seed"):
        rep.make_deterministic(seed)
    assert rep.ENV_CUBLAS_WORKSPACE not in os.environ
    assert not torch.are_deterministic_algorithms_enabled()
    assert random.getstate() == before


# --- rng_state / set_rng_state --------------------------------------------------------------


@pytest.mark.parametrize("which", [0, 1, 2], ids=["python", "numpy", "torch"])
def test_restoring_the_state_repeats_each_generator(which: int) -> None:
    """After set_rng_state, does each generator draw again what it drew right after rng_state?"""
    torch.manual_seed(0)
    saved = rep.rng_state()
    expected = _draws()
    _draws()  # move every generator on
    rep.set_rng_state(saved)
    assert _draws()[which] == expected[which]


def test_restored_dropout_draws_the_same_mask() -> None:
    """Does a dropout layer in train mode draw the same mask after the state is restored?"""
    dropout = torch.nn.Dropout(0.5).train()
    ones = torch.ones(64)
    saved = rep.rng_state()
    first = dropout(ones)
    assert not torch.equal(dropout(ones), first), "two masks in a row should differ"
    rep.set_rng_state(saved)
    assert torch.equal(dropout(ones), first)


def test_state_survives_torch_save_and_a_weights_only_load() -> None:
    """Can a checkpoint holding the state be read with weights_only=True and still restore the draws?"""
    saved = rep.rng_state()
    expected = _draws()
    buffer = io.BytesIO()
    torch.save({"rng": saved}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, map_location="cpu", weights_only=True)["rng"]
    _draws()
    rep.set_rng_state(loaded)
    assert _draws() == expected


def test_state_holds_no_device_generators_without_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without CUDA or MPS, is nothing of them read (and the state says so)?"""
    _no_gpu(monkeypatch)
    state = rep.rng_state()
    assert state["cuda"] == []
    assert state["mps"] is None
    assert set(state) == {"python", "numpy", "torch", "cuda", "mps"}


def test_gpu_checkpoint_restores_on_a_machine_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """A state with CUDA generators, restored without CUDA: are those skipped and the CPU generator restored?"""
    saved = rep.rng_state()
    saved["cuda"] = [torch.zeros(16, dtype=torch.uint8)]
    saved["mps"] = torch.zeros(16, dtype=torch.uint8)
    expected = torch.rand(3)
    _no_gpu(monkeypatch)
    rep.set_rng_state(saved)
    assert torch.equal(torch.rand(3), expected)


def test_cuda_generators_are_saved_and_restored_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """With (pretended) CUDA devices, is every device's generator captured, and each restored to its device?"""
    states = [torch.full((8,), i, dtype=torch.uint8) for i in range(2)]
    restored: list[tuple[int, list[int]]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [s.clone() for s in states])
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: restored.append((device, s.tolist())))
    state = rep.rng_state()
    assert [s.tolist() for s in state["cuda"]] == [s.tolist() for s in states]
    rep.set_rng_state(state)
    assert restored == [(0, [0] * 8), (1, [1] * 8)]


def test_cuda_generators_beyond_this_machines_devices_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A state from two GPUs restored on one: is only device 0 set (no error for a device that is not there)?"""
    restored: list[int] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: restored.append(device))
    state = _cpu_only_state()
    state["cuda"] = [torch.zeros(8, dtype=torch.uint8), torch.ones(8, dtype=torch.uint8)]
    rep.set_rng_state(state)
    assert restored == [0]


def test_mps_generator_is_saved_and_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """With (pretended) MPS, is its generator captured and restored?"""
    restored: list[list[int]] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: torch.full((4,), 9, dtype=torch.uint8))
    monkeypatch.setattr(torch.mps, "set_rng_state", lambda s: restored.append(s.tolist()))
    state = rep.rng_state()
    assert state["mps"] is not None and state["mps"].tolist() == [9] * 4
    rep.set_rng_state(state)
    assert restored == [[9] * 4]


def _cpu_only_state() -> rep.RNGState:
    """rng_state() as a machine without CUDA or MPS returns it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.cuda, "is_available", lambda: False)
        patch.setattr(torch.backends.mps, "is_available", lambda: False)
        return rep.rng_state()
