"""Submit the notebook you are working in to the course's grader, from Colab or any Jupyter.

::

    from mlcourse.submit import submit
    submit("00-learning-ml-engineering", token="…", url="https://grader.example.org/")

``submit`` sends the notebook, waits for the grade (a progress line shows queued → running),
then shows the feedback inline (a table in a notebook, plain text elsewhere) and returns it as
a dict (the grader's JSON: ``status``, ``score``, ``max_score``, ``checks``, ``message``).

Which notebook is sent, the first that applies:

1. ``notebook="path/to/notebook.ipynb"`` — a file on disk (save it first: Ctrl-S);
2. on **Colab**, the notebook open in this tab (unsaved edits included);
3. in VS Code, the notebook file (``__vsc_ipynb_file__``); in Jupyter Server ≥ 2, the file in
   ``JPY_SESSION_NAME``. Both are the *saved* file, so save before submitting.

If none applies, ``submit`` says so: pass ``notebook=``. The token and URL may also come from
the environment variables ``MLCOURSE_GRADER_TOKEN`` and ``MLCOURSE_GRADER_URL``.

Only the standard library talks to the grader (``urllib``), so Colab needs nothing extra.
"""

from __future__ import annotations

import html
import json
import os
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

#: mlcourse's own prefix: it never imports the grader, whose variables are ``GRADER_*``
ENV_PREFIX = "MLCOURSE_"
ENV_TOKEN = ENV_PREFIX + "GRADER_TOKEN"
ENV_URL = ENV_PREFIX + "GRADER_URL"
#: seconds between status reads while waiting
POLL_S = 1.0
#: seconds one HTTP request may take
REQUEST_TIMEOUT_S = 30.0
_LABELS = {"pass": "PASS", "fail": "FAIL", "not-run": "NOT RUN"}

__all__ = ["SubmitError", "current_notebook", "render_text", "submit"]


class SubmitError(Exception):
    """The grader refused the submission or could not be reached; the message says what to do."""

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.retry_after_s = status, code, retry_after_s


# --- which notebook -----------------------------------------------------------------------------


def _colab_notebook() -> bytes | None:
    try:
        from google.colab import _message  # type: ignore[import-not-found]
    except ImportError:
        return None
    reply = _message.blocking_request("get_ipynb", request="", timeout_sec=60)
    if not isinstance(reply, dict) or "ipynb" not in reply:
        raise SubmitError("Colab did not hand over the notebook; save it (Ctrl-S) and try again")
    return json.dumps(reply["ipynb"]).encode("utf-8")


def _session_path() -> Path | None:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    vscode = shell.user_ns.get("__vsc_ipynb_file__") if shell is not None else None
    if vscode:
        return Path(vscode)
    session = os.environ.get("JPY_SESSION_NAME")
    if session and session.endswith(".ipynb"):
        return Path(session)
    return None


def current_notebook(notebook: str | os.PathLike[str] | None = None) -> tuple[bytes, str]:
    """The notebook to send, as (bytes, file name). See the module docstring for the order."""
    if notebook is not None:
        path = Path(notebook)
        if not path.is_file():
            raise SubmitError(f"{path}: no such file; pass the path of your saved .ipynb file")
        return path.read_bytes(), path.name
    colab = _colab_notebook()
    if colab is not None:
        return colab, "colab.ipynb"
    session = _session_path()
    if session is not None and session.is_file():
        return session.read_bytes(), session.name
    raise SubmitError(
        "cannot tell which notebook this is (not Colab, no VS Code or Jupyter session path); "
        "save it and call submit(..., notebook='path/to/your_notebook.ipynb')"
    )


# --- HTTP with the standard library ------------------------------------------------------------


def _request(url: str, token: str, *, data: bytes | None = None, content_type: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")
        try:
            error = json.loads(body)["error"]
            message, code = str(error["message"]), str(error["code"])
        except (ValueError, KeyError, TypeError):
            message, code = f"the grader answered {exc.code} {exc.reason}", None
        retry = exc.headers.get("Retry-After")
        raise SubmitError(
            f"{message} (HTTP {exc.code})",
            status=exc.code,
            code=code,
            retry_after_s=float(retry) if retry and retry.isdigit() else None,
        ) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SubmitError(f"cannot reach the grader at {url} ({reason}); check the url= you were given") from None


def _multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = f"----mlcourse{uuid.uuid4().hex}"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    safe_name = filename.replace('"', "").replace("\r", "").replace("\n", "")
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
        "Content-Type: application/x-ipynb+json\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# --- showing the feedback ----------------------------------------------------------------------


def _points(value: Any) -> str:
    if value is None:
        return "?"
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")  # 2, 2.5, 2.67: as the grader shows points
    return "0" if text == "-0" else text


def _headline(result: dict[str, Any]) -> str:
    status = result.get("status")
    if status == "graded":
        return f"{result.get('exercise')}: {_points(result.get('score'))}/{_points(result.get('max_score'))} points"
    if status == "invalid":
        return f"{result.get('exercise')}: not graded (invalid submission)"
    if status == "error":
        return f"{result.get('exercise')}: not graded (grading error)"
    return f"{result.get('exercise')}: {status}"


def _title(check: dict[str, Any]) -> str:
    return f"Check {check.get('id')}{' (hidden)' if check.get('hidden') else ''}: {check.get('name')}"


def render_text(result: dict[str, Any]) -> str:
    """The feedback as lines of text: a headline, then one line per check."""
    lines = [_headline(result)]
    if result.get("message"):
        lines.append(f"  {result['message']}")
    for check in result.get("checks", []):
        label = _LABELS.get(str(check.get("status")), str(check.get("status")))
        lines.append(f"  {label:<7} {_title(check)}  {_points(check.get('points'))}/{_points(check.get('max_points'))}")
        if check.get("message") and check.get("status") != "pass":
            lines.append(f"          {check['message']}")
    return "\n".join(lines)


def render_html(result: dict[str, Any]) -> str:
    """The feedback as an HTML table (every value escaped)."""
    e = html.escape
    colours = {"pass": "#176117", "fail": "#a11", "not-run": "#8a5a00"}
    rows = []
    for check in result.get("checks", []):
        status = str(check.get("status"))
        message = check.get("message") if status != "pass" else ""
        rows.append(
            f'<tr><td style="color:{colours.get(status, "#222")};font-weight:600">{e(_LABELS.get(status, status))}'
            f"</td><td>{e(_title(check))}</td><td>{e(_points(check.get('points')))}/"
            f"{e(_points(check.get('max_points')))}</td><td><code>{e(str(message or ''))}</code></td></tr>"
        )
    parts = [f"<h4>{e(_headline(result))}</h4>"]
    if result.get("message"):
        parts.append(f"<p><code>{e(str(result['message']))}</code></p>")
    if rows:
        parts.append(
            "<table><tr><th>verdict</th><th>check</th><th>points</th><th>message</th></tr>" + "".join(rows) + "</table>"
        )
    return "\n".join(parts)


def _show(result: dict[str, Any]) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        print(render_text(result))
        return
    if get_ipython() is None:
        print(render_text(result))
    else:
        display(HTML(render_html(result)))


# --- submit --------------------------------------------------------------------------------------


def submit(
    exercise: str,
    *,
    token: str | None = None,
    url: str | None = None,
    notebook: str | os.PathLike[str] | None = None,
    timeout_s: float = 300.0,
    show: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Send a notebook for grading, wait for the grade, show the feedback and return it.

    Raises:
        SubmitError: no token or URL, the notebook cannot be found, or the grader refused it
            (the message says why: unknown exercise, too large, too many submissions…).
        TimeoutError: no grade within ``timeout_s`` (the grade still arrives; the message says where).
    """
    token = token or os.environ.get(ENV_TOKEN)
    url = url or os.environ.get(ENV_URL)
    if not token:
        raise SubmitError(f"no token: pass token='…' (from your instructor), or set {ENV_TOKEN}")
    if not url:
        raise SubmitError(f"no grader URL: pass url='https://…', or set {ENV_URL}")
    base = url.rstrip("/")
    content, filename = current_notebook(notebook)
    body, content_type = _multipart({"exercise": exercise}, filename, content)
    accepted = _request(f"{base}/api/submissions", token, data=body, content_type=content_type)
    submission_url = f"{base}/api/submissions/{accepted['id']}"
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=None, desc=f"{exercise}: queued", bar_format="{desc} [{elapsed}]", leave=False)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            result: dict[str, Any] = _request(submission_url, token)
            if result.get("final"):
                break
            if bar is not None:
                note = f" ({result['message']})" if result.get("message") else ""
                bar.set_description_str(f"{exercise}: {result.get('status')}{note}")
                bar.update(0)
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"not graded within {timeout_s:g} s; the grade will still arrive: see "
                    f"{base}/submissions/{accepted['id']}"
                )
            time.sleep(POLL_S)
    finally:
        if bar is not None:
            bar.close()
    if show:
        _show(result)
    return result
