"""What a notebook cell binds and reads, from its source: the names scoring follows between cells.

:func:`cell_names` parses a cell (IPython magics and shell lines left out; a cell that is not
valid Python is read line by line) and says which global names it binds, which it reads before
binding them (function bodies included, as they read globals when called), the functions and
classes it defines, and whether it holds a stub (``raise NotImplementedError``). Scoring
(:mod:`grader.grading.scoring`) uses it to name the exercise that kept a check from running.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass

from grader.authoring.stubs import python_code

NOT_IMPLEMENTED = "NotImplementedError"
#: what a cell that cannot be parsed defines, read line by line (a learner's syntax error)
_DEFINED_LINE = re.compile(r"^\s*(?:async\s+def|def|class)\s+(\w+)|^(\w+)\s*(?::[^=]*)?=(?!=)", re.MULTILINE)
_MAGIC_LINE = re.compile(r"^\s*[%!].*$", re.MULTILINE)


@dataclass(frozen=True)
class CellNames:
    """What a cell's source binds and reads (see :func:`cell_names`)."""

    #: global names it binds: functions, classes, assignments, imports, loop and ``with`` targets
    binds: frozenset[str] = frozenset()
    #: functions and classes it defines anywhere, by name and by qualified name (``Model.forward``)
    functions: frozenset[str] = frozenset()
    #: global names it reads before binding them itself (function bodies included)
    reads: frozenset[str] = frozenset()
    #: strings that could name a global (``globals()["check_schema"]``): followed, never blamed on their own
    strings: frozenset[str] = frozenset()
    #: it holds ``raise NotImplementedError`` (a stub) somewhere
    stub: bool = False
    #: names bound before its first top-level ``raise NotImplementedError`` (``None``: it has none)
    before_stub: frozenset[str] | None = None


def _raises_not_implemented(node: ast.AST) -> bool:
    if not isinstance(node, ast.Raise) or node.exc is None:
        return False
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return isinstance(exc, ast.Name) and exc.id == NOT_IMPLEMENTED


def _top_level_stub(statement: ast.stmt) -> bool:
    """Whether the statement itself (not a function or class it defines) raises ``NotImplementedError``."""
    todo: list[ast.AST] = [statement]
    while todo:
        node = todo.pop()
        if _raises_not_implemented(node):
            return True
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))
    return False


class _Scope(ast.NodeVisitor):
    """One scope's bindings in the order Python runs them: what is read before it is bound."""

    def __init__(self, bound: set[str] | None = None, prefix: str = "") -> None:
        self.bound: set[str] = set(bound or ())
        self.reads: set[str] = set()  # read before bound, right away
        self.later: set[str] = set()  # read by a function body (when it is called)
        self.globals: set[str] = set()  # declared ``global`` in a function body and bound there
        self.functions: set[str] = set()
        self.prefix = prefix

    def read(self, name: str) -> None:
        if name not in self.bound:
            self.reads.add(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.read(node.id)
        elif isinstance(node.ctx, ast.Store):
            self.bound.add(node.id)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self.read(node.target.id)
        self.visit(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.visit(node.annotation)
        if node.value is not None:
            self.visit(node.value)
            self.visit(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.visit(node.target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        for statement in [*node.body, *node.orelse]:
            self.visit(statement)

    visit_AsyncFor = visit_For

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name != "*":
                self.bound.add(alias.asname or alias.name.split(".")[0])

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.bound.add(node.name)
        for statement in node.body:
            self.visit(statement)

    def _comprehension(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> None:
        outer = set(self.bound)  # its loop variables are its own
        for generator in node.generators:
            self.visit(generator.iter)
            self.visit(generator.target)
            for condition in generator.ifs:
                self.visit(condition)
        for part in (node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,):
            self.visit(part)
        self.bound = outer

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

    def _body(self, name: str, arguments: ast.arguments | None, body: list[ast.stmt]) -> None:
        """A function's body: the globals it reads when called, the functions it defines."""
        inner = _Scope({a.arg for a in _arguments(arguments)}, prefix=f"{self.prefix}{name}.")
        declared = {n for s in body for g in ast.walk(s) if isinstance(g, ast.Global) for n in g.names}
        for statement in body:
            inner.visit(statement)
        self.later |= (inner.reads | inner.later) - (inner.bound - declared)
        self.globals |= (inner.bound & declared) | inner.globals
        self.functions |= inner.functions

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for expression in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if expression is not None:
                self.visit(expression)
        self.bound.add(node.name)
        self.functions |= {node.name, f"{self.prefix}{node.name}"}
        self._body(node.name, node.args, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for expression in [*node.args.defaults, *node.args.kw_defaults]:
            if expression is not None:
                self.visit(expression)
        self._body("<lambda>", node.args, [ast.Expr(node.body)])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for expression in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.visit(expression)
        inner = _Scope(prefix=f"{self.prefix}{node.name}.")  # the class body runs now; its names are its own
        for statement in node.body:
            inner.visit(statement)
        self.reads |= inner.reads - self.bound
        self.later |= inner.later
        self.globals |= inner.globals
        self.functions |= inner.functions | {node.name, f"{self.prefix}{node.name}"}
        self.bound.add(node.name)


def _arguments(arguments: ast.arguments | None) -> list[ast.arg]:
    if arguments is None:
        return []
    extra = [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    return [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, *extra]


@functools.lru_cache(maxsize=512)
def cell_names(source: str) -> CellNames:
    """What a cell binds and reads; read line by line when it is not valid Python."""
    for text in (source, _MAGIC_LINE.sub("", source)):
        try:
            return _parsed(ast.parse(python_code(text)))
        except (SyntaxError, ValueError, RecursionError, MemoryError):  # not Python, or nested past any sense
            continue
    defined = frozenset(a or b for a, b in _DEFINED_LINE.findall(source))
    return CellNames(binds=defined, functions=defined, stub=NOT_IMPLEMENTED in source)


def _parsed(tree: ast.Module) -> CellNames:
    scope, before_stub = _Scope(), None
    for statement in tree.body:
        if before_stub is None and _top_level_stub(statement):
            before_stub = frozenset(scope.bound)
        scope.visit(statement)
    strings = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier()
    }
    return CellNames(
        binds=frozenset(scope.bound | scope.globals),
        functions=frozenset(scope.functions),
        reads=frozenset(scope.reads | (scope.later - scope.bound)),
        strings=frozenset(strings),
        stub=any(_raises_not_implemented(node) for node in ast.walk(tree)),
        before_stub=before_stub,
    )
