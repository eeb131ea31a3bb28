"""Set the course up in a virtual environment — the one implementation behind ``make setup`` and
``python -m recsys_course setup`` (Windows, macOS and Linux; no ``make`` needed).

Standard library only: it runs on a bare Python ≥ 3.10 from the repository root, before anything is installed.

1. **The venv** (default ``.venv``) is created if it does not exist, with pip.
2. **PyTorch.** A torch already importable in the venv is kept, whatever its build (a CUDA build you installed
   on purpose stays). Otherwise ``--torch`` (default ``torch==2.13.0``, the version the course is tested with) is
   installed from the index ``--torch-index`` picks:

   * ``auto`` (default): on Linux without an NVIDIA driver (no ``nvidia-smi``), PyTorch's CPU-only index — the
     CPU build is a few hundred MB, the default Linux wheel bundles CUDA libraries of several GB that such a
     machine cannot use; everywhere else (macOS, Windows, Linux with a GPU) the default index, whose wheels are
     the right ones there (CPU on macOS and Windows; CUDA on Linux);
   * ``cpu``: PyTorch's CPU-only index; ``pypi``: the default index (or whatever pip is configured to use);
     any other value is used as the index URL itself.
3. **The course** is installed editable with its extras (``--extras``: ``dev`` = notebooks + tests, the
   default; ``course`` = notebooks only).

Every command it runs is printed first, so a failure shows what to retry by hand.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import venv
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[2]
#: The torch the course is tested with; the Makefile's ``TORCH`` passes the same default.
DEFAULT_TORCH = "torch==2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
EXTRAS = ("dev", "course")


def venv_python(venv_dir: Path) -> Path:
    """The venv's interpreter: ``Scripts\\python.exe`` on Windows, ``bin/python`` elsewhere."""
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def venv_command(venv_dir: Path, name: str) -> Path:
    """A console script of the venv (``recsys-course``, ``jupyter``)."""
    folder = "Scripts" if os.name == "nt" else "bin"
    return venv_dir / folder / (f"{name}.exe" if os.name == "nt" else name)


def has_nvidia_driver() -> bool:
    return shutil.which("nvidia-smi") is not None


def torch_index(choice: str, system: str | None = None, gpu: bool | None = None) -> str | None:
    """The index URL to install torch from (``None`` = pip's default index), see the module docstring."""
    system = platform.system() if system is None else system
    if choice == "auto":
        gpu = has_nvidia_driver() if gpu is None else gpu
        return CPU_INDEX if system == "Linux" and not gpu else None
    if choice == "cpu":
        return CPU_INDEX
    if choice == "pypi":
        return None
    if "://" not in choice:
        raise ValueError(f"--torch-index {choice!r}: use auto, cpu, pypi or an index URL (https://...)")
    return choice


def _run(command: list[str], dry_run: bool) -> None:
    print("+ " + " ".join(str(c) for c in command), flush=True)
    if not dry_run:
        subprocess.run([str(c) for c in command], check=True)


def _has_torch(python: Path) -> bool:
    return subprocess.run([str(python), "-c", "import torch"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def plan(venv_dir: Path, *, torch: str = DEFAULT_TORCH, index: str = "auto", extras: str = "dev",
         has_torch: bool | None = None, system: str | None = None, gpu: bool | None = None) -> list[list[str]]:
    """The pip commands :func:`setup` runs after the venv exists (a test reads them without installing)."""
    if extras not in EXTRAS:
        raise ValueError(f"--extras {extras!r}: choose one of {list(EXTRAS)} (dev = notebooks + tests)")
    python = venv_python(venv_dir)
    commands = []
    has_torch = _has_torch(python) if has_torch is None else has_torch
    if not has_torch:
        url = torch_index(index, system, gpu)
        commands.append([str(python), "-m", "pip", "install", torch] + (["--index-url", url] if url else []))
    commands.append([str(python), "-m", "pip", "install", "-e", f"{REPO_DIR}[{extras}]"])
    return commands


def setup(venv_dir: Path | str = REPO_DIR / ".venv", *, torch: str = DEFAULT_TORCH, index: str = "auto",
          extras: str = "dev", dry_run: bool = False) -> Path:
    """Create the venv if needed, install torch (unless one is there) and the course. Returns the venv's python."""
    venv_dir = Path(venv_dir)
    python = venv_python(venv_dir)
    existed = python.exists()
    if existed:
        print(f"using the existing venv {venv_dir}", flush=True)
    else:
        print(f"+ python -m venv {venv_dir}", flush=True)
        if not dry_run:
            venv.EnvBuilder(with_pip=True).create(venv_dir)
    # a dry run of a venv not created yet cannot ask it for torch: it has none
    for command in plan(venv_dir, torch=torch, index=index, extras=extras,
                        has_torch=False if dry_run and not existed else None):
        _run(command, dry_run)
    if not dry_run:
        found = subprocess.run([str(python), "-c", "import torch; print(torch.__version__, 'with CUDA' if "
                                "torch.cuda.is_available() else 'without CUDA')"], capture_output=True, text=True)
        print(f"torch {found.stdout.strip()}", flush=True)
    run = venv_command(venv_dir, "recsys-course")
    print(f"\nready. Run the course:  {run} run\n"
          f"run the tests:         {python} -m pytest tests notebooks --nbval-lax --nbval-current-env\n"
          f"open the notebooks:    {venv_command(venv_dir, 'jupyter')} lab notebooks", flush=True)
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys_course setup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", type=Path, default=REPO_DIR / ".venv",
                        help="the virtual environment to create or update (default: .venv in the repository)")
    parser.add_argument("--torch", default=DEFAULT_TORCH,
                        help=f"the torch requirement when the venv has none (default {DEFAULT_TORCH}; 'torch' for "
                             "the newest)")
    parser.add_argument("--torch-index", default="auto",
                        help="auto (default: the CPU build on Linux without an NVIDIA driver), cpu, pypi, or a URL")
    parser.add_argument("--extras", choices=EXTRAS, default="dev",
                        help="dev = notebooks + tests (default), course = notebooks only")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    if sys.version_info < (3, 10):  # noqa: UP036 — this file may run on an older Python than the package needs
        print(f"the course needs Python ≥ 3.10; this is {platform.python_version()}", file=sys.stderr)
        return 2
    try:
        setup(args.venv, torch=args.torch, index=args.torch_index, extras=args.extras, dry_run=args.dry_run)
    except ValueError as exc:
        print(f"setup: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:
        print(f"setup: this command failed (exit {exc.returncode}); fix what it printed above and run setup again: "
              f"{' '.join(str(c) for c in exc.cmd)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
