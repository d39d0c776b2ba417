"""Running the course on Colab: the badge URL and the cells ``grader assign`` generates.

One source: ``repository.url`` / ``repository.branch`` in ``_config.yml`` (:func:`repository`)
name the repository that the "Open in Colab" badges and launch buttons open and that the
setup cell installs from. A fork sets those two lines and runs ``grader assign``. What the
generated cells can do depends on the host (:func:`host`):

- **GitHub**: the badge (Colab opens notebooks from GitHub), the setup cell installs from it and
  downloads an exercise's files from its raw URLs;
- **GitLab** (gitlab.com or a host named ``gitlab…``): no badge (Colab cannot open GitLab
  notebooks; a learner uploads the notebook), the setup cell installs from it and downloads
  files from its raw URLs;
- **any other git URL** (https, ssh, git, or ``user@host:path``): no badge; the setup cell
  installs from it and gets files from a shallow clone;
- **no URL** (``repository.url`` absent or empty): no badge; the setup cell installs nothing
  unless told where from (:data:`ENV_SOURCE`), and says so.

The generated cells have fixed ids (:data:`grader.format.markers.GENERATED_IDS`) that
solutions may not use:

- the **header** under an exercise's title: the badge, and how to check and submit;
- the **setup cell** of every exercise and lesson notebook: on Colab only, ``pip install``
  the course package with its ``colab`` extra (what Colab lacks; Colab's own torch stays),
  and fetch the exercise's declared files next to the notebook; the environment variables
  :data:`ENV_SOURCE` and :data:`ENV_FILES_URL` override where from;
- the **submit cell** that ends every exercise: :func:`mlcourse.submit.submit`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

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
#: overrides where the setup cell downloads an exercise's files from: ``<url>/<declared path>``
ENV_FILES_URL = "MLCOURSE_FILES_URL"
#: the owner in ``_config.yml``'s placeholder URL: a course must set its own repository
PLACEHOLDER_OWNER = "YOUR-GITHUB-USER"

#: an exercise id, a GitHub owner or repository name
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SAFE_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")
_GITHUB_URL = re.compile(
    r"^(?:https?://(?:www\.)?github\.com/|git@github\.com:)(?P<owner>[^/\s]+)/(?P<repo>[^/\s]+?)(?:\.git)?/?$"
)
#: gitlab.com or a host whose name says GitLab (gitlab.example.edu), over https or ssh
_GITLAB_URL = re.compile(
    r"^(?:https?://(?P<web>[a-z0-9.-]*gitlab[a-z0-9.-]*(?::[0-9]+)?)/"
    r"|(?:ssh://)?git@(?P<ssh>[a-z0-9.-]*gitlab[a-z0-9.-]*)[:/])"
    r"(?P<path>[^\s?#]+?)(?:\.git)?/?$"
)
_URL_CHARS = r"[^\s?#\"'\\]"
_GIT_URL = re.compile(rf"^(?:https?|ssh|git)://{_URL_CHARS}+$")
_SCP_LIKE = re.compile(rf"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>{_URL_CHARS}+)$")


def repository(settings: Settings) -> tuple[str, str]:
    """``repository.url`` (``""`` when the course names none) and ``repository.branch`` from ``_config.yml``."""
    import yaml

    config_path = settings.root / "_config.yml"
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AuthoringError(f"{config_path}: cannot be read as YAML ({exc})") from None
    repository = config.get("repository") if isinstance(config, dict) else None
    repository = repository if isinstance(repository, dict) else {}
    url, branch = repository.get("url") or "", repository.get("branch", "main")
    if not isinstance(url, str):
        raise AuthoringError(f"{config_path}: repository.url must be the course's git URL, or left out")
    if not isinstance(branch, str) or not branch:
        raise AuthoringError(f"{config_path}: repository.branch must be a branch name like 'main'")
    return url.strip(), branch


@dataclass(frozen=True)
class Host:
    """What the generated cells can do with the course's repository (:func:`host`)."""

    #: ``github``, ``gitlab``, ``git`` (any other git URL) or ``none`` (no repository named)
    kind: str
    branch: str
    #: what the setup cell pip-installs on Colab (``git+https://…@branch``); ``None``: nothing
    pip_source: str | None = None
    #: ``<files_url>/<declared path>`` is an exercise's file; ``None``: the host serves no raw files
    files_url: str | None = None
    #: what the setup cell clones to get an exercise's files when the host serves no raw files
    clone_url: str | None = None
    #: ``https://colab.research.google.com/github/<owner>/<repo>/blob/<branch>`` (GitHub only)
    colab_base: str | None = None

    def badge_url(self, exercise_id: str) -> str | None:
        """The "Open in Colab" address of ``exercises/<exercise_id>.ipynb``, where Colab can open it."""
        return f"{self.colab_base}/exercises/{exercise_id}.ipynb" if self.colab_base else None


def _github(repo_url: str) -> tuple[str, str]:
    match = _GITHUB_URL.match(repo_url.strip())
    if match is None or not all(SAFE_NAME.match(part) for part in match.group("owner", "repo")):
        raise AuthoringError(
            f"repository url {repo_url!r} is not a GitHub repository URL; set repository.url in _config.yml "
            "to https://github.com/<owner>/<repo> (Colab opens notebooks from GitHub)"
        )
    return match.group("owner"), match.group("repo")


def host(repo_url: str, branch: str) -> Host:
    """What ``repo_url`` (``""``: none) and ``branch`` let the generated cells do (see the module docstring).

    Raises:
        AuthoringError: the URL is not a git URL, or the branch is not a plain branch name.
    """
    _check_branch(branch)
    url = repo_url.strip()
    if not url:
        return Host("none", branch)
    if _GITHUB_URL.match(url):
        owner, repo = _github(url)
        return Host(
            "github",
            branch,
            pip_source=f"git+https://github.com/{owner}/{repo}.git@{branch}",
            files_url=f"https://raw.githubusercontent.com/{owner}/{repo}/{branch}/exercises",
            colab_base=f"{COLAB_GITHUB}/{owner}/{repo}/blob/{branch}",
        )
    gitlab = _GITLAB_URL.match(url)
    if gitlab and all(SAFE_NAME.match(part) for part in gitlab.group("path").split("/")):
        web = f"https://{gitlab.group('web') or gitlab.group('ssh')}/{gitlab.group('path')}"
        return Host("gitlab", branch, pip_source=f"git+{web}.git@{branch}", files_url=f"{web}/-/raw/{branch}/exercises")
    url = url.rstrip("/")
    scp = _SCP_LIKE.match(url)
    if scp:  # pip needs ssh://user@host/path where git also takes user@host:path
        pip_url = f"ssh://{scp.group('user')}@{scp.group('host')}/{scp.group('path').lstrip('/')}"
        return Host("git", branch, pip_source=f"git+{pip_url}@{branch}", clone_url=url)
    if _GIT_URL.match(url):
        return Host("git", branch, pip_source=f"git+{url}@{branch}", clone_url=url)
    raise AuthoringError(
        f"repository url {repo_url!r} is not a git URL; set repository.url in _config.yml to the course's "
        "repository (https://github.com/<owner>/<repo>, a GitLab or other https or ssh git URL), or leave it out"
    )


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


def header_cell(exercise_id: str, url: str | None) -> NotebookNode:
    """The note under an exercise's title: the "Open in Colab" badge (when ``url``), how to check and submit."""
    badge = [f"[![Open In Colab]({COLAB_BADGE})]({url})", ""] if url else []
    source = "\n".join(
        [
            *badge,
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


_INSTALL = (
    f'    requirement = f"{COLAB_REQUIREMENT} @ {{source}}"',
    '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement], check=True)',
)


def _install_lines(where: Host) -> list[str]:
    """The setup cell up to its Colab-only install (the whole cell when the exercise ships no files)."""
    if where.pip_source is None:
        return [
            "# Setup: this course names no repository to install its package from (repository.url in _config.yml).",
            f"# Install the course environment as the README says; on Colab, set {ENV_SOURCE} to install from a copy.",
            "import os",
            "import sys",
            "",
            'if "google.colab" in sys.modules:',
            "    import subprocess",
            "",
            f"    source = os.environ.get({json.dumps(ENV_SOURCE)})",
            "    if source:",
            *(f"    {line}" for line in _INSTALL),
            "    else:",
            '        print("This course names no repository to install from: install its package as the README says.")',
        ]
    return [
        "# Setup: on Colab, install this course's package and what Colab lacks (Colab's own torch stays).",
        "# Anywhere else this cell does nothing: install the course environment as the README says.",
        "import os",
        "import sys",
        "",
        'if "google.colab" in sys.modules:',
        "    import subprocess",
        "",
        f"    source = os.environ.get({json.dumps(ENV_SOURCE)}, {json.dumps(where.pip_source)})",
        *_INSTALL,
    ]


def _files_lines(where: Host, files: Sequence[str]) -> list[str]:
    """On Colab, the exercise's files next to the notebook, fetched from the course's repository."""
    if not files:
        return []
    names = json.dumps(list(files))
    lines = [
        "",
        "    # this exercise's files, next to the notebook as in the course's exercises/ folder",
        "    import pathlib",
        *(["    import shutil", "    import tempfile"] if where.clone_url else []),
        "    import urllib.request",
        "",
        f"    files_url = os.environ.get({json.dumps(ENV_FILES_URL)}, {json.dumps(where.files_url or '')})",
        f"    missing = [name for name in {names} if not pathlib.Path(name).exists()]",
    ]
    if where.clone_url:  # no raw files on this host: a shallow clone of the course, unless told otherwise
        clone = ["git", "clone", "--quiet", "--depth", "1", "--branch", where.branch, where.clone_url]
        return [
            *lines,
            "    with tempfile.TemporaryDirectory() as clone:",
            "        if missing and not files_url:",
            f"            subprocess.run({json.dumps(clone)[:-1]}, clone], check=True)",
            "        for name in missing:",
            "            pathlib.Path(name).parent.mkdir(parents=True, exist_ok=True)",
            "            if files_url:",
            '                urllib.request.urlretrieve(f"{files_url}/{name}", name)',
            "            else:",
            '                shutil.copyfile(pathlib.Path(clone, "exercises", name), name)',
        ]
    fetch = [
        "    for name in missing:",
        "        pathlib.Path(name).parent.mkdir(parents=True, exist_ok=True)",
        '        urllib.request.urlretrieve(f"{files_url}/{name}", name)',
    ]
    if where.files_url:
        return [*lines, *fetch]
    return [
        *lines,
        "    if missing and not files_url:",
        '        print("Upload these files next to this notebook (from exercises/ of the course):", *missing)',
        "    elif missing:",
        *(f"    {line}" for line in fetch),
    ]


def setup_cell(repo_url: str, branch: str, files: Sequence[str] = ()) -> NotebookNode:
    """The Colab-only setup cell: ``pip install`` the course package with what Colab lacks, and fetch
    ``files`` (an exercise's, paths relative to ``exercises/``) next to the notebook; hidden on the site.

    Raises:
        AuthoringError: ``repo_url`` is not a git URL, or ``branch`` is not a plain branch name.
    """
    where = host(repo_url, branch)
    cell = nbformat.v4.new_code_cell("\n".join([*_install_lines(where), *_files_lines(where, files)]))
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
