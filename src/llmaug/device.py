"""Where torch runs and in which precision: the one resolution of the `device` and `dtype` settings that every torch
component (the embedded teacher, MSP's generator, the MiniLM encoder, the fine-tune and causal-LM students) uses.

    device: auto | cpu | cuda | cuda:N     auto: the first CUDA GPU when torch sees one, else the CPU
    dtype:  auto | float32 | bfloat16 | float16
            auto: bfloat16 on a GPU that has it (float16 on older ones) and on CPUs with bf16 matrix instructions
            (AMX or AVX512-BF16), where it measured 1.8x faster than float32 for generation; float32 elsewhere

`DEVICE` and `DtypeName` are the option types (validated like every other option); `resolve_device` and `resolve_dtype`
turn a setting into the torch object, and `dtype_choice` into the concrete name a run records.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator

from llmaug.errors import ConfigError

if TYPE_CHECKING:
    import torch

_DEVICE_SETTING = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def _device_setting(value: str) -> str:
    if not _DEVICE_SETTING.match(value):
        raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {value!r}")
    return value


DEVICE = Annotated[str, AfterValidator(_device_setting)]  # auto | cpu | cuda | cuda:N
DtypeName = Literal["auto", "float32", "bfloat16", "float16"]


def resolve_device(setting: str = "auto", where: str = "device") -> "torch.device":
    """The torch device for a setting; a CUDA setting on a machine without that GPU is a ConfigError naming `where`."""
    import torch

    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(setting)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{setting} asked for, but torch sees no CUDA GPU here; use cpu or auto", where)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"{setting} asked for, but torch sees {torch.cuda.device_count()} CUDA GPU(s)", where)
    return device


def check_device(setting: str, where: str = "device") -> None:
    """Fail early (before any model loads) when a device setting cannot be met on this machine."""
    if setting != "auto" and setting != "cpu":
        resolve_device(setting, where)


def dtype_choice(setting: str = "auto", device: str = "auto") -> str:
    """The concrete dtype name for a setting on a device: `auto` resolved as the module docstring says."""
    if setting != "auto":
        return setting
    import torch

    if device.startswith("cuda") or device == "auto" and torch.cuda.is_available():
        # On a machine without the GPU (a config written for another one) assume a recent GPU: bf16.
        return "float16" if torch.cuda.is_available() and not torch.cuda.is_bf16_supported() else "bfloat16"
    return "bfloat16" if cpu_has_bf16() else "float32"


def resolve_dtype(setting: str = "auto", device: str = "auto") -> "torch.dtype":
    import torch

    return getattr(torch, dtype_choice(setting, device))


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (AMX or AVX512-BF16); `LLMAUG_CPU_BF16=0|1` overrides."""
    forced = os.environ.get("LLMAUG_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    import torch

    cpu = getattr(torch, "cpu", None)
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(cpu, probe, lambda: False)() for probe in probes)


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


IDLE_SAMPLE_SECONDS = 0.1


def idle_cores() -> int:
    """The usable cores that other processes leave idle now, at least one: each usable core's idle share over a
    short sample of /proc/stat (where there is none, the 1-minute load average, this process's own share counted
    as one core). torch's CPU threads slow down many times over when one of them has no core to itself (a MiniLM
    fit took 198 s on 2 threads instead of 3.6 s on 1 next to a niced 2-thread job), so a busy machine is better
    served by fewer threads. The sample is taken while this process waits, so its own past work does not count."""
    usable = usable_cores()
    idle = _idle_share(IDLE_SAMPLE_SECONDS)
    if idle is None:
        try:
            idle = usable - max(0.0, os.getloadavg()[0] - 1.0)
        except OSError:  # no load average on this platform
            return usable
    return max(1, min(usable, round(idle)))


def _cpu_times() -> dict[int, tuple[int, int]] | None:
    """Per CPU: (idle, total) clock ticks since boot from /proc/stat; None where there is no such file."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    times = {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            ticks = [int(value) for value in fields[:8]]  # user nice system idle iowait irq softirq steal
            times[int(name[3:])] = (ticks[3] + ticks[4], sum(ticks))
    return times or None


def _idle_share(seconds: float) -> float | None:
    """How many of this process's usable cores were idle over the next `seconds`, summed (e.g. 1.5)."""
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(seconds)
    after = _cpu_times() or {}
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else before.keys()
    shares = []
    for cpu in cpus:
        if cpu in before and cpu in after:
            total = after[cpu][1] - before[cpu][1]
            shares.append((after[cpu][0] - before[cpu][0]) / total if total > 0 else 1.0)
    return sum(shares) if shares else None


@contextlib.contextmanager
def cpu_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU threads set to `threads` for the block, then restored (None: left as they are)."""
    if threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
