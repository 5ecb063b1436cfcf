"""The notebooks are tested like code: clean in git, executed by nbval, fast.

The offline notebooks run in one ``pytest --nbval-lax`` subprocess (a fresh kernel per notebook
from this interpreter, sanitize rules from notebooks/nbval_sanitize.cfg, golden cells compared),
each against the offline stack it starts itself; real-service credentials are removed from the
environment. Per-notebook results and times come from that run's JUnit XML. The real-services
notebook runs with papermill only when credentials are set.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from twilio_e2ee.credentials import ENV_NAMES
from twilio_e2ee.notebook.strip import GOLDEN_TAG, KERNELSPEC, notebook_problems, strip_notebook

pytest.importorskip("nbval")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
SANITIZE = NOTEBOOK_DIR / "nbval_sanitize.cfg"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
REAL_SERVICES = "10_real_services.ipynb"
OFFLINE = [nb for nb in NOTEBOOKS if nb.name != REAL_SERVICES]
PER_NOTEBOOK_LIMIT = 20.0  # seconds of cell execution per notebook (JUnit times of nbval's run)
SUITE_LIMIT = 120.0
CREDENTIAL_NAMES = (*ENV_NAMES, "TWILIO_AUTH_TOKEN")


def _env(*, keep_credentials: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    if not keep_credentials:
        for name in CREDENTIAL_NAMES:
            env.pop(name, None)
    env.update(JUPYTER_PLATFORM_DIRS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


def run_nbval(
    *paths: Path, cwd: Path = ROOT, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Execute notebooks with nbval (lax mode, golden cells checked) in a subprocess."""
    command = [
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
        "--nbval-lax", "--nbval-current-env", f"--nbval-sanitize-with={SANITIZE}",
        "--nbval-cell-timeout=60", f"--rootdir={cwd}", *extra, *map(str, paths),
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600, check=False
    )


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


# --- the set of notebooks -------------------------------------------------------------------------


def test_notebooks_are_numbered_one_stage_each() -> None:
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(len(numbers))), [p.name for p in NOTEBOOKS]
    assert len(NOTEBOOKS) >= 10
    assert NOTEBOOKS[0].name.startswith("00_setup")
    assert NOTEBOOKS[-1].name == REAL_SERVICES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_clean(path: Path) -> None:
    """No outputs or execution counts except golden cells; kernel `python3`; stable ids."""
    nb = _load(path)
    assert notebook_problems(nb) == []
    assert strip_notebook(nb) == nb, "run: python -m twilio_e2ee.notebook.strip notebooks/*.ipynb"


def test_nbstripout_agrees_notebooks_are_clean() -> None:
    nbstripout = shutil.which("nbstripout", path=str(Path(sys.executable).parent))
    if nbstripout is None:
        pytest.skip("nbstripout is not installed in this environment")
    result = subprocess.run(
        [nbstripout, "--verify", "--keep-count", *map(str, NOTEBOOKS)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_structure(path: Path) -> None:
    """Goal and prerequisites at the top, a summary at the end, claims checked by asserts."""
    cells = _load(path)["cells"]
    first, last = _source(cells[0]), _source(cells[-1])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# ")
    assert "**Goal" in first and "**Prerequisites" in first
    assert cells[-1]["cell_type"] == "markdown" and "## Summary" in last
    code = [_source(c) for c in cells if c["cell_type"] == "code"]
    assert any(re.search(r"^assert ", src, re.M) for src in code), "no assert cell"
    assert not any("sys.path" in src for src in code), "notebooks import the installed package"
    for cell in cells:
        if GOLDEN_TAG in cell.get("metadata", {}).get("tags", []):
            assert "keep_output" in cell["metadata"]["tags"], "golden cells also need keep_output"


# --- execution ------------------------------------------------------------------------------------


@dataclass
class NotebookRun:
    """One notebook's result in the shared nbval run."""

    cells: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


@dataclass
class SuiteRun:
    wall_seconds: float
    notebooks: dict[str, NotebookRun]
    output: str


@pytest.fixture(scope="module")
def suite_run(tmp_path_factory: pytest.TempPathFactory) -> SuiteRun:
    """All offline notebooks in ONE nbval subprocess; per-cell results from its JUnit XML."""
    if not OFFLINE:
        pytest.skip("no notebooks")
    report = tmp_path_factory.mktemp("nbval") / "junit.xml"
    start = time.monotonic()
    result = run_nbval(*OFFLINE, extra=(f"--junitxml={report}",))
    wall = time.monotonic() - start
    runs: dict[str, NotebookRun] = {p.name: NotebookRun() for p in OFFLINE}
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            name = next(
                (n for n in runs if n in case.get("classname", "") + case.get("file", "")), None
            )
            if name is None:
                continue
            run = runs[name]
            run.cells += 1
            run.seconds += float(case.get("time", "0"))
            for bad in [*case.iter("failure"), *case.iter("error")]:
                run.failures.append(f"{case.get('name')}: {(bad.get('message') or '')[:300]}")
    print(f"nbval over {len(OFFLINE)} notebooks: {wall:.1f} s wall")
    for name, run in runs.items():
        print(f"  {name}: {run.seconds:.1f} s, {run.cells} cells")
    return SuiteRun(wall, runs, result.stdout + result.stderr)


@pytest.mark.parametrize("path", OFFLINE, ids=lambda p: p.name)
def test_notebook_runs(path: Path, suite_run: SuiteRun) -> None:
    """Every code cell passes under nbval (golden cells match), within the time budget."""
    run = suite_run.notebooks[path.name]
    code_cells = sum(1 for c in _load(path)["cells"] if c["cell_type"] == "code")
    assert run.cells == code_cells, suite_run.output[-6000:]
    assert run.failures == [], "\n".join(run.failures) + "\n" + suite_run.output[-6000:]
    assert run.seconds < PER_NOTEBOOK_LIMIT, f"{path.name} took {run.seconds:.1f} s"


def test_notebook_suite_time(suite_run: SuiteRun) -> None:
    """All offline notebooks together, including pytest and kernel start-up, within budget."""
    assert suite_run.wall_seconds < SUITE_LIMIT, (
        f"notebook suite took {suite_run.wall_seconds:.1f} s"
    )


def _papermill(tmp_path: Path, services: str, *, keep_credentials: bool) -> None:
    papermill = shutil.which("papermill", path=str(Path(sys.executable).parent))
    if papermill is None:
        pytest.skip("papermill is not installed in this environment")
    out = tmp_path / REAL_SERVICES
    command = [
        papermill, str(NOTEBOOK_DIR / REAL_SERVICES), str(out), "-p", "SERVICES", services,
        "--cwd", str(NOTEBOOK_DIR), "-k", "python3", "--no-progress-bar",
    ]  # fmt: skip
    result = subprocess.run(
        command, env=_env(keep_credentials=keep_credentials), capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    executed = _load(out)
    errors = [
        o
        for c in executed["cells"]
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert errors == []


def test_real_services_notebook_with_papermill(tmp_path: Path) -> None:
    """The real-services notebook against real Virgil and Twilio (only with credentials)."""
    missing = [name for name in ENV_NAMES if not os.environ.get(name)]
    if missing:
        pytest.skip("real-services notebook needs credentials; missing: " + ", ".join(missing))
    _papermill(tmp_path, "real", keep_credentials=True)


def test_real_services_notebook_rehearsal_offline(tmp_path: Path) -> None:
    """The same notebook with papermill's SERVICES=offline, so it cannot rot unnoticed."""
    _papermill(tmp_path, "offline", keep_credentials=False)


# --- the checking machinery itself can fail --------------------------------------------------


def _golden_notebook(stored: str, code: str) -> dict[str, Any]:
    return {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 1,
                "id": "0",
                "metadata": {"tags": ["keep_output", GOLDEN_TAG]},
                "outputs": [{"name": "stdout", "output_type": "stream", "text": stored}],
                "source": code,
            }
        ],
        "metadata": {"kernelspec": dict(KERNELSPEC)},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_golden_cells_are_compared_after_sanitizing(tmp_path: Path) -> None:
    code = (
        "import secrets\n"
        "print('conversation', 'CH' + secrets.token_hex(16), 'at http://127.0.0.1:' + "
        "str(40000 + secrets.randbelow(9999)))"
    )
    good = "conversation CH" + "0" * 32 + " at http://127.0.0.1:1234\n"
    wrong = "conversation CH" + "0" * 32 + " at http://10.0.0.1:1234\n"
    (tmp_path / "good.ipynb").write_text(json.dumps(_golden_notebook(good, code)))
    (tmp_path / "wrong.ipynb").write_text(json.dumps(_golden_notebook(wrong, code)))
    result = run_nbval(tmp_path / "good.ipynb", tmp_path / "wrong.ipynb", cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert re.search(r"FAILED wrong\.ipynb::Cell 0\b", result.stdout), result.stdout
    assert "1 failed, 1 passed" in result.stdout, result.stdout


def test_clean_check_catches_outputs_counts_and_kernel() -> None:
    nb = _golden_notebook("x\n", "print('x')")
    assert notebook_problems(nb) == []
    nb["cells"][0]["metadata"]["tags"] = []
    assert notebook_problems(nb) == ["cell 0: has outputs", "cell 0: has execution count 1"]
    nb["metadata"]["kernelspec"]["name"] = "twilio-e2ee"
    nb["metadata"]["widgets"] = {}
    assert len(notebook_problems(nb)) == 4
    assert notebook_problems(strip_notebook(nb)) == []


def test_strip_command_reports_unreadable_files(tmp_path: Path, capsys: Any) -> None:
    from twilio_e2ee.notebook.strip import main

    (tmp_path / "list.ipynb").write_text("[]")
    (tmp_path / "broken.ipynb").write_text("{not json")
    clean = tmp_path / "clean.ipynb"
    clean.write_text(json.dumps(strip_notebook(_golden_notebook("x\n", "print('x')"))))
    paths = [tmp_path / "missing.ipynb", tmp_path / "list.ipynb", tmp_path / "broken.ipynb"]
    assert main(["--check", *map(str, [*paths, clean])]) == 2
    err = capsys.readouterr().err
    assert all(f"{p}: not processed" in err for p in paths), err
    assert main([str(clean)]) == 0 and main(["--check", str(clean)]) == 0
