"""How check cells report the values they check: a typed channel of their own, not printed text.

The grader rewrites each graded check cell before it runs (``grader.grading.checkvalues``):
its ``print(...)`` calls and its final expression go through a :class:`Reporter`, which shows
them as a person would read them (``text/plain``) and also publishes them, normalised by type,
under :data:`MIME`. Grading compares only that channel, so

- a value is a value however a library spells it: ``np.int64(338350)`` and ``338350`` are the
  same integer, ``np.True_`` is ``True``, arrays and tensors compare element by element;
- what the learner's own code prints (a debug line) is never compared;
- a function that *prints* the right number and returns ``None`` reports ``None``.

Authors may also call :func:`report` in a check to report values explicitly, and
:func:`criterion` to judge a value against a bound stated in the exercise text (macro-F1 at
least 0.5 on every held-out set): in a hidden check the grader counts on how many cases each
criterion failed and names it in the feedback, never the value; anywhere else (a visible check,
a lesson, the learner's own cell) a criterion that is not met raises ``AssertionError`` with the
value, so a learner can score themselves on fresh data with the same words. Learner code
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

#: how a criterion compares its value with its bound (the payload spells them so)
AT_LEAST, AT_MOST, HOLDS = "at_least", "at_most", "holds"

__all__ = ["MIME", "Reporter", "criterion", "encode", "report"]


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

    def __init__(self, nonce: str, *, hidden: bool = False) -> None:
        self._nonce = nonce
        #: in a hidden check, criteria are reported (and judged by the grader), not asserted
        self.hidden = hidden

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

    def criterion(self, name: str, value: Any, op: str, bound: float | None, cases: str, met: bool) -> None:
        """A hidden check's criterion: the value is reported for the grader to judge against the bound."""
        fields = [encode(name), encode(value), encode(op), encode(bound), encode(cases)]
        _publish(self._nonce, "criterion", fields, f"criterion: {_wording(name, op, bound)}")


def _wording(name: str, op: str, bound: float | None) -> str:
    if op == HOLDS:
        return name
    return f"{name} {'>=' if op == AT_LEAST else '<='} {bound:g}"


def _met(value: Any, op: str, bound: float | None) -> bool:
    scalar = _scalar(value)
    if scalar is None or scalar["t"] not in ("bool", "int", "float"):
        return False
    if op == HOLDS:
        return scalar["t"] == "bool" and scalar["v"] is True
    number = float(value)
    if math.isnan(number) or bound is None:
        return False
    return number >= bound if op == AT_LEAST else number <= bound


def criterion(
    name: str,
    value: Any,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    cases: str = "hidden cases",
) -> bool:
    """Judge ``value`` against a public bound: ``criterion("macro-F1", f1, at_least=0.5, cases="held-out sets")``.

    Give exactly one of ``at_least`` / ``at_most``, or neither for a truth value (``value`` must be
    ``True``). ``name`` and ``cases`` are the words the learner reads ("macro-F1 below 0.5 on 1 of
    2 held-out sets"): write them as literals, and state the bound in the exercise text.

    In a hidden check the value is reported to the grader, which judges it (the learner's kernel
    cannot pass a criterion by patching this function). Anywhere else a criterion that is not
    met raises ``AssertionError`` naming the value. Returns whether it is met.
    """
    if at_least is not None and at_most is not None:
        raise ValueError("give at_least or at_most, not both")
    op = AT_LEAST if at_least is not None else AT_MOST if at_most is not None else HOLDS
    bound = at_least if at_least is not None else at_most
    met = _met(value, op, None if bound is None else float(bound))
    reporter = globals().get("_current")
    if isinstance(reporter, Reporter) and reporter.hidden:
        reporter.criterion(name, value, op, None if bound is None else float(bound), cases, met)
        return met
    if not met:
        shown = _text(value)
        raise AssertionError(f"{_wording(name, op, bound)} is not met: got {shown[:80]}")
    return met


def report(*values: Any) -> None:
    """Report values from a check explicitly (outside a graded check: shown, not compared)."""
    reporter = globals().get("_current")
    if isinstance(reporter, Reporter):
        reporter.value(values[0] if len(values) == 1 else list(values))
    else:
        print(*values)
