"""mlcourse.cicd: workflow files read as data and validated offline; paired scores with a known difference."""

from __future__ import annotations

import numpy as np
import pytest

from mlcourse import cicd

WORKFLOW = """\
name: ci
on:
  pull_request:
  schedule:
    - cron: "0 5 * * 1"
permissions:
  contents: read
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: make lint
  test:
    needs: lint
    runs-on: ubuntu-latest
    steps:
      - run: make test
  deploy:
    needs: [test]
    runs-on: ubuntu-latest
    steps:
      - run: ./deploy.sh
"""


def test_on_key_survives_yaml_1_1() -> None:
    """Is the bare key `on` read as "on", not as True (PyYAML's YAML 1.1 reading)?"""
    workflow = cicd.load_workflow(WORKFLOW)
    assert "on" in workflow and True not in workflow
    assert cicd.triggers(WORKFLOW) == {"pull_request": None, "schedule": [{"cron": "0 5 * * 1"}]}


@pytest.mark.parametrize(
    ("on", "expected"),
    [("on: push", {"push": None}), ("on: [push, pull_request]", {"push": None, "pull_request": None})],
)
def test_triggers_of_every_shape(on: str, expected: dict[str, None]) -> None:
    """Do a string and a list of events become the same dict as a mapping would?"""
    assert cicd.triggers(on + "\njobs: {}\n") == expected


def test_valid_workflow_has_no_schema_errors() -> None:
    """Does the vendored GitHub workflow schema accept a correct workflow?"""
    assert cicd.schema_errors(WORKFLOW) == []


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (WORKFLOW.replace("needs: lint", "need: lint"), "jobs.test: Additional properties are not allowed ('need'"),
        (
            WORKFLOW.replace(
                "    runs-on: ubuntu-latest\n    steps:\n      - run: make lint", "    steps:\n      - run: make lint"
            ),
            "jobs.lint: 'runs-on' is a required property",
        ),
        (WORKFLOW.replace('cron: "0 5 * * 1"', "cron: 5"), "on.schedule.0.cron: 5 is not of type 'string'"),
        (
            WORKFLOW.replace("pull_request:", "pull_requests:"),
            "on: Additional properties are not allowed ('pull_requests'",
        ),
        ("jobs: [1", "not valid YAML"),
        ("- a list", "a workflow is a mapping"),
    ],
)
def test_schema_errors_name_the_place(broken: str, message: str) -> None:
    """Does each message name where the workflow is wrong, with the closest alternative's complaint?"""
    errors = cicd.schema_errors(broken)
    assert len(errors) == 1 and message in errors[0], errors


def test_needs_and_upstream() -> None:
    """Are `needs: x` and `needs: [x]` read alike, and does upstream follow the chain?"""
    assert cicd.needs(WORKFLOW) == {"lint": [], "test": ["lint"], "deploy": ["test"]}
    assert cicd.upstream(WORKFLOW, "deploy") == {"lint", "test"}
    assert cicd.upstream(WORKFLOW, "lint") == set()
    with pytest.raises(KeyError, match="no job 'gate'"):
        cicd.upstream(WORKFLOW, "gate")
    cyclic = WORKFLOW.replace(
        "    runs-on: ubuntu-latest\n    steps:\n      - run: make lint",
        "    needs: deploy\n    runs-on: x\n    steps: []",
    )
    with pytest.raises(ValueError, match="cycle"):
        cicd.upstream(cyclic, "deploy")


def test_zizmor_runs_offline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Does zizmor report a finding on an unpinned action, as JSON, without the network?"""
    path = tmp_path / "ci.yml"
    path.write_text(
        WORKFLOW.replace("      - run: make lint", "      - uses: actions/checkout@v4\n      - run: make lint")
    )
    try:
        findings = cicd.zizmor_findings(path)
    except FileNotFoundError:
        pytest.skip("zizmor is not installed")
    assert "unpinned-uses" in {finding["ident"] for finding in findings}


@pytest.mark.parametrize("kind", cicd.SCORE_KINDS)
def test_paired_scores_have_the_difference_asked_for(kind: str) -> None:
    """Is the mean paired difference the effect asked for, and are the arrays reproducible?"""
    candidate, baseline = cicd.paired_scores(200_000, 0.03, seed=1, kind=kind)
    assert abs((candidate - baseline).mean() - 0.03) < 0.003
    again = cicd.paired_scores(200_000, 0.03, seed=1, kind=kind)
    assert np.array_equal(candidate, again[0]) and np.array_equal(baseline, again[1])


def test_paired_correctness_disagrees_where_asked() -> None:
    """Do 0/1 scores disagree on the share `discordance` of items, with the baseline's accuracy near `accuracy`?"""
    candidate, baseline = cicd.paired_scores(200_000, 0.02, seed=2, discordance=0.06, accuracy=0.7)
    assert set(np.unique(candidate)) <= {0.0, 1.0}
    assert abs((candidate != baseline).mean() - 0.06) < 0.003
    assert abs(baseline.mean() - (0.7 * 0.94 + 0.02)) < 0.005


def test_paired_scores_refuse_the_impossible() -> None:
    """Does an unknown kind or an effect larger than the disagreement say what is wrong?"""
    with pytest.raises(ValueError, match="kind must be one of"):
        cicd.paired_scores(10, 0.0, seed=0, kind="loss")
    with pytest.raises(ValueError, match="cannot exceed"):
        cicd.paired_scores(10, 0.2, seed=0, discordance=0.1)
