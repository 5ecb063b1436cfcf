"""Keep committed notebooks clean: no outputs, no execution counts, the standard kernel.

Cells tagged ``nbval-check-output`` are *golden* cells: they keep their output and execution
count, and nbval (``--nbval-lax``) compares a fresh run against them. Everything else is stripped.

    python -m twilio_e2ee.notebook.strip notebooks/*.ipynb          # strip in place
    python -m twilio_e2ee.notebook.strip --check notebooks/*.ipynb  # list problems, exit 1 if any
    python -m twilio_e2ee.notebook.strip --refresh-golden notebooks/03_cards.ipynb

Exit status: 0 clean, 1 problems found by ``--check``, 2 a file could not be read as a notebook.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "GOLDEN_TAG",
    "KERNELSPEC",
    "notebook_problems",
    "refresh_golden",
    "strip_notebook",
]

GOLDEN_TAG = "nbval-check-output"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
_VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")
_VOLATILE_NOTEBOOK_METADATA = ("widgets", "papermill", "vscode", "toc", "varInspector")

Notebook = dict[str, Any]


def _tags(cell: dict[str, Any]) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return list(tags) if isinstance(tags, list) else []


def is_golden(cell: dict[str, Any]) -> bool:
    """Whether a cell's stored output is a reference that nbval checks."""
    return cell.get("cell_type") == "code" and GOLDEN_TAG in _tags(cell)


def strip_notebook(nb: Notebook) -> Notebook:
    """A copy of `nb` with outputs, counts and volatile metadata removed (golden cells kept)."""
    nb = copy.deepcopy(nb)
    for key in _VOLATILE_NOTEBOOK_METADATA:
        nb.get("metadata", {}).pop(key, None)
    nb.setdefault("metadata", {})["kernelspec"] = dict(KERNELSPEC)
    for index, cell in enumerate(nb.get("cells", [])):
        if "id" in cell:
            cell["id"] = str(index)  # stable ids, as nbstripout numbers them
        meta = cell.setdefault("metadata", {})
        for key in _VOLATILE_CELL_METADATA:
            meta.pop(key, None)
        if cell.get("cell_type") != "code":
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            continue
        if is_golden(cell):
            continue
        cell["outputs"] = []
        cell["execution_count"] = None
    return nb


def notebook_problems(nb: Notebook) -> list[str]:
    """Why `nb` is not fit to commit (empty when it is clean)."""
    problems: list[str] = []
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "python3":
        problems.append(f"kernelspec name is {kernel!r}, not 'python3'")
    if "widgets" in nb.get("metadata", {}):
        problems.append("saved widget state in notebook metadata")
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        where = f"cell {index}"
        if is_golden(cell):
            if not cell.get("outputs"):
                problems.append(f"{where}: golden cell has no reference output")
            if cell.get("execution_count") is None:
                problems.append(f"{where}: golden cell has no execution count (nbval skips it)")
            continue
        if cell.get("outputs"):
            problems.append(f"{where}: has outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"{where}: has execution count {cell['execution_count']}")
    return problems


def refresh_golden(path: Path, *, timeout: int = 120) -> int:
    """Execute `path` and store fresh outputs in its golden cells only; returns how many."""
    nbclient: Any = importlib.import_module("nbclient")
    nbformat: Any = importlib.import_module("nbformat")

    nb = nbformat.read(path, as_version=4)
    executed = copy.deepcopy(nb)
    client = nbclient.NotebookClient(
        executed,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    count = 0
    for cell, done in zip(nb.cells, executed.cells, strict=True):
        if is_golden(cell):
            count += 1
            cell["outputs"] = [_clean_output(o) for o in done.get("outputs", [])]
            cell["execution_count"] = count
    path.write_text(_dump(strip_notebook(json.loads(nbformat.writes(nb)))), encoding="utf-8")
    return count


def _clean_output(output: Any) -> Any:
    output = copy.deepcopy(output)
    if output.get("output_type") == "execute_result":
        output["execution_count"] = None
    return output


def _load(path: Path) -> Notebook:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a notebook")
    return data


def _dump(nb: Notebook) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: strip, check, or refresh golden cells of the given notebooks."""
    parser = argparse.ArgumentParser(prog="python -m twilio_e2ee.notebook.strip")
    parser.add_argument("paths", nargs="+", type=Path)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="report problems, change nothing")
    mode.add_argument("--refresh-golden", action="store_true", help="re-run and store golden")
    args = parser.parse_args(argv)
    status = 0
    for path in args.paths:
        try:
            if args.refresh_golden:
                print(f"{path}: {refresh_golden(path)} golden cell(s) refreshed")
            elif args.check:
                for problem in notebook_problems(_load(path)):
                    print(f"{path}: {problem}")
                    status = max(status, 1)
            else:
                text = _dump(strip_notebook(_load(path)))
                if path.read_text(encoding="utf-8") != text:
                    path.write_text(text, encoding="utf-8")
                    print(f"{path}: stripped")
        except (OSError, ValueError) as exc:  # unreadable, not JSON, not a notebook
            print(f"{path}: not processed: {exc}", file=sys.stderr)
            status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
