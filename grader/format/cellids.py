"""Cell ids for a notebook saved without them (nbformat 4.0–4.4), recovered from the notebook it came from.

Grading matches a learner's cells to the reference by nbformat cell id. A Jupyter that saves
nbformat 4.4 or older drops the ids, so :func:`recover_cell_ids` gives them back by comparing
the submission with ``reference`` (the exercise notebook the learner started from; the learner
edited its exercise cells and may have added, moved or deleted cells):

1. A cell that still carries its role tag and ``metadata.grader.id`` (an ``exercise``, ``check``
   or ``hidden-check`` cell; Jupyter keeps cell metadata when it drops ids) takes the id of the
   reference cell with the same role and ``grader.id``; the first such cell wins.
2. Of the other cells, those left unchanged (same cell type, same source) are paired with the
   reference's, in order (the longest run of equal cells first, as :mod:`difflib` does).
3. Between two such pairs, the remaining cells are paired in order with the reference's of
   the same cell type, the most similar source first (a learner's answer usually keeps the
   stub's ``def`` line); a cell that would be left over is not paired.
4. Every cell still without an id gets ``unmatched-<N>`` (``N``: its position, from 1), which
   no reference cell has: it counts as a cell the learner added.

When neither step 1 nor step 2 pairs any cell but the generated ones (the Colab setup cell is
the same in every exercise), the notebook is not from this exercise: nothing is recovered, and
grading says so as it does for any notebook of another exercise.

The same submission and reference always give the same ids. Cells that already have an id
keep it, and no id is given twice.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Sequence

from nbformat import NotebookNode

from grader.format import markers
from grader.format.cells import cell_role, grader_meta

#: characters of a cell's source compared for similarity (enough to see a ``def`` line; bounded cost)
_COMPARED_CHARS = 500
#: a gap with more (submission cell, reference cell) pairs than this is paired in order by type alone
_MAX_PAIRS = 10_000


def lacks_cell_ids(nb: NotebookNode) -> bool:
    """Whether any cell has no nbformat id (a notebook saved as nbformat 4.4 or older has none)."""
    return any(not cell.get("id") for cell in nb.cells)


def _source(cell: NotebookNode) -> str:
    source = cell.get("source", "")
    return ("".join(source) if isinstance(source, list) else str(source)).strip()


def _key(cell: NotebookNode) -> tuple[str, str]:
    return str(cell.get("cell_type", "")), _source(cell)


def _graded_key(cell: NotebookNode) -> tuple[str, str] | None:
    role = cell_role(cell)
    grader_id = grader_meta(cell).get(markers.META_ID)
    if role in (markers.TAG_EXERCISE, *markers.GRADED_TAGS) and isinstance(grader_id, str):
        return role, grader_id
    return None


def _by_role(submission: Sequence[NotebookNode], reference: Sequence[NotebookNode]) -> dict[int, int]:
    """Step 1: submission index → reference index, for cells that kept their role and ``grader.id``."""
    wanted: dict[tuple[str, str], int] = {}
    for index, cell in enumerate(reference):
        key = _graded_key(cell)
        if key is not None:
            wanted.setdefault(key, index)
    pairs: dict[int, int] = {}
    for index, cell in enumerate(submission):
        key = _graded_key(cell)
        if key in wanted and wanted[key] not in pairs.values():
            pairs[index] = wanted[key]
    return pairs


def _similarity(a: NotebookNode, b: NotebookNode) -> float:
    """1 + how alike two sources are (0–1) for cells of one type, 0 for cells of different types."""
    if a.get("cell_type") != b.get("cell_type"):
        return 0.0
    left, right = _source(a)[:_COMPARED_CHARS], _source(b)[:_COMPARED_CHARS]
    return 1.0 + difflib.SequenceMatcher(None, left, right, autojunk=False).ratio()


Indexed = list[tuple[int, NotebookNode]]


def _in_order(subs: Indexed, refs: Indexed) -> dict[int, int]:
    """Each reference cell with the next submission cell of its type (for gaps too large to compare)."""
    pairs: dict[int, int] = {}
    at = 0
    for j, ref in refs:
        kind = ref.get("cell_type")
        found = next((k for k in range(at, len(subs)) if subs[k][1].get("cell_type") == kind), None)
        if found is not None:
            pairs[subs[found][0]] = j
            at = found + 1
    return pairs


def _align_gap(subs: Indexed, refs: Indexed) -> dict[int, int]:
    """Step 3: pair cells in order, same type only, maximising the summed similarity (ties: earlier pairs)."""
    n, m = len(subs), len(refs)
    if n * m > _MAX_PAIRS:
        return _in_order(subs, refs)
    score = [[_similarity(sub, ref) for _, ref in refs] for _, sub in subs]
    best = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            paired = best[i + 1][j + 1] + score[i][j] if score[i][j] else -1.0
            best[i][j] = max(paired, best[i + 1][j], best[i][j + 1])
    pairs: dict[int, int] = {}
    i = j = 0
    while i < n and j < m:
        if score[i][j] and best[i][j] == best[i + 1][j + 1] + score[i][j]:
            pairs[subs[i][0]] = refs[j][0]
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def _by_position(
    submission: Sequence[NotebookNode], reference: Sequence[NotebookNode], fixed: dict[int, int]
) -> tuple[dict[int, int], list[int]]:
    """Steps 2 and 3 over the cells step 1 left: equal cells first, then the gaps between them.

    Returns the pairs (submission index → reference index) and the reference indices paired as equal.
    """
    subs = [(i, cell) for i, cell in enumerate(submission) if i not in fixed]
    taken = set(fixed.values())
    refs = [(j, cell) for j, cell in enumerate(reference) if j not in taken]
    matcher = difflib.SequenceMatcher(None, [_key(c) for _, c in refs], [_key(c) for _, c in subs], autojunk=False)
    pairs: dict[int, int] = {}
    equal: list[int] = []
    ref_at = sub_at = 0
    for block in matcher.get_matching_blocks():  # the last block is empty and closes the final gap
        pairs.update(_align_gap(subs[sub_at : block.b], refs[ref_at : block.a]))
        for k in range(block.size):
            pairs[subs[block.b + k][0]] = refs[block.a + k][0]
            equal.append(refs[block.a + k][0])
        ref_at, sub_at = block.a + block.size, block.b + block.size
    return pairs, equal


def recover_cell_ids(submission: NotebookNode, reference: NotebookNode) -> NotebookNode:
    """A copy of ``submission`` in which every cell without an id has one (the rules: this module's doc).

    A cell paired with a reference cell takes that cell's id; any other gets ``unmatched-<N>``.
    The copy is marked nbformat 4.5 (the version that has cell ids). A notebook that shares no
    cell with ``reference`` but generated ones (another exercise) is copied without new ids.
    """
    nb = copy.deepcopy(submission)
    used = {cell.get("id") for cell in nb.cells if cell.get("id")}
    pairs = _by_role(nb.cells, reference.cells)
    by_position, equal = _by_position(nb.cells, reference.cells, pairs)
    if not pairs and all(reference.cells[j].get("id") in markers.GENERATED_IDS for j in equal):
        return nb
    pairs.update(by_position)
    taken = used | {cell.get("id") for cell in reference.cells}
    for index, cell in enumerate(nb.cells):
        if cell.get("id"):
            continue
        wanted = reference.cells[pairs[index]].get("id") if index in pairs else None
        if not wanted or wanted in used:
            wanted, suffix = f"unmatched-{index + 1}", 1
            while wanted in taken:
                wanted, suffix = f"unmatched-{index + 1}-{suffix}", suffix + 1
        cell["id"] = wanted
        used.add(wanted)
        taken.add(wanted)
    nb.nbformat_minor = max(int(nb.get("nbformat_minor", 0)), 5)
    return nb
