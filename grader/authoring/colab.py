"""Running the course on Colab: the badge URL and the cells ``grader assign`` generates.

One source: ``repository.url`` / ``repository.branch`` in ``_config.yml`` (:func:`repository`)
name the repository that the "Open in Colab" badges and launch buttons open and that the
setup cell installs from; it must be a GitHub URL because Colab opens notebooks from GitHub.
A fork sets those two lines and runs ``grader assign``. The generated cells have fixed ids
(:data:`grader.format.markers.GENERATED_IDS`) that solutions may not use:

- the **header** under an exercise's title: the badge, and how to check and submit;
- the **setup cell** of every exercise and lesson notebook: on Colab only, ``pip install``
  the course package with its ``colab`` extra (what Colab lacks; Colab's own torch stays);
  the environment variable :data:`ENV_SOURCE` overrides where it installs from;
- the **submit cell** that ends every exercise: :func:`mlcourse.submit.submit`.
"""

from __future__ import annotations

import json
import re

import nbformat
from nbformat import NotebookNode

from grader.errors import AuthoringError
from grader.format import markers
from grader.settings import Settings

#: the badge image, shipped with the course (relative to ``exercises/``): the site's security
#: policy allows no remote images, and the site works offline
COLAB_BADGE = "../_static/colab-badge.svg"
COLAB_GITHUB = "https://colab.research.google.com/github"
#: the distribution and extra the setup cell installs (see ``pyproject.toml``)
COLAB_REQUIREMENT = "mlcourse-platform[colab]"
#: overrides the pip source of the setup cell, e.g. ``git+file:///path/to/clone@main`` (tests, mirrors)
ENV_SOURCE = "MLCOURSE_SOURCE"
#: the owner in ``_config.yml``'s placeholder URL: a course must set its own repository
PLACEHOLDER_OWNER = "YOUR-GITHUB-USER"

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


def is_placeholder(repo_url: str) -> bool:
    """Is ``repo_url`` still the placeholder of ``_config.yml`` (the badges would open nothing)?"""
    return PLACEHOLDER_OWNER.lower() in repo_url.lower()


def header_cell(exercise_id: str, url: str) -> NotebookNode:
    """The note under an exercise's title: the "Open in Colab" badge, how to check and how to submit."""
    source = "\n".join(
        [
            f"[![Open In Colab]({COLAB_BADGE})]({url})",
            "",
            "Replace each `raise NotImplementedError(...)` line with your code, then run the `# Check` cell"
            " below it: a check that runs without an error passes. On your own machine, `grader check"
            f" exercises/{exercise_id}.ipynb` runs them all. When you are done, run the last cell to submit"
            " (on Colab too); the grader then also runs checks you cannot see.",
            "",
            f"<!-- Generated from solutions/{exercise_id}.ipynb by `grader assign`. Course authors: edit the"
            " solution, not this file, and run `grader assign` again. -->",
        ]
    )
    cell = nbformat.v4.new_markdown_cell(source)
    cell.id = markers.HEADER_ID
    return cell


def setup_cell(repo_url: str, branch: str) -> NotebookNode:
    """The Colab-only setup cell: ``pip install`` the course package with what Colab lacks (hidden on the site)."""
    owner, repo = _github(repo_url)
    _check_branch(branch)
    source = "\n".join(
        [
            "# Setup: on Colab, install this course's package and what Colab lacks (Colab's own torch stays).",
            "# Anywhere else this cell does nothing: install the course environment as the README says.",
            "import os",
            "import sys",
            "",
            'if "google.colab" in sys.modules:',
            "    import subprocess",
            "",
            f"    source = os.environ.get({json.dumps(ENV_SOURCE)}, "
            f"{json.dumps(f'git+https://github.com/{owner}/{repo}.git@{branch}')})",
            f'    requirement = f"{COLAB_REQUIREMENT} @ {{source}}"',
            '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement], check=True)',
        ]
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.id = markers.COLAB_SETUP_ID
    cell.metadata["tags"] = [markers.TAG_REMOVE_CELL]
    return cell


def submit_cell(exercise_id: str) -> NotebookNode:
    """The last cell of an exercise: send it to the course's grader with :func:`mlcourse.submit.submit`.

    The token is asked for (or read from the environment), never typed into the notebook: a
    notebook is saved and submitted, and the token would travel with it.
    """
    source = "\n".join(
        [
            "# Submit: send this notebook to the course's grader and see your score here.",
            "# GRADER_URL: the address your instructor gave you. Your token is asked for when you run",
            "# this cell (or set the environment variables MLCOURSE_GRADER_URL and MLCOURSE_GRADER_TOKEN).",
            'GRADER_URL = ""  # @param {type:"string"}',
            "",
            "import getpass",
            "import os",
            "",
            "from mlcourse.submit import submit",
            "",
            'token = os.environ.get("MLCOURSE_GRADER_TOKEN") or getpass.getpass("your grader token: ")',
            f"submit({json.dumps(exercise_id)}, url=GRADER_URL or None, token=token)",
        ]
    )
    cell = nbformat.v4.new_code_cell(source)
    cell.id = markers.SUBMIT_ID
    return cell


def with_setup_cell(nb: NotebookNode, repo_url: str, branch: str) -> NotebookNode:
    """``nb`` with the generated setup cell under its title (replacing an older one); ``nb`` is not changed."""
    cells = [c for c in nb.cells if c.get("id") != markers.COLAB_SETUP_ID]
    at = title_end(cells)
    updated = nbformat.from_dict(dict(nb))
    updated.cells = [*cells[:at], setup_cell(repo_url, branch), *cells[at:]]
    return updated


def title_end(cells: list[NotebookNode]) -> int:
    """Where generated cells go: after a first Markdown cell that starts with a ``#`` heading, else at the top."""
    if cells and cells[0].cell_type == "markdown" and cells[0].source.lstrip().startswith("#"):
        return 1
    return 0
