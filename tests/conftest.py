"""Test-suite wide: which tests share a pytest-xdist worker (``make test`` runs ``-n 2 --dist loadgroup``).

Tests in one group run in one worker, one after the other; everything else is spread over the
workers. Grouped together are tests that share something beyond their own temporary folders:

- ``site``: the lesson runs and the book built in ``_build/test-content`` (the smoke lessons are
  executed once and cached; the site tests read the same cache), and the browser walk of that site;
- ``service``: the grader service tests, whose leases and timeouts are short (a second or two)
  and are kept off the busiest moments by running one at a time;
- ``colab``: the Colab simulation, which builds its own environment under ``_build/colab-sim``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
#: test file (relative to tests/) or folder → xdist group
GROUPS = {
    "content/test_lessons_smoke.py": "site",
    "content/test_site.py": "site",
    "content/test_site_browser.py": "site",
    "integration/service": "service",
    "integration/test_colab_simulation.py": "colab",
}


def group_of(path: Path) -> str | None:
    """The xdist group of a test file, or None (spread freely)."""
    relative = path.resolve().relative_to(TESTS).as_posix()
    for prefix, group in GROUPS.items():
        if relative == prefix or relative.startswith(prefix + "/"):
            return group
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = group_of(Path(str(item.path)))
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
