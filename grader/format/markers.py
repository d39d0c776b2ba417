"""The authoring vocabulary, defined once.

Every marker, tag, metadata key and stub string that authors, the generator, the grader
and the tests use comes from this module. Nothing else spells them out.
"""

from __future__ import annotations

import re

# --- code markers inside solution cells -------------------------------------------------
BEGIN_SOLUTION = "# BEGIN SOLUTION"
END_SOLUTION = "# END SOLUTION"
SOLUTION_SUFFIX = "# SOLUTION"
#: what a solution region becomes in the learner's stub (indented like the marker)
CODE_STUB = 'raise NotImplementedError("exercise not done yet: replace this line with your code")'

# --- cell roles (notebook cell tags) ----------------------------------------------------
TAG_EXERCISE = "exercise"
TAG_CHECK = "check"
TAG_HIDDEN_CHECK = "hidden-check"
TAG_PARAMETERS = "parameters"
GRADED_TAGS = (TAG_CHECK, TAG_HIDDEN_CHECK)
#: a manually graded answer (Markdown or code) that an instructor scores with a rubric (grader/format/rubric.py)
TAG_MANUAL = "manual"

# --- cell and notebook metadata ---------------------------------------------------------
#: cell metadata namespace: ``cell.metadata["grader"] = {"id": "3.2", "points": 2}``
META_GRADER = "grader"
META_ID = "id"
META_POINTS = "points"
#: manual cells: ``"rubric": [{"points": 2, "description": "..."}, ...]`` and an optional ``"title"``
META_RUBRIC = "rubric"
META_DESCRIPTION = "description"
META_TITLE = "title"
#: notebook metadata: ``nb.metadata["grader"] = {"exercise": "03-data-assumptions", ...}``
META_EXERCISE = "exercise"
META_GENERATED = "generated"
#: solution notebook metadata: per-exercise sandbox limits, ``{"memory_mb": 4096, "cpu_s": 600}``
META_LIMITS = "limits"
#: solution notebook metadata: files the exercise ships (paths relative to ``solutions/``),
#: ``["data/tickets-sample.csv"]``: next to the exercise, and read-only in the grading kernel's work dir
META_FILES = "files"

#: solution notebook metadata: the device an exercise wants, ``"gpu"`` or ``"cpu"`` (the default).
#: A ``"gpu"`` exercise is routed to GPU workers; with none registered it is graded on CPU at
#: smoke size, with ``torch.compile`` skipped (ENV_KERNEL_COMPILE), and the feedback says so.
META_DEVICE = "device"
DEVICE_CPU = "cpu"
DEVICE_GPU = "gpu"
DEVICES = (DEVICE_CPU, DEVICE_GPU)

#: the first line of every check cell: ``# Check 3.2: the split keeps customers together``
CHECK_TITLE = re.compile(r"^#\s*Check\s+(?P<id>\d+(?:\.\d+)*)\s*:\s*(?P<name>\S.*?)\s*$")

# --- cells that `grader assign` generates (fixed ids, reserved: solutions may not use them) ----
#: the note under an exercise's title: "Open in Colab" badge, how to check and submit
HEADER_ID = "generated-header"
#: the Colab-only setup cell of every exercise and lesson notebook (installs the course package)
COLAB_SETUP_ID = "colab-setup"
#: the last cell of every exercise: ``mlcourse.submit.submit(...)`` (never run by grading or self-check)
SUBMIT_ID = "submit"
GENERATED_IDS = (HEADER_ID, COLAB_SETUP_ID, SUBMIT_ID)
#: the Markdown cell above each manual answer in the learner's notebook, showing its rubric:
#: ``rubric-20-7`` (grader.format.rubric.rubric_cell_id); solutions may not use ids with this prefix
RUBRIC_ID_PREFIX = "rubric-"
#: what a manual Markdown answer becomes in the learner's stub
MARKDOWN_STUB = "_Write your answer here: an instructor grades it with the rubric above._"

# --- Jupyter Book cell tags -------------------------------------------------------------
#: hides a whole cell on the site (used for papermill's injected parameters cell)
TAG_REMOVE_CELL = "remove-cell"

# --- lesson notebooks (papermill) -------------------------------------------------------
PROFILE_PARAMETER = "profile"
PROFILES = ("smoke", "full")
DEFAULT_PROFILE = "full"
#: the cell `grader lessons` appends to a lesson before papermill runs it: it prints the device
#: the kernel ran on, and is removed from the executed copy (grader/book/verified.py)
TAG_DEVICE_PROBE = "device-probe"
#: the note "Last verified … · GPU: …" that `grader book` puts under a lesson's title on the site
VERIFIED_ID = "verified-on"

# --- environment variables ---------------------------------------------------------------
#: the grader's settings (``GRADER_ROOT``, ...); mlcourse, which never imports the grader, spells its own
ENV_PREFIX = "GRADER_"
#: set in a grading kernel that grades a GPU exercise on a CPU: ``"0"`` makes
#: ``mlcourse.device.compile_model`` skip ``torch.compile`` (same string as mlcourse.device.ENV_COMPILE)
ENV_KERNEL_COMPILE = "MLCOURSE_COMPILE"
#: set in a grading kernel: the profile a GPU exercise is graded at (same as mlcourse.device.ENV_PROFILE)
ENV_KERNEL_PROFILE = "MLCOURSE_PROFILE"
