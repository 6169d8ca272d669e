"""A job as one standalone Python file, or as a notebook of the same cells.

Each kind has a Jinja2 template (a string in ``app/export/<kind>.py``, so it installs with the
package) that writes the script in the "percent" format: ``# %%`` starts a code cell and
``# %% [markdown]`` a cell of markdown written as comments. As a ``.py`` file that is an ordinary
script (VS Code, Spyder and Jupytext also run it cell by cell); :func:`to_notebook` turns the same
cells into an ``.ipynb``.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from typing import Literal

import jinja2

from app.export import cifar, linear, mlp
from app.export.history import RunHistory
from app.experiments.registry import get_experiment
from app.models import JobStatus

Format = Literal["py", "ipynb"]

_KINDS = {"linear": linear, "mlp": mlp, "cifar": cifar}
_ENV = jinja2.Environment(
    loader=jinja2.DictLoader(
        {"header": "{{ header }}", **{kind: module.TEMPLATE for kind, module in _KINDS.items()}}
    ),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # Python source, not HTML
)
CELL_MARK = "# %%"
MARKDOWN_MARK = "# %% [markdown]"
HEADER_WIDTH = 98


@dataclass(frozen=True)
class Export:
    filename: str
    media_type: str
    body: str


def export(history: RunHistory, fmt: Format = "py") -> Export:
    stem = f"{history.kind}-{history.job.id[:8]}"
    notebook = fmt == "ipynb"
    module = _KINDS[history.kind]
    context = {
        **module.context(history),
        "seed": history.seed,
        "notebook": notebook,
        "weights_file": f"{stem}.pt",
    }
    context["header"] = header(history, context, f"{stem}.py", notebook)
    source = _ENV.get_template(history.kind).render(context)
    if notebook:
        return Export(f"{stem}.ipynb", "application/x-ipynb+json", json.dumps(to_notebook(source), indent=1) + "\n")
    return Export(f"{stem}.py", "text/x-python", source)


def header(history: RunHistory, context: dict, script_name: str, notebook: bool) -> str:
    """The first markdown cell: what the run was, how to run it, and how close it comes."""
    job = history.job
    spec = get_experiment(job.kind)
    named = f' ("{" ".join(job.name.split())}")' if job.name else ""  # one line, whatever it holds
    cifar = job.kind == "cifar"
    if notebook:
        run = ("Set `CIFAR10_DATA` to the data folder (or edit `data_path`), then run" if cifar else "Run") + (
            " the cells from top to bottom"
        )
    else:
        run = f"Run it with `python {script_name}{' DATA_DIR' if cifar else ''}`"
    paragraphs = [
        f"# {spec.title}: job {job.id[:8]}",
        f"Job `{job.id}`{named}, exported from the PyTorch Playground. Nothing here imports the playground: "
        + ("plain PyTorch, and torchvision for the CIFAR-10 files." if job.kind == "cifar" else "plain PyTorch.")
        + f" It trains the run again as the job did: seed {job.seed}, the same data, model, optimizer and "
        "schedule, and every live change at the step it was made.",
        f"{run}. {promise(job.kind)} The last line it prints gives the final numbers at full precision; "
        f"then it saves the weights to `{context['weights_file']}`, a state_dict like the job's model download.",
        "Parameters at the start: "
        + ", ".join(f"{k}={v!r}" for k, v in history.params.model_dump(exclude={"data"}).items()),
    ]
    if history.changes:
        paragraphs.append(
            "Live changes (after step k, in effect from k + 1): "
            + "; ".join(f"step {c.step}: {c.params}" for c in history.changes)
        )
    if history.lineage:
        line = ", then ".join(f"job {ancestor[:8]} to step {step}" for ancestor, step in history.lineage)
        paragraphs.append(f"The job is a fork; the script trains its whole line: {line}, then the fork.")
    paragraphs += [note for note in (status_note(history), device_note(history)) if note]
    lines = [MARKDOWN_MARK]
    for paragraph in paragraphs:
        if len(lines) > 1:
            lines.append("#")
        lines += [f"# {line}" for line in textwrap.wrap(paragraph, HEADER_WIDTH, break_on_hyphens=False)]
    return "\n".join(lines)


def promise(kind: str) -> str:
    if kind == "cifar":
        return (
            "On a CPU it repeats the job (bit for bit with as many threads as the job's worker had:"
            " `torch.set_num_threads`)."
        )
    return "On a CPU it repeats the job bit for bit."


def status_note(history: RunHistory) -> str | None:
    job = history.job
    status = JobStatus(job.status)
    step = job.step or 0
    if status == JobStatus.SUCCEEDED:
        return None
    if status == JobStatus.DIVERGED:
        return f"The job diverged (its loss stopped being a number) at step {step + 1}; the script stops there too."
    if status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.PAUSED):
        return (
            f"The job is {status} (at step {step}): the script trains what it plans now, "
            "with the changes made so far."
        )
    return f"The job was {status} after step {step}; the script trains the whole run it had planned."


def device_note(history: RunHistory) -> str | None:
    device = history.job.device
    if device == "cpu":
        return None
    return f"The job trained on {device}; on a CPU the last digits of the numbers may differ."


# ----------------------------------------------------------------------------------------------
# The notebook


def to_notebook(source: str) -> dict:
    """The percent-format script as an nbformat 4.5 notebook: one cell per ``# %%`` block."""
    cells: list[dict] = []
    for index, (kind, lines) in enumerate(_cells(source)):
        if kind == "markdown":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        text = "\n".join(lines).strip("\n")
        if not text:
            continue
        cell = {"cell_type": kind, "id": f"cell-{index}", "metadata": {}, "source": _source_lines(text)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": cells,
    }


def _cells(source: str) -> list[tuple[str, list[str]]]:
    cells: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        if line.startswith(CELL_MARK):
            cells.append(("markdown" if line.startswith(MARKDOWN_MARK) else "code", []))
        elif cells:
            cells[-1][1].append(line)
        elif line.strip():
            cells.append(("code", [line]))
    return cells


def _source_lines(text: str) -> list[str]:
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + [lines[-1]]
