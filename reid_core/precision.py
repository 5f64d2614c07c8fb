"""The numeric precision every OpenVINO model runs in, chosen once per process and stated.

OpenVINO silently computes in bf16 on CPUs with native bf16 (AVX512_BF16, AMX) and in f32 elsewhere, so the same
footage gives slightly different features, and a tracker or identity decision near its threshold can flip with
the CPU. `REID_PRECISION=f32` forces f32 everywhere (the reference: the same results on any x86 CPU, up to the
INT8 detector's kernels); `bf16` asks for bf16 (ignored by OpenVINO where the CPU lacks it); unset or `auto` takes
what the CPU does best. The quality tests run under the default and under forced f32.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from reid_core.errors import InputError

Precision = Literal["auto", "f32", "bf16"]  # $REID_PRECISION: the CPU's best, or forced
InferencePrecision = Literal["f32", "bf16"]  # what a compiled model is asked to compute in
CHOICES: tuple[Precision, ...] = ("auto", "f32", "bf16")
ENV = "REID_PRECISION"


@lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Native bf16 arithmetic (what OpenVINO's CPU plugin needs before it uses bf16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def requested() -> Precision:
    value = (os.environ.get(ENV) or "auto").strip().lower()
    if value not in CHOICES:
        raise InputError(f"{ENV}={value!r} is not one of {', '.join(CHOICES)}")
    return value


def inference_precision() -> InferencePrecision:
    """'f32' or 'bf16': the hint passed to every compiled model."""
    value = requested()
    if value == "auto":
        return "bf16" if cpu_has_bf16() else "f32"
    return value


def ov_config(**extra: str) -> dict[str, str]:
    """An OpenVINO CPU compile config with the process's precision (plus `extra` properties). Compiled models are
    cached on disk (OpenVINO keys the cache by model, device and config), so a new process loads them in a fraction
    of the compile time."""
    from reid_core.offline import cache_dir

    return {"INFERENCE_PRECISION_HINT": inference_precision(), "CACHE_DIR": str(cache_dir() / "openvino-compiled"),
            **extra}


def effective(compiled_model) -> str:
    """What a compiled model really computes in (OpenVINO reports f32 where bf16 was asked but is not native)."""
    value = compiled_model.get_property("INFERENCE_PRECISION_HINT")
    return getattr(value, "to_string", lambda: str(value))()
