"""Safe evaluation of Terracotta ``/compute`` expressions over masked arrays.

An expression is Python syntax restricted to: numbers, the operands ``v1``..``v5``,
the constants ``pi``, ``nan``, ``inf``, ``nomask``, the operators ``+ - * / % **``,
``& | ~``, unary ``-``/``+``, single comparisons ``== != < <= > >=``, and calls of the
functions in :data:`FUNCTIONS` (numpy / numpy.ma functions with a fixed number of
arguments).  Anything else (attributes, subscripts, lambdas, names not listed) is
rejected before evaluation.  Operands are evaluated in float64; the result is a
masked array in which NaN and infinite values are masked.
"""

from __future__ import annotations

import ast
import operator

import numpy as np

from leafmap_tiles.errors import StyleError

OPERANDS = ("v1", "v2", "v3", "v4", "v5")
MAX_LENGTH = 1000

FUNCTIONS = {
    # masks
    "where": (np.ma.where, 3),
    "getmask": (np.ma.getmaskarray, 1),
    "setmask": (lambda a, m: np.ma.masked_array(a, mask=m), 2),
    "masked_equal": (np.ma.masked_equal, 2),
    "masked_greater": (np.ma.masked_greater, 2),
    "masked_greater_equal": (np.ma.masked_greater_equal, 2),
    "masked_inside": (np.ma.masked_inside, 3),
    "masked_invalid": (np.ma.masked_invalid, 1),
    "masked_less": (np.ma.masked_less, 2),
    "masked_less_equal": (np.ma.masked_less_equal, 2),
    "masked_not_equal": (np.ma.masked_not_equal, 2),
    "masked_outside": (np.ma.masked_outside, 3),
    "masked_where": (np.ma.masked_where, 2),
    # math
    "minimum": (np.minimum, 2),
    "maximum": (np.maximum, 2),
    "abs": (np.abs, 1),
    "mod": (np.mod, 2),
    "sqrt": (np.sqrt, 1),
    "log": (np.log, 1),
    "log10": (np.log10, 1),
    "exp": (np.exp, 1),
    "sin": (np.sin, 1),
    "cos": (np.cos, 1),
    "tan": (np.tan, 1),
    "sinh": (np.sinh, 1),
    "cosh": (np.cosh, 1),
    "tanh": (np.tanh, 1),
    "arcsin": (np.arcsin, 1),
    "arccos": (np.arccos, 1),
    "arctan": (np.arctan, 1),
    "arcsinh": (np.arcsinh, 1),
    "arccosh": (np.arccosh, 1),
    "arctanh": (np.arctanh, 1),
}

CONSTANTS = {"pi": np.float64(np.pi), "nan": np.float64(np.nan), "inf": np.float64(np.inf), "nomask": np.ma.nomask}

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitAnd: operator.and_,
    ast.BitOr: operator.or_,
}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert}
_COMPARE = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}


def parse(expression: str) -> tuple[ast.Expression, set[str]]:
    """Check ``expression`` without evaluating it; returns the tree and the operands
    it uses.  Raises StyleError naming the problem."""
    if not isinstance(expression, str) or not expression.strip():
        raise StyleError("expression must not be empty")
    if len(expression) > MAX_LENGTH:
        raise StyleError(f"expression is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise StyleError(f"given string {expression} is not a valid expression") from None
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Expression, ast.Load)) or type(node) in _BINARY or type(node) in _UNARY:
            continue
        if type(node) in _COMPARE:
            continue
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise StyleError(f"operator {type(node.op).__name__} not allowed in expressions")
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise StyleError(f"operator {type(node.op).__name__} not allowed in expressions")
        elif isinstance(node, ast.Compare):
            if len(node.ops) != 1:
                raise StyleError("chained comparisons are not supported")
            if type(node.ops[0]) not in _COMPARE:
                raise StyleError(f"comparison {type(node.ops[0]).__name__} not allowed in expressions")
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                name = getattr(node.func, "id", type(node.func).__name__)
                raise StyleError(f"unknown function '{name}' in expression")
            if node.keywords:
                raise StyleError("keyword arguments are not allowed in expressions")
            nargs = FUNCTIONS[node.func.id][1]
            if len(node.args) != nargs:
                raise StyleError(
                    f"wrong number of arguments for function {node.func.id} (got {len(node.args)}, expected {nargs})"
                )
        elif isinstance(node, ast.Name):
            if node.id in OPERANDS:
                used.add(node.id)
            elif node.id not in CONSTANTS and node.id not in FUNCTIONS:
                raise StyleError(f"unrecognized name '{node.id}' in expression")
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise StyleError(f"constant {node.value!r} not allowed in expressions (numbers only)")
        else:
            raise StyleError(f"{type(node).__name__} not allowed in expressions")
    return tree, used


def evaluate(expression: str, operands: dict[str, np.ma.MaskedArray]) -> np.ma.MaskedArray:
    """Evaluate ``expression`` with ``operands`` (``{"v1": masked array, ...}``) in
    float64.  Raises StyleError for invalid expressions, operands it uses that are
    not given, or a result that is not an array of the operands' shape."""
    tree, used = parse(expression)
    missing = sorted(used - set(operands))
    if missing:
        raise StyleError(f"expression uses {', '.join(missing)} but no key was given for it")
    values = {k: np.ma.masked_array(v, dtype="float64") for k, v in operands.items()}
    shape = next(iter(values.values())).shape if values else None

    def visit(node):
        if isinstance(node, ast.Expression):
            return visit(node.body)
        if isinstance(node, ast.BinOp):
            return _BINARY[type(node.op)](visit(node.left), visit(node.right))
        if isinstance(node, ast.UnaryOp):
            return _UNARY[type(node.op)](visit(node.operand))
        if isinstance(node, ast.Compare):
            return _COMPARE[type(node.ops[0])](visit(node.left), visit(node.comparators[0]))
        if isinstance(node, ast.Call):
            return FUNCTIONS[node.func.id][0](*(visit(a) for a in node.args))
        if isinstance(node, ast.Name):
            return values[node.id] if node.id in values else CONSTANTS[node.id]
        if isinstance(node, ast.Constant):
            return np.float64(node.value)
        raise StyleError(f"{type(node).__name__} not allowed in expressions")  # pragma: no cover

    try:
        with np.errstate(all="ignore"):
            result = visit(tree)
    except StyleError:
        raise
    except Exception as exc:
        raise StyleError(f"error while executing expression: {exc}") from None
    if not isinstance(result, np.ndarray) or (shape is not None and np.shape(result) != shape):
        raise StyleError("expression does not return an array (it must use at least one operand v1..v5)")
    if result.dtype == bool:
        result = result.astype("float64")
    with np.errstate(all="ignore"):
        return np.ma.masked_invalid(np.ma.masked_array(result, dtype="float64"))
