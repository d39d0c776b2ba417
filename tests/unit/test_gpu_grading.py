"""GPU-aware grading without a GPU: the sandbox's bind list (a fake /dev and driver folder), GPU detection
from nvidia-smi's text, the kernel a GPU exercise gets on each worker, the device value, the authoring rule."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import nbformat
import pytest

from grader.authoring import declared_device, lint
from grader.errors import AuthoringError, SandboxUnavailable, UsageError
from grader.format import markers
from grader.grading import placement, results
from grader.grading.placement import Placement, kernel_setup
from grader.grading.results import GradingDevice, Result
from grader.sandbox import gpu
from grader.sandbox.command import bwrap_command, rlimits
from grader.sandbox.gpu import GpuAccess, GpuInfo
from grader.sandbox.interpreter import Interpreter
from grader.sandbox.jobs import SandboxJob
from grader.sandbox.limits import ResourceLimits
from grader.service.workers import stamp_device

H100 = GpuInfo(index=1, minor=3, uuid="GPU-1234", name="NVIDIA H100 80GB HBM3", capability="9.0", driver="550.54.15")
SIM_GPU = GradingDevice("gpu", "Simulated GPU", "9.0", "550.54.15", "12.4", host="sim")


@pytest.fixture
def fake_machine(tmp_path: Path) -> tuple[Path, Path]:
    """A /dev with two GPUs and the uvm nodes, and a driver folder outside /usr with the libraries and others."""
    dev, libs = tmp_path / "dev", tmp_path / "opt-nvidia-lib"
    dev.mkdir()
    libs.mkdir()
    for node in ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia0", "nvidia3", "nvidia-modeset", "sda"):
        (dev / node).touch()
    (libs / "libcuda.so.550.54.15").touch()
    (libs / "libcuda.so.1").symlink_to("libcuda.so.550.54.15")
    (libs / "libnvidia-ml.so.550.54.15").touch()
    (libs / "libssl.so.3").touch()
    return dev, libs


def test_a_gpu_job_sees_only_its_gpu_node_the_control_nodes_and_the_driver_libraries(fake_machine) -> None:
    """Is the bind list exactly nvidiactl, nvidia-uvm(-tools), the job's own /dev/nvidiaN and libcuda/libnvidia-*?"""
    dev, libs = fake_machine
    access = gpu.gpu_access(H100, dev=dev, ldconfig_text="", lib_dirs=[libs])
    assert access.devices == tuple(str(dev / n) for n in ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia3"))
    assert str(dev / "nvidia0") not in access.devices  # the other GPU is not there at all
    names = {Path(lib).name for lib in access.libraries}
    assert names == {"libcuda.so.1", "libcuda.so.550.54.15", "libnvidia-ml.so.550.54.15"}
    assert access.env == {"CUDA_VISIBLE_DEVICES": "GPU-1234"}
    args = access.bwrap_args()
    assert args.count("--dev-bind") == 4 and "--bind" not in args  # device nodes: device access, nothing writable
    assert all(args[i + 1] in access.libraries for i, a in enumerate(args) if a == "--ro-bind")  # libraries read-only
    assert args.count("--ro-bind") == 3  # outside /usr: bound one by one


def test_driver_libraries_come_from_ldconfig_too_and_those_under_usr_are_not_bound_again(tmp_path: Path) -> None:
    """Does ldconfig -p's list count, and are libraries under /usr left to /usr's own read-only bind?"""
    lib = tmp_path / "libnvidia-ptxjitcompiler.so.1"
    lib.touch()
    text = (
        f"\tlibnvidia-ptxjitcompiler.so.1 (libc6,x86-64) => {lib}\n\tlibz.so.1 (libc6,x86-64) => /usr/lib/libz.so.1\n"
    )
    assert gpu.driver_libraries(ldconfig_text=text, lib_dirs=[]) == (str(lib),)
    access = GpuAccess(devices=(), libraries=("/usr/lib/x86_64-linux-gnu/libcuda.so.1", str(lib)))
    assert access.bound_libraries == (str(lib),)


def test_a_missing_driver_node_is_a_clear_refusal(tmp_path: Path) -> None:
    """Without /dev/nvidiactl or the GPU's node, does the worker say the driver is not loaded?"""
    with pytest.raises(SandboxUnavailable, match=r"nvidiactl.*NVIDIA driver loaded"):
        gpu.gpu_access(H100, dev=tmp_path, ldconfig_text="", lib_dirs=[])


def test_gpus_are_read_from_nvidia_smi_with_their_device_minor_from_proc(tmp_path: Path) -> None:
    """Do index, UUID, name, capability, driver, CUDA and /dev/nvidiaN's N come from the worker's own driver?"""
    info = tmp_path / "0000:3b:00.0"
    info.mkdir()
    (info / "information").write_text("Model: NVIDIA H100\nDevice Minor: \t 5\n")
    csv = "0, GPU-abc, NVIDIA H100 80GB HBM3, 9.0, 550.54.15, 00000000:3B:00.0\n"
    banner = "| NVIDIA-SMI 550.54.15    Driver Version: 550.54.15    CUDA Version: 12.4     |"
    (found,) = gpu.parse_nvidia_smi(csv, banner, proc_dir=tmp_path)
    assert found == GpuInfo(0, 5, "GPU-abc", "NVIDIA H100 80GB HBM3", "9.0", "550.54.15", "12.4")

    def no_smi(*_args: object, **_kwargs: object) -> None:
        raise FileNotFoundError("nvidia-smi")

    assert gpu.detect_gpus(run=no_smi) == ()  # type: ignore[arg-type]


def test_doctor_says_gpu_jobs_go_to_cpu_without_a_gpu_and_what_a_job_would_see_with_one(fake_machine) -> None:
    dev, _libs = fake_machine
    assert gpu.gpu_report(()) == [("GPU for GPU exercises", True, gpu.NO_GPU)]
    ((name, ok, detail),) = gpu.gpu_report((H100,), dev=dev, ldconfig_text="")
    assert ok and "NVIDIA H100" in name and str(dev / "nvidia3") in detail and "CUDA_VISIBLE_DEVICES=GPU-1234" in detail


def test_the_sandbox_command_binds_the_gpu_and_sets_the_kernel_environment(tmp_path: Path) -> None:
    """Do the GPU binds and the kernel's extra variables reach bubblewrap's command line, before /dev goes read-only?"""
    access = GpuAccess(("/dev/nvidiactl", "/dev/nvidia3"), (), {"CUDA_VISIBLE_DEVICES": "GPU-1234"})
    interp = Interpreter(Path("/usr/bin/python3"), ())
    (tmp_path / "ipc").mkdir()
    cmd = bwrap_command(
        job=tmp_path,
        ipc_dir=tmp_path / "ipc",
        uid=61000,
        limits=ResourceLimits(),
        interpreter=interp,
        seccomp_fd=None,
        kernel_args=[],
        gpu=access,
        env={markers.ENV_KERNEL_PROFILE: "smoke"},
    )
    text = " ".join(cmd)
    assert "--dev-bind /dev/nvidia3 /dev/nvidia3" in text and text.index("--dev-bind") < text.index("--remount-ro /dev")
    assert "--setenv CUDA_VISIBLE_DEVICES GPU-1234" in text and "--setenv MLCOURSE_PROFILE smoke" in text
    plain = " ".join(bwrap_command(**{**_args(tmp_path, interp)}))
    assert "nvidia" not in plain and "CUDA_VISIBLE_DEVICES" not in plain  # a CPU job sees no GPU at all


def _args(tmp_path: Path, interp: Interpreter) -> dict:
    return {
        "job": tmp_path,
        "ipc_dir": tmp_path / "ipc",
        "uid": 61000,
        "limits": ResourceLimits(),
        "interpreter": interp,
        "seccomp_fd": None,
        "kernel_args": [],
    }


def test_a_gpu_job_has_no_address_space_limit_and_travels_to_the_launcher(tmp_path: Path) -> None:
    """Is RLIMIT_AS lifted only for GPU jobs, and do the GPU and environment survive the job spec and argv?"""
    address = {which: soft for which, soft, _ in rlimits(ResourceLimits(), gpu=True)}[resource.RLIMIT_AS]
    assert address == resource.RLIM_INFINITY
    assert {w: s for w, s, _ in rlimits(ResourceLimits())}[resource.RLIMIT_AS] == 3072 * 1024 * 1024
    access = GpuAccess(("/dev/nvidia3",), ("/opt/libcuda.so.1",), {"CUDA_VISIBLE_DEVICES": "GPU-1"})
    job = SandboxJob(tmp_path, 61000, ResourceLimits(), access, ((markers.ENV_KERNEL_COMPILE, "0"),))
    assert SandboxJob.from_spec(job.spec()) == job
    argv = job.kernel_argv()
    assert GpuAccess.from_json(argv[argv.index("--gpu") + 1]) == access
    assert json.loads(argv[argv.index("--env") + 1]) == {markers.ENV_KERNEL_COMPILE: "0"}


def test_what_a_gpu_exercises_kernel_gets_on_each_worker() -> None:
    """cpu exercise: nothing; gpu on a GPU worker: full; gpu on a CPU: smoke, no torch.compile, and a note."""
    cpu = Placement(GradingDevice("cpu", "Test CPU"))
    assert kernel_setup("cpu", cpu) == kernel_setup("cpu", Placement(SIM_GPU)) == placement.KernelSetup()
    on_gpu = kernel_setup("gpu", Placement(SIM_GPU, (H100,)))
    assert on_gpu.variant == "gpu" and on_gpu.env == {"MLCOURSE_PROFILE": "full"} and on_gpu.gpus == (H100,)
    assert not on_gpu.note
    fallback = kernel_setup("gpu", cpu)
    assert fallback.env == {"MLCOURSE_PROFILE": "smoke", "MLCOURSE_COMPILE": "0"} and fallback.gpus == ()
    assert fallback.note == ("graded on CPU at smoke size: no GPU worker was available; torch.compile was skipped")


def test_a_gpu_worker_on_a_machine_without_a_gpu_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(placement, "detect_gpus", lambda: ())
    with pytest.raises(UsageError, match=r"no NVIDIA GPU found.*without --gpu"):
        placement.worker_placement(gpu=True)
    assert placement.worker_placement(gpu=False).device.kind == "cpu"


def test_the_recorded_device_is_the_workers_whatever_the_grade_function_said() -> None:
    """A result claiming a GPU (what a learner's kernel could print) gets the worker's own device."""
    claimed = Result("x", "nb.ipynb", "graded", 1.0, 1.0, 0.1, device="NVIDIA H100 (spoofed)")
    stamped = stamp_device(claimed, Placement(GradingDevice("cpu", "Test CPU")), "gpu", told=False)
    assert stamped.device == "CPU (Test CPU)" and stamped.device_info == GradingDevice("cpu", "Test CPU")
    assert stamped.wanted_device == "gpu" and stamped.device_note == results.cpu_fallback_note(results.NO_GPU_WORKER)
    data = json.loads(results.render_json(stamped))
    assert data["device_info"]["kind"] == "cpu" and "H100" not in json.dumps(data)
    assert "graded on CPU (Test CPU)" in results.render_text(stamped)
    assert "graded on CPU at smoke size" in results.render_html([stamped])
    on_gpu = stamp_device(claimed, Placement(SIM_GPU), "gpu", told=False)
    assert on_gpu.device == "Simulated GPU (compute 9.0, driver 550.54.15, CUDA 12.4)" and not on_gpu.device_note


def test_an_unknown_device_is_an_authoring_error_naming_the_allowed_ones() -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata[markers.META_GRADER] = {markers.META_DEVICE: "tpu"}
    with pytest.raises(AuthoringError, match="'tpu'; use 'cpu' or 'gpu'"):
        declared_device(nb, path="solutions/x.ipynb")
    with pytest.raises(AuthoringError, match=r"grader\.device is 'tpu'"):
        lint(nb, path="solutions/x.ipynb")
    nb.metadata[markers.META_GRADER] = {markers.META_DEVICE: "gpu"}
    assert declared_device(nb, path="x") == "gpu"
    nb.metadata = {}
    assert declared_device(nb, path="x") == "cpu"
