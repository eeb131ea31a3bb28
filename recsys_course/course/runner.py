"""Execute the course notebooks with papermill and build the leaderboard (the course's main job)."""
from __future__ import annotations

import functools
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import ENV_DEVICE, ENV_PROFILE, ENV_TEXT_MODEL, REPO_DIR
from ..profiles import check_profile
from ..progress import progress
from . import leaderboard

NOTEBOOK_NAME = re.compile(r"^(\d{2})_[a-z0-9_]+\.ipynb$")


@dataclass
class Result:
    notebook: str
    seconds: float
    ok: bool
    error: str = ""


def discover(notebooks_dir: Path | str = REPO_DIR / "notebooks", select=None) -> list[Path]:
    """The course notebooks (``NN_name.ipynb``) in teaching order; ``select`` keeps those whose number or
    name matches (``["00", "01_evaluation"]``)."""
    folder = Path(notebooks_dir)
    found = sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))
    if not found:
        raise FileNotFoundError(f"no NN_name.ipynb notebooks in {folder}")
    if not select:
        return found
    chosen = []
    for want in select:
        want = str(want).removesuffix(".ipynb")
        hits = [p for p in found if p.stem == want or p.stem.split("_")[0] == want.zfill(2)]
        if not hits:
            raise ValueError(f"no notebook matches {want!r}; available: {[p.stem for p in found]}")
        chosen += [p for p in hits if p not in chosen]
    return sorted(chosen)


def _describe_failure(exc: Exception, notebook: Path) -> str:
    """Name the notebook and the failing cell (papermill's PapermillExecutionError carries both)."""
    cell = getattr(exc, "cell_index", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    if cell is None:
        return f"{notebook.name} failed before any cell ran: {ename}: {evalue}"
    first_line = (getattr(exc, "source", "") or "").strip().splitlines()[:1]
    starting = f", the cell starting {first_line[0]!r}" if first_line else ""
    return (f"{notebook.name} failed at In [{getattr(exc, 'exec_count', '?')}] (cell {cell} of the executed copy"
            f"{starting}): {ename}: {evalue}")


@functools.lru_cache(maxsize=1)
def _kernel_manager_class():
    """Kernels on IPC sockets (files) where the platform has them, not TCP ports: nothing listens on the network,
    and the kernel does not print its "running over TCP without encryption" warning into the course's output.
    (Built on first use: jupyter_client comes with the ``course`` extra, like papermill.)"""
    from jupyter_client.manager import AsyncKernelManager

    if os.name == "nt":  # no IPC transport on Windows
        return AsyncKernelManager

    # The sockets are files: keep them in a private temporary folder, not in the notebook's working directory
    # (a student's notebooks/ folder, where other tools list and copy files).
    sockets = Path(tempfile.mkdtemp(prefix="recsys-course-kernels-")) / "kernel"

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("transport", "ipc")
            kwargs.setdefault("ip", str(sockets))
            super().__init__(**kwargs)

    return IPCKernelManager


def execute(notebook: Path, output: Path, *, profile: str | None, cwd: Path, inject: bool = True) -> None:
    import papermill as pm

    pm.execute_notebook(str(notebook), str(output), parameters={"profile": profile} if inject else None,
                        kernel_name="python3", cwd=str(cwd), progress_bar=False, log_output=False,
                        kernel_manager_class=_kernel_manager_class())


def run(notebooks: list[Path], out_dir: Path, profile: str = "lesson", device: str | None = None,
        text_model: str | None = None, fail_fast: bool = False, echo=print) -> list[Result]:
    """Execute each notebook into ``out_dir`` (never over the originals) in ``profile``."""
    check_profile(profile)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.resolve() == n.parent.resolve() for n in notebooks):
        raise ValueError("the output folder is the notebooks folder: the course never overwrites notebooks/ "
                         "(maintainers refresh committed outputs with `recsys-course refresh`)")
    os.environ[ENV_PROFILE] = profile
    if device:
        os.environ[ENV_DEVICE] = device
    if text_model:
        os.environ[ENV_TEXT_MODEL] = text_model
    results = []
    bar = progress(notebooks, desc=f"notebooks ({profile})", unit="nb")
    for nb in bar:
        bar.set_postfix_str(nb.stem)
        start = time.perf_counter()
        try:
            execute(nb, out_dir / nb.name, profile=profile, cwd=nb.parent)
            results.append(Result(nb.name, time.perf_counter() - start, True))
        except Exception as exc:  # noqa: BLE001 — reported, then the exit code says it
            results.append(Result(nb.name, time.perf_counter() - start, False, _describe_failure(exc, nb)))
            if fail_fast:
                break
    bar.close()
    return results


def refresh(notebooks: list[Path], echo=print) -> list[Result]:
    """Maintainers: re-execute notebooks in place in the lesson profile (the committed outputs).

    No parameters are injected, so the notebook keeps its own ``profile = "lesson"`` cell; papermill's
    timing metadata is stripped so that a re-run only changes real outputs.
    """
    results = []
    for nb in notebooks:
        start = time.perf_counter()
        try:
            execute(nb, nb, profile=None, cwd=nb.parent, inject=False)
            ok, error = True, ""
        except Exception as exc:  # noqa: BLE001
            ok, error = False, _describe_failure(exc, nb)
        seconds = time.perf_counter() - start
        strip_run_metadata(nb, seconds if ok else None)
        results.append(Result(nb.name, seconds, ok, error))
        echo(f"{'ok ' if ok else 'FAILED'} {nb.name}: {seconds:.1f} s {error}")
    return results


def strip_run_metadata(path: Path, lesson_seconds: float | None) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb.get("metadata", {}).pop("papermill", None)
    for cell in nb.get("cells", []):
        for key in ("papermill", "execution"):
            cell.get("metadata", {}).pop(key, None)
    if lesson_seconds is not None:
        nb["metadata"]["recsys_course"] = {"lesson_seconds": round(lesson_seconds)}
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def timing_table(results: list[Result]) -> str:
    lines = [f"{'notebook':40s} {'seconds':>8s}  status"]
    for r in results:
        lines.append(f"{r.notebook:40s} {r.seconds:8.1f}  {'ok' if r.ok else 'FAILED'}")
    lines.append(f"{'total':40s} {sum(r.seconds for r in results):8.1f}")
    return "\n".join(lines)


def build_leaderboard(results: list[Result], out_dir: Path) -> tuple:
    executed = [Path(out_dir) / r.notebook for r in results if r.ok]
    board = leaderboard.collect(executed)
    paths = leaderboard.write(board, out_dir)
    return board, paths
