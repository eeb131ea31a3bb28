"""Setting the course up without make: `python -m recsys_course setup` (the Makefile's setup too), and
environment.yml kept in step with pyproject.toml."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from recsys_course.course import setup_env

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def _requirement(text: str) -> tuple[str, str]:
    """('name', 'specifier;marker') with spaces and quotes normalised, names lower-cased with '-'."""
    text = text.strip().strip('"').strip("'")
    name = re.match(r"[A-Za-z0-9_.\-]+", text).group(0)
    rest = re.sub(r"\s+", "", text[len(name):]).replace('"', "'")
    return name.lower().replace("_", "-"), rest


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += [s for s in extra if not s.startswith("recsys-course")]
    return dict(_requirement(s) for s in specs)


def _environment() -> dict[str, str]:
    """The conda and pip requirements of environment.yml, without python, pip and the course itself."""
    found = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("\ndependencies:"):].splitlines():
        item = re.match(r"^\s+-\s+(.+?)\s*$", line)
        if not item or item.group(1).startswith(("pip:", "-e ")) or line.strip().startswith("#"):
            continue
        name, spec = _requirement(item.group(1))
        if name not in ("python", "pip"):
            found[name] = spec
    return found


def test_environment_yml_mirrors_pyproject():
    want, got = _pyproject(), _environment()
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    different = {n: (want[n], got[n]) for n in set(want) & set(got) if want[n] != got[n]}
    assert not missing and not extra and not different, (
        f"environment.yml and pyproject.toml disagree — missing from environment.yml: {missing}; only in "
        f"environment.yml: {extra}; different versions (pyproject, environment.yml): {different}. Edit "
        "environment.yml to mirror pyproject.toml's dependencies and extras.")


@pytest.mark.parametrize("system, gpu, want", [("Linux", False, setup_env.CPU_INDEX), ("Linux", True, None),
                                               ("Darwin", False, None), ("Windows", False, None)])
def test_torch_comes_from_the_cpu_index_only_on_linux_without_a_gpu(system, gpu, want):
    assert setup_env.torch_index("auto", system=system, gpu=gpu) == want
    assert setup_env.torch_index("cpu") == setup_env.CPU_INDEX and setup_env.torch_index("pypi") is None
    assert setup_env.torch_index("https://example.org/simple") == "https://example.org/simple"


def test_the_plan_keeps_a_torch_already_there(tmp_path):
    with_torch = setup_env.plan(tmp_path, has_torch=True)
    assert len(with_torch) == 1 and with_torch[0][-1].endswith("[dev]")
    fresh = setup_env.plan(tmp_path, has_torch=False, system="Linux", gpu=False, extras="course")
    assert fresh[0][-3:] == ["torch==2.13.0", "--index-url", setup_env.CPU_INDEX]
    assert fresh[1][-1].endswith("[course]")
    assert str(setup_env.venv_python(tmp_path)).endswith(("bin/python", "python.exe"))


@pytest.mark.parametrize("kwargs, match", [({"extras": "all"}, "choose one of"), ({"index": "fast"}, "index URL")])
def test_setup_bad_options(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        setup_env.plan(tmp_path, has_torch=False, **kwargs)


def _bare_python(*args, cwd=ROOT):
    """Python without site-packages (-S): numpy, pandas, torch are all missing, as on a fresh machine."""
    return subprocess.run([sys.executable, "-S", "-m", "recsys_course", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_setup_runs_on_a_bare_python(tmp_path):
    done = _bare_python("setup", "--dry-run", "--venv", str(tmp_path / "venv"), "--torch-index", "cpu")
    assert done.returncode == 0, done.stderr
    assert "-m venv" in done.stdout and "--index-url" in done.stdout and "[dev]" in done.stdout
    assert not (tmp_path / "venv").exists()  # a dry run creates nothing


def test_other_commands_on_a_bare_python_say_how_to_set_up():
    done = _bare_python("run", "--profile", "smoke")
    assert done.returncode != 0
    assert "is not installed" in done.stderr and "python -m recsys_course setup" in done.stderr
    assert "Traceback" not in done.stderr
