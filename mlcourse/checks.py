"""How check cells report the values they check: a typed channel of their own, not printed text.

The grader rewrites each graded check cell before it runs (``grader.grading.checkvalues``):
its ``print(...)`` calls and its final expression go through a :class:`Reporter`, which shows
them as a person would read them (``text/plain``) and also publishes them, normalised by type,
under :data:`MIME`. Grading compares only that channel, so

- a value is a value however a library spells it: ``np.int64(338350)`` and ``338350`` are the
  same integer, ``np.True_`` is ``True``, arrays and tensors compare element by element;
- what the learner's own code prints (a debug line) is never compared;
- a function that *prints* the right number and returns ``None`` reports ``None``.

Authors may also call :func:`report` in a check to report values explicitly. Learner code
runs inside the check (the check calls it), so each payload carries the run's nonce, which
the trusted side checks; a payload without it is ignored.
"""

from __future__ import annotations

import math
import sys
from typing import Any

#: the MIME type of a reported payload: ``{"nonce", "kind", "values": [encoded, ...]}``
MIME = "application/vnd.mlcourse.check-values+json"
#: how deep nested containers are encoded before the rest is reported by its text
MAX_DEPTH = 8
#: longest sequence reported element by element (longer: its text)
MAX_ITEMS = 100_000

__all__ = ["MIME", "Reporter", "encode", "report"]


def _number(value: float) -> Any:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _scalar(value: Any) -> dict[str, Any] | None:
    """Python and NumPy scalars, by what they are (bool, int, float, str, None)."""
    if value is None:
        return {"t": "none"}
    kind = type(value)
    if kind is bool:
        return {"t": "bool", "v": value}
    if kind is int:
        return {"t": "int", "v": value}
    if kind is float:
        return {"t": "float", "v": _number(value)}
    if kind is str:
        return {"t": "str", "v": value}
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.generic):
        if isinstance(value, numpy.bool_):
            return {"t": "bool", "v": bool(value)}
        if isinstance(value, numpy.integer):
            return {"t": "int", "v": int(value)}
        if isinstance(value, numpy.floating):
            return {"t": "float", "v": _number(float(value))}
        if isinstance(value, numpy.str_):
            return {"t": "str", "v": str(value)}
    return None


def _array(value: Any) -> dict[str, Any] | None:
    """NumPy arrays and torch tensors: shape, dtype kind and the values, flattened."""
    numpy = sys.modules.get("numpy")
    torch = sys.modules.get("torch")
    if torch is not None and type(value) is torch.Tensor:
        value = value.detach().cpu().numpy()
    if numpy is None or type(value) is not numpy.ndarray or value.size > MAX_ITEMS:
        return None
    kind = value.dtype.kind
    if kind not in "biuf":
        return None
    flat = [_number(float(x)) if kind == "f" else (bool(x) if kind == "b" else int(x)) for x in value.ravel().tolist()]
    return {"t": "array", "kind": {"u": "i"}.get(kind, kind), "shape": list(value.shape), "v": flat}


def _frame(value: Any, depth: int) -> dict[str, Any] | None:
    """pandas DataFrames and Series: columns by name, each with its dtype kind and values."""
    pandas = sys.modules.get("pandas")
    if pandas is None:
        return None
    if type(value) is pandas.Series:
        value = value.to_frame(name=str(value.name))
    elif type(value) is not pandas.DataFrame:
        return None
    if value.size > MAX_ITEMS:
        return None
    columns = []
    for name in value.columns:
        column = value[name]
        kind = column.dtype.kind if hasattr(column.dtype, "kind") else "O"
        columns.append({"name": str(name), "kind": kind, "v": [encode(x, depth + 1) for x in column.tolist()]})
    index = [encode(x, depth + 1) for x in value.index.tolist()]
    return {"t": "frame", "columns": columns, "index": index}


def encode(value: Any, depth: int = 0) -> dict[str, Any]:
    """``value`` as typed JSON, normalised so equal values of different spellings encode equally.

    Types are checked exactly (``type(x) is int``), never by ``isinstance`` alone, and no method
    of the value is called but the containers' own iteration: a learner's object cannot make
    itself look like another value. Anything else is reported by its text (``repr``).
    """
    scalar = _scalar(value)
    if scalar is not None:
        return scalar
    if depth < MAX_DEPTH:
        kind = type(value)
        if kind in (list, tuple) and len(value) <= MAX_ITEMS:
            return {"t": "list", "v": [encode(x, depth + 1) for x in value]}
        if kind in (set, frozenset) and len(value) <= MAX_ITEMS:
            return {"t": "set", "v": [encode(x, depth + 1) for x in value]}
        if kind is dict and len(value) <= MAX_ITEMS:
            return {"t": "dict", "v": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
        array = _array(value)
        if array is not None:
            return array
        frame = _frame(value, depth)
        if frame is not None:
            return frame
    try:
        text = repr(value)
    except Exception as exc:  # a learner's __repr__ that raises
        text = f"<unprintable {type(value).__name__}: {type(exc).__name__}>"
    return {"t": "repr", "v": text[:10_000]}


def _text(value: Any) -> str:
    """``str(value)``, as ``print`` shows it, even when a learner's ``__str__`` raises."""
    try:
        return str(value)
    except Exception as exc:
        return f"<unprintable {type(value).__name__}: {type(exc).__name__}>"


def _printed(value: Any) -> dict[str, Any]:
    """A printed value: numbers, strings, arrays and frames by type; anything else as ``print`` shows it."""
    typed = _scalar(value) or _array(value) or _frame(value, 0)
    return typed if typed is not None else {"t": "str", "v": _text(value)[:100_000]}


def _publish(nonce: str, kind: str, values: list[dict[str, Any]], text: str) -> None:
    """Show ``text`` and publish the encoded ``values`` under :data:`MIME`."""
    from IPython.display import display

    payload = {"nonce": nonce, "kind": kind, "values": values}
    display({MIME: payload, "text/plain": text}, raw=True)


class Reporter:
    """What a rewritten check cell calls instead of ``print`` and around its final expression."""

    def __init__(self, nonce: str) -> None:
        self._nonce = nonce

    def print(
        self, *values: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
    ) -> None:
        """``print``, reported: shown as printed, compared by value."""
        if file is not None:  # printing to a file or stderr is not a reported value
            print(*values, sep=sep, end=end, file=file, flush=flush)
            return
        printed = [_printed(v) for v in values]
        text = (" " if sep is None else sep).join(_text(v) for v in values)
        _publish(self._nonce, "print", printed, text)

    def value(self, value: Any) -> None:
        """A hidden check's final expression: reported, ``None`` included (a function that returned nothing)."""
        _publish(self._nonce, "value", [encode(value)], repr(value))

    def final(self, value: Any) -> Any:
        """A visible check's final expression: ``False`` fails the check, as an exception would."""
        scalar = _scalar(value)
        if scalar is not None and scalar["t"] == "bool" and scalar["v"] is False:
            raise AssertionError("the check's final expression is False")
        return value


def report(*values: Any) -> None:
    """Report values from a check explicitly (outside a graded check: shown, not compared)."""
    reporter = globals().get("_current")
    if isinstance(reporter, Reporter):
        reporter.value(values[0] if len(values) == 1 else list(values))
    else:
        print(*values)
