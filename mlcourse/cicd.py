"""CI/CD for ML: GitHub Actions workflow files read as data, and paired scores for testing a release gate.

A workflow is YAML text. :func:`load_workflow` reads it as YAML 1.2 reads it: PyYAML follows
YAML 1.1, where the bare key ``on`` (the workflow's triggers) means ``True``, so a workflow read
naively has no ``on`` at all; the loader puts the key back. :func:`schema_errors` validates the
workflow against the JSON Schema of GitHub workflow files that ``check-jsonschema`` vendors (the
file its ``--builtin-schema vendor.github-workflows`` option uses), in this process, with
``jsonschema``: no binary, no network. :func:`triggers`, :func:`needs` and :func:`upstream`
read the parts a review asks about: what starts the workflow, and which jobs must succeed
before a job runs.

:func:`paired_scores` simulates a candidate model and a baseline scored on the **same** items,
with a known true difference, so that a gate can be tested the way a statistical test is:
how often it passes a real improvement (power), and how often something that is no better.
"""

from __future__ import annotations

import functools
import graphlib
import json
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "SCORE_KINDS",
    "load_workflow",
    "needs",
    "paired_scores",
    "schema_errors",
    "triggers",
    "upstream",
    "zizmor_findings",
]

#: what :func:`paired_scores` can simulate: per-item correctness (0/1), or a continuous score
SCORE_KINDS = ("correct", "score")

#: the vendored schema's package and file name inside check-jsonschema
_SCHEMA_PACKAGE, _SCHEMA_FILE = "check_jsonschema.builtin_schemas.vendor", "github-workflows.json"


def load_workflow(text: str) -> dict[str, Any]:
    """The workflow in ``text`` as a dict, with its ``on`` key spelled ``on`` (YAML 1.2's reading).

    Raises:
        ValueError: the text is not YAML, or its top level is not a mapping.
    """
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"the workflow is not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise ValueError(f"a workflow is a mapping (name:, on:, jobs:), got {type(document).__name__}")
    if True in document and "on" not in document:  # YAML 1.1 reads the bare key `on` as true
        document = {("on" if key is True else key): value for key, value in document.items()}
    return document


@functools.cache
def _schema() -> dict[str, Any]:
    try:
        text = resources.files(_SCHEMA_PACKAGE).joinpath(_SCHEMA_FILE).read_text(encoding="utf-8")
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            "the GitHub workflow schema comes with check-jsonschema: `pip install check-jsonschema`"
        ) from error
    schema: dict[str, Any] = json.loads(text)
    return schema


def _workflow(workflow: Mapping[str, Any] | str) -> Mapping[str, Any]:
    return load_workflow(workflow) if isinstance(workflow, str) else workflow


def schema_errors(workflow: Mapping[str, Any] | str) -> list[str]:
    """What the GitHub workflow schema rejects in ``workflow`` (text or dict): ``[]`` when it is valid.

    Each message names the place, e.g. ``jobs.train: 'runs-on' is a required property``; where
    the schema allows several shapes (a job runs steps or calls a reusable workflow), the message
    is the one of the shape that came closest. Text that is not YAML gives one message saying so.
    """
    import jsonschema
    from jsonschema.exceptions import best_match

    try:
        document = _workflow(workflow)
    except ValueError as unreadable:
        return [str(unreadable)]
    validator = jsonschema.Draft7Validator(_schema())
    messages = []
    for error in sorted(validator.iter_errors(document), key=lambda e: [str(p) for p in e.absolute_path]):
        closest = error
        while closest.context:  # anyOf / oneOf: the alternative that got furthest into the document
            # deepest first; at equal depth, a complaint about the content beats one about the kind of
            # value ("is not of type", "is not one of"), which only says another alternative was meant
            rank = {id(e): (len(e.absolute_path), e.validator not in ("type", "enum")) for e in closest.context}
            top = max(rank.values())
            closest = best_match(e for e in closest.context if rank[id(e)] == top) or closest
        where = ".".join(str(part) for part in closest.absolute_path) or "(top level)"
        messages.append(f"{where}: {closest.message}")
    return messages


def triggers(workflow: Mapping[str, Any] | str) -> dict[str, Any]:
    """The events that start the workflow, as a dict (``on: push`` and ``on: [push]`` become ``{"push": None}``)."""
    on = _workflow(workflow).get("on")
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return dict(on) if isinstance(on, Mapping) else {}


def needs(workflow: Mapping[str, Any] | str) -> dict[str, list[str]]:
    """Each job's ``needs:`` as a list of job ids (``needs: lint`` becomes ``["lint"]``)."""
    jobs = _workflow(workflow).get("jobs") or {}
    graph = {}
    for job, spec in jobs.items():
        wanted = spec.get("needs", []) if isinstance(spec, Mapping) else []
        graph[str(job)] = [wanted] if isinstance(wanted, str) else [str(w) for w in wanted]
    return graph


def upstream(workflow: Mapping[str, Any] | str, job: str) -> set[str]:
    """Every job that must finish before ``job`` starts (its needs, theirs, and so on).

    Raises:
        KeyError: ``job`` is not a job of the workflow.
        ValueError: the needs form a cycle (GitHub refuses such a workflow).
    """
    graph = needs(workflow)
    if job not in graph:
        raise KeyError(f"no job {job!r} in the workflow; its jobs are {sorted(graph)}")
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        raise ValueError(f"the jobs' needs form a cycle: {error.args[1]}") from error
    seen: set[str] = set()
    todo = list(graph[job])
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(graph.get(current, []))
    return seen


def zizmor_findings(path: str | Path) -> list[dict[str, Any]]:
    """zizmor's findings for the workflow file at ``path`` (offline; JSON, one dict per finding).

    zizmor is a security linter for GitHub Actions, shipped as a binary in a wheel; this runs it
    in a subprocess with ``--offline`` (no GitHub API calls).

    Raises:
        FileNotFoundError: zizmor is not installed (``pip install zizmor``).
        RuntimeError: zizmor could not read the file (its message says why).
    """
    # on PATH, beside this interpreter, or in the scripts folder of the environment whose packages
    # this interpreter imports (a system Python running a virtual environment's site-packages)
    candidates = [shutil.which("zizmor"), Path(sys.executable).parent / "zizmor"]
    candidates.append(Path(sysconfig.get_paths()["purelib"]).parents[2] / "bin" / "zizmor")
    binary = next((str(c) for c in candidates if c and Path(c).is_file()), None)
    if binary is None:
        raise FileNotFoundError("zizmor is not installed: `pip install zizmor`")
    done = subprocess.run(
        [binary, "--offline", "--no-config", "--no-exit-codes", "--format", "json", "--no-progress", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:  # --no-exit-codes: findings exit 0, only a failure does not
        raise RuntimeError(f"zizmor failed on {path} (exit {done.returncode}): {done.stderr.strip()}")
    findings: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    return findings


def paired_scores(
    n: int,
    effect: float,
    *,
    seed: int,
    kind: str = "correct",
    accuracy: float = 0.8,
    discordance: float = 0.05,
    spread: float = 1.0,
    noise: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """(candidate, baseline): two models' scores on the same ``n`` items, higher is better.

    ``kind="correct"``: 0/1 per item. The two models disagree on a share ``discordance`` of the
    items; the candidate is right on ``effect`` more of all items than the baseline (it fixes
    ``(discordance + effect) / 2`` of them and breaks ``(discordance - effect) / 2``); where they
    agree, both are right with probability ``accuracy``.

    ``kind="score"``: a continuous score per item (say, minus the log-loss). Each item has a
    difficulty shared by both models (standard deviation ``spread``), each model adds its own
    noise (standard deviation ``noise``), and the candidate's true mean is ``effect`` higher.

    The same arguments give the same arrays on every machine.

    Raises:
        ValueError: an unknown ``kind``, or an ``effect`` larger than ``discordance`` allows.
    """
    rng = np.random.default_rng(seed)
    if kind == "correct":
        if abs(effect) > discordance:
            raise ValueError(f"|effect| ({effect}) cannot exceed the share of items the models disagree on")
        fixes, breaks = (discordance + effect) / 2, (discordance - effect) / 2
        u = rng.random(n)
        agree_right = rng.random(n) < accuracy
        candidate = np.where(u < fixes, 1.0, np.where(u < fixes + breaks, 0.0, agree_right.astype(float)))
        baseline = np.where(u < fixes, 0.0, np.where(u < fixes + breaks, 1.0, agree_right.astype(float)))
        return candidate, baseline
    if kind == "score":
        difficulty = rng.normal(0.0, spread, size=n)
        baseline = difficulty + rng.normal(0.0, noise, size=n)
        candidate = difficulty + effect + rng.normal(0.0, noise, size=n)
        return candidate, baseline
    raise ValueError(f"kind must be one of {SCORE_KINDS}, got {kind!r}")
