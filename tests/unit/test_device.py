"""mlcourse.device: the device order, overrides, bf16 nativeness and the fingerprint.

No GPU is needed: CUDA and MPS availability are monkeypatched.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest
import torch

from mlcourse import device as dev


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    """Pretend to be a machine with the given accelerators (and no MLCOURSE_DEVICE set)."""
    monkeypatch.delenv(dev.ENV_DEVICE, raising=False)

    def pretend(*, cuda: bool = False, mps: bool = False, cuda_count: int = 1) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda_count if cuda else 0)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return pretend


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [
        (True, True, "cuda"),
        (True, False, "cuda"),
        (False, True, "mps"),
        (False, False, "cpu"),
    ],
)
def test_automatic_choice_follows_cuda_mps_cpu(machine, cuda: bool, mps: bool, expected: str) -> None:
    """Is the best available device chosen when nothing is asked for?"""
    machine(cuda=cuda, mps=mps)
    assert dev.select_device() == torch.device(expected)
    assert dev.select_device("auto") == torch.device(expected)


@pytest.mark.parametrize(
    ("cuda", "mps", "expected"),
    [
        (True, True, ("cuda", "mps", "cpu")),
        (False, True, ("mps", "cpu")),
        (False, False, ("cpu",)),
    ],
)
def test_available_devices_lists_in_preference_order(machine, cuda: bool, mps: bool, expected) -> None:
    """Does the list of available devices keep the preference order and always end with cpu?"""
    machine(cuda=cuda, mps=mps)
    assert dev.available_devices() == expected


@pytest.mark.parametrize(
    ("prefer", "expected"),
    [
        ("cpu", "cpu"),
        ("mps", "mps"),
        ("cuda", "cuda"),
        ("cuda:1", "cuda:1"),
        (torch.device("cpu"), "cpu"),
    ],
)
def test_explicit_preference_overrides_the_order(machine, prefer, expected: str) -> None:
    """Does an explicit request win over the automatic order when the device exists?"""
    machine(cuda=True, mps=True, cuda_count=2)
    assert dev.select_device(prefer) == torch.device(expected)


def test_environment_variable_overrides_the_order(machine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Does MLCOURSE_DEVICE change the automatic choice?"""
    machine(cuda=True, mps=False)
    monkeypatch.setenv(dev.ENV_DEVICE, "cpu")
    assert dev.select_device() == torch.device("cpu")


def test_argument_wins_over_environment_variable(machine, monkeypatch: pytest.MonkeyPatch) -> None:
    """When both are given, does the explicit argument win over MLCOURSE_DEVICE?"""
    machine(cuda=True, mps=False)
    monkeypatch.setenv(dev.ENV_DEVICE, "cpu")
    assert dev.select_device("cuda") == torch.device("cuda")


@pytest.mark.parametrize("value", ["", "  ", "auto"])
def test_blank_or_auto_environment_variable_means_automatic(machine, monkeypatch, value: str) -> None:
    """Is an empty or 'auto' MLCOURSE_DEVICE treated as not set?"""
    machine(cuda=False, mps=True)
    monkeypatch.setenv(dev.ENV_DEVICE, value)
    assert dev.select_device() == torch.device("mps")


@pytest.mark.parametrize(
    ("cuda", "mps", "prefer", "listed"),
    [
        (False, False, "cuda", "available: cpu"),
        (False, False, "mps", "available: cpu"),
        (False, True, "cuda", "available: mps, cpu"),
        (True, False, "mps", "available: cuda, cpu"),
    ],
)
def test_unavailable_device_error_lists_what_is_available(machine, cuda, mps, prefer: str, listed: str) -> None:
    """Does asking for a missing device fail, naming the devices that do exist?"""
    machine(cuda=cuda, mps=mps)
    with pytest.raises(ValueError, match=listed) as info:
        dev.select_device(prefer)
    assert repr(prefer) in str(info.value)


def test_unavailable_device_from_environment_names_the_variable(machine, monkeypatch) -> None:
    """Does the error say the request came from MLCOURSE_DEVICE, so the learner knows what to unset?"""
    machine(cuda=False, mps=False)
    monkeypatch.setenv(dev.ENV_DEVICE, "cuda")
    with pytest.raises(ValueError, match=dev.ENV_DEVICE):
        dev.select_device()


def test_missing_cuda_index_is_an_error(machine) -> None:
    """Is cuda:3 refused on a machine with two GPUs?"""
    machine(cuda=True, cuda_count=2)
    with pytest.raises(ValueError, match="2 CUDA device"):
        dev.select_device("cuda:3")


@pytest.mark.parametrize("prefer", ["gpu", "cuda:x", "tpu"])
def test_unknown_device_name_is_a_value_error(machine, prefer: str) -> None:
    """Is a misspelt device name a ValueError rather than torch's RuntimeError?"""
    machine()
    with pytest.raises(ValueError, match=r"available|device name"):
        dev.select_device(prefer)


@pytest.mark.parametrize(
    ("capability", "native"),
    [
        ((7, 0), False),  # V100
        ((7, 5), False),  # T4: is_bf16_supported() may say True, but it is emulated
        ((8, 0), True),  # A100
        ((8, 6), True),  # A10, RTX 30xx
        ((8, 9), True),  # L4
        ((9, 0), True),  # H100
        ((10, 0), True),
        (None, False),  # not a CUDA device
    ],
)
def test_bf16_native_by_compute_capability(capability, native: bool) -> None:
    """Is bf16 called native exactly from compute capability 8.0 on?"""
    assert dev.bf16_native_for_capability(capability) is native


def test_bf16_is_not_native_on_cpu(machine) -> None:
    """Does the CPU answer False even if torch claims bf16 support?"""
    machine()
    assert dev.bf16_native("cpu") is False
    assert dev.bf16_native() is False


@pytest.mark.parametrize(("capability", "native"), [((7, 5), False), ((8, 0), True)])
def test_bf16_native_asks_the_gpu_for_its_capability(machine, monkeypatch, capability, native: bool) -> None:
    """On CUDA, does the answer come from the GPU's compute capability, not is_bf16_supported()?"""
    machine(cuda=True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert dev.bf16_native("cuda") is native


EXPECTED_KEYS = {"device", "name", "torch", "cuda", "capability", "bf16_native", "cpu_count", "python"}


def test_cpu_fingerprint(machine) -> None:
    """Does the CPU fingerprint name the CPU, leave the CUDA fields empty, and survive JSON?"""
    machine()
    fingerprint = dev.device_fingerprint("cpu")
    assert set(fingerprint) == EXPECTED_KEYS
    assert fingerprint["device"] == "cpu"
    assert fingerprint["name"]
    assert fingerprint["torch"] == torch.__version__
    assert fingerprint["cuda"] is None
    assert fingerprint["capability"] is None
    assert fingerprint["bf16_native"] is False
    assert fingerprint["cpu_count"] >= 1
    assert fingerprint["python"] == platform.python_version()
    assert json.loads(json.dumps(fingerprint)) == fingerprint


def test_cuda_fingerprint(machine, monkeypatch) -> None:
    """Does a CUDA fingerprint carry the GPU name, CUDA version and capability?"""
    machine(cuda=True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 6))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A10")
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    fingerprint = dev.device_fingerprint()
    assert fingerprint["device"] == "cuda"
    assert fingerprint["name"] == "NVIDIA A10"
    assert fingerprint["cuda"] == "12.8"
    assert fingerprint["capability"] == "8.6"
    assert fingerprint["bf16_native"] is True


def test_importing_mlcourse_does_not_import_torch() -> None:
    """Is `import mlcourse` light (torch comes in only with the modules that need it)?"""
    code = "import sys, mlcourse, mlcourse.tickets, mlcourse.measure; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_run_profile_follows_the_device_unless_the_grader_says(machine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Full on CUDA, smoke elsewhere; MLCOURSE_PROFILE (set by the grader) wins; a typo is an error."""
    monkeypatch.delenv(dev.ENV_PROFILE, raising=False)
    machine(cuda=True)
    assert dev.run_profile() == "full"
    machine(cuda=False)
    assert dev.run_profile() == "smoke"
    monkeypatch.setenv(dev.ENV_PROFILE, "FULL")
    assert dev.run_profile() == "full"
    monkeypatch.setenv(dev.ENV_PROFILE, "fast")
    with pytest.raises(ValueError, match="not a profile"):
        dev.run_profile()


def test_compile_model_is_skipped_when_the_grader_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLCOURSE_COMPILE=0 returns the module itself and False; otherwise torch.compile's wrapper and True."""
    model = torch.nn.Linear(2, 1)
    monkeypatch.setenv(dev.ENV_COMPILE, "0")
    assert dev.compile_model(model) == (model, False)
    monkeypatch.delenv(dev.ENV_COMPILE)
    compiled, done = dev.compile_model(model)  # lazy: nothing compiles until the first call
    assert done and compiled is not model


def test_the_grader_and_mlcourse_spell_the_kernel_variables_alike() -> None:
    from grader.format import markers

    assert (markers.ENV_KERNEL_COMPILE, markers.ENV_KERNEL_PROFILE) == (dev.ENV_COMPILE, dev.ENV_PROFILE)
    assert set(dev.PROFILES) == set(markers.PROFILES)
