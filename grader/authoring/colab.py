"""Opening an exercise in Colab: the badge URL, the generated header cell and the setup cell.

The repository the badges point to is ``repository.url`` / ``repository.branch`` in
``_config.yml`` (:func:`repository`); it must be a GitHub URL because Colab opens notebooks
from GitHub. The two generated cells have fixed ids (:data:`RESERVED_IDS`) that solutions may
not use.
"""

from __future__ import annotations

import json
import re

import nbformat
from nbformat import NotebookNode

from grader.errors import AuthoringError
from grader.settings import Settings

#: fixed cell ids of the two cells :func:`grader.authoring.make_exercise` puts on top (reserved:
#: solutions may not use them)
HEADER_ID = "generated-header"
COLAB_SETUP_ID = "colab-setup"
RESERVED_IDS = (HEADER_ID, COLAB_SETUP_ID)

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
COLAB_GITHUB = "https://colab.research.google.com/github"

#: an exercise id, a GitHub owner or repository name
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SAFE_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_GITHUB_URL = re.compile(
    r"^(?:https?://(?:www\.)?github\.com/|git@github\.com:)(?P<owner>[^/\s]+)/(?P<repo>[^/\s]+?)(?:\.git)?/?$"
)


def repository(settings: Settings) -> tuple[str, str]:
    """``repository.url`` and ``repository.branch`` from ``_config.yml``."""
    import yaml

    config_path = settings.root / "_config.yml"
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AuthoringError(f"{config_path}: cannot be read as YAML ({exc})") from None
    repository = config.get("repository") if isinstance(config, dict) else None
    repository = repository if isinstance(repository, dict) else {}
    url, branch = repository.get("url"), repository.get("branch", "main")
    if not isinstance(url, str) or not url:
        raise AuthoringError(f"{config_path}: set repository.url (the GitHub URL the Colab badges point to)")
    if not isinstance(branch, str) or not branch:
        raise AuthoringError(f"{config_path}: repository.branch must be a branch name like 'main'")
    return url, branch


def _github(repo_url: str) -> tuple[str, str]:
    match = _GITHUB_URL.match(repo_url.strip())
    if match is None or not all(SAFE_NAME.match(part) for part in match.group("owner", "repo")):
        raise AuthoringError(
            f"repository url {repo_url!r} is not a GitHub repository URL; set repository.url in _config.yml "
            "to https://github.com/<owner>/<repo> (Colab opens notebooks from GitHub)"
        )
    return match.group("owner"), match.group("repo")


def _check_branch(branch: str) -> None:
    if not _SAFE_BRANCH.match(branch) or ".." in branch:
        raise AuthoringError(
            f"repository branch {branch!r} is not a plain branch name; set repository.branch in _config.yml"
        )


def colab_url(*, exercise_id: str, repo_url: str, branch: str) -> str:
    """The "Open in Colab" address of ``exercises/<exercise_id>.ipynb`` on ``branch``."""
    owner, repo = _github(repo_url)
    _check_branch(branch)
    return f"{COLAB_GITHUB}/{owner}/{repo}/blob/{branch}/exercises/{exercise_id}.ipynb"


def header_cell(exercise_id: str, url: str) -> NotebookNode:
    """The generated first cell: the "Open in Colab" badge and a note that the file is generated."""
    source = "\n".join(
        [
            f"[![Open In Colab]({COLAB_BADGE})]({url})",
            "",
            f"*This notebook is generated from `solutions/{exercise_id}.ipynb` by `grader assign`.*"
            " Course authors: do not edit it here; edit the solution and run `grader assign` again."
            " Learners: replace each `raise NotImplementedError(...)` line with your code and run the"
            " `# Check` cells below it.",
        ]
    )
    cell = nbformat.v4.new_markdown_cell(source)
    cell.id = HEADER_ID
    return cell


def setup_cell(repo_url: str, branch: str) -> NotebookNode:
    """The generated second cell: on Colab only, ``pip install`` this course's package."""
    owner, repo = _github(repo_url)
    _check_branch(branch)
    requirement = f"git+https://github.com/{owner}/{repo}.git@{branch}"
    source = "\n".join(
        [
            "# Setup: on Colab, install this course's package (it does not replace Colab's torch).",
            "# Anywhere else this cell does nothing: install the course environment as the README says.",
            "import sys",
            "",
            'if "google.colab" in sys.modules:',
            "    import subprocess",
            "",
            f"    package = {json.dumps(requirement)}",
            '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)',
        ]
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.id = COLAB_SETUP_ID
    return cell
