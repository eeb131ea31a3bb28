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

from ..config import ENV_DATASET, ENV_DEVICE, ENV_PRECISION, ENV_PROFILE, ENV_TEXT_MODEL, REPO_DIR
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
    peak_mib: float | None = None  # the kernel's peak resident memory (None where it cannot be measured)


def discover(notebooks_dir: Path | str = REPO_DIR / "notebooks", select=None) -> list[Path]:
    """The course notebooks (``NN_name.ipynb``) in teaching order; ``select`` keeps those whose number or
    name matches (``["00", "01_evaluation"]``)."""
    from ..config import in_a_clone, outside_a_clone_advice

    folder = Path(notebooks_dir)
    found = sorted(p for p in folder.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))
    if not found:
        if folder.resolve() == (REPO_DIR / "notebooks").resolve() and not in_a_clone():
            raise FileNotFoundError(f"no notebooks in {folder}: {outside_a_clone_advice()}")
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
        text_model: str | None = None, fail_fast: bool = False, echo=print, dataset: str | None = None,
        precision: str | None = None) -> list[Result]:
    """Execute each notebook into ``out_dir`` (never over the originals) in ``profile``.

    ``device``, ``text_model``, ``dataset`` (instead of the profile's own, e.g. ``synthetic-1m``) and
    ``precision`` reach the notebooks' kernels as environment variables.
    """
    check_profile(profile)
    if dataset:
        from ..data import check_dataset

        dataset = check_dataset(dataset)  # a DataError (a ValueError) names the choices
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
    if dataset:
        os.environ[ENV_DATASET] = dataset
    if precision:
        os.environ[ENV_PRECISION] = precision
    results = []
    bar = progress(notebooks, desc=f"notebooks ({profile})", unit="nb")
    for nb in bar:
        bar.set_postfix_str(nb.stem)
        start = time.perf_counter()
        memory = PeakMemory()
        try:
            with memory:
                execute(nb, out_dir / nb.name, profile=profile, cwd=nb.parent)
            results.append(Result(nb.name, time.perf_counter() - start, True, peak_mib=memory.peak_mib))
        except Exception as exc:  # noqa: BLE001 — reported, then the exit code says it
            results.append(Result(nb.name, time.perf_counter() - start, False, _describe_failure(exc, nb),
                                  peak_mib=memory.peak_mib))
            if fail_fast:
                break
    bar.close()
    return results


class PeakMemory:
    """The peak resident memory (MiB) of this process's child processes — the notebook's kernel — while the
    ``with`` block runs. Linux only (``/proc``): each child's ``VmHWM`` (its own high-water mark) is polled twice
    a second; ``peak_mib`` stays None elsewhere."""

    def __init__(self, interval: float = 0.5):
        self.interval, self.peak_mib = interval, None
        self._stop = None

    @staticmethod
    def _children() -> list[str]:
        pids = []
        for task in Path("/proc/self/task").glob("*/children"):
            try:
                pids += task.read_text().split()
            except OSError:
                pass
        return pids

    def _poll(self) -> None:
        for pid in self._children():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:  # the kernel ended between listing and reading
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    mib = int(line.split()[1]) / 1024
                    self.peak_mib = mib if self.peak_mib is None else max(self.peak_mib, mib)

    def __enter__(self):
        import threading

        if Path("/proc/self/task").is_dir():
            self._stop = threading.Event()

            def loop():
                while not self._stop.wait(self.interval):
                    self._poll()

            self._thread = threading.Thread(target=loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._stop is not None:
            self._stop.set()
            self._thread.join()
        return False


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
    """Seconds per notebook, and the peak memory of the kernels so far where it is known."""
    memory = any(r.peak_mib is not None for r in results)
    lines = [f"{'notebook':40s} {'seconds':>8s}" + (f" {'peak MiB':>9s}" if memory else "") + "  status"]
    for r in results:
        peak = (f" {r.peak_mib:9.0f}" if r.peak_mib is not None else f" {'':9s}") if memory else ""
        lines.append(f"{r.notebook:40s} {r.seconds:8.1f}{peak}  {'ok' if r.ok else 'FAILED'}")
    lines.append(f"{'total':40s} {sum(r.seconds for r in results):8.1f}")
    return "\n".join(lines)


def build_leaderboard(results: list[Result], out_dir: Path) -> tuple:
    executed = [Path(out_dir) / r.notebook for r in results if r.ok]
    board = leaderboard.collect(executed)
    paths = leaderboard.write(board, out_dir)
    return board, paths
