"""Pick the compute device and seed every random number generator."""
from __future__ import annotations

import os
import random

import numpy as np

from .config import ENV_DEVICE

DEFAULT_SEED = 42


def get_device(prefer: str | None = None):
    """Return a ``torch.device``: ``prefer`` or ``$RECSYS_COURSE_DEVICE`` if given, else CUDA, then MPS, then CPU.

    Asking for a device that is not there raises an error that says what is available, never a silent
    fallback to the CPU.
    """
    import torch

    wanted = prefer or os.environ.get(ENV_DEVICE) or None
    if wanted in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(wanted)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {wanted!r}; use 'cpu', 'cuda', 'cuda:N', 'mps' or 'auto'") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {wanted!r} was asked for (argument or ${ENV_DEVICE}) but CUDA is not available "
                           f"here; {describe_devices()}. Use 'cpu' or 'auto'.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise RuntimeError(f"device {wanted!r} does not exist: {torch.cuda.device_count()} CUDA device(s) here")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError(f"device {wanted!r} was asked for but MPS is not available here; {describe_devices()}. "
                           "Use 'cpu' or 'auto'.")
    return device


def describe_devices() -> str:
    """One line saying which accelerators torch can see."""
    import torch

    parts = ["CPU"]
    if torch.cuda.is_available():
        parts.append(f"CUDA × {torch.cuda.device_count()} ({torch.cuda.get_device_name(0)})")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        parts.append("MPS")
    return "available: " + ", ".join(parts)


def seed_everything(seed: int = DEFAULT_SEED) -> int:
    """Seed Python, NumPy and torch (CPU and CUDA) and ask cuDNN for deterministic kernels; return the seed."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:  # torch is a dependency, but seeding must not be what fails
        return seed
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return seed


def set_threads(profile: str, device=None) -> int:
    """The CPU threads a notebook's models use, by profile; returns the number set.

    ``smoke`` and ``lesson`` on a CPU: one thread for PyTorch and for NumPy/SciPy's BLAS. The course's models
    are small at those sizes: their matrix products are too short to gain from a second thread, and on a
    machine busy with other work the threads mostly wait for each other (on the course's shared 2-core test
    machine one thread trained 5-15× faster); one thread also keeps results bit-for-bit repeatable.
    ``full``, or any run on a GPU: every core (torch's and BLAS' defaults are left alone), because the sizes
    are real and the CPU only feeds the GPU or does the heavy lifting itself.
    """
    from .profiles import check_profile

    check_profile(profile)
    device = get_device(device)
    if profile == "full" or device.type != "cpu":
        import torch

        return torch.get_num_threads()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
    return 1
