"""The package's import rules (docs/architecture.md), read from the source with ``ast``:
no module imports a private (``_name``) of another module or reaches one through a
module it imported, and the imports made when modules load form no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import leafmap_tiles

ROOT = Path(leafmap_tiles.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _base(module: str, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    package = module.split(".")
    if MODULES[module].name != "__init__.py":
        package = package[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _imports(module: str, text: str | None = None) -> tuple[list[tuple[str, str, int, bool]], set[str]]:
    """([(importing what, of which module, line, at module level)], names bound to modules)
    of ``module`` (its file, or ``text`` as its source)."""
    tree = ast.parse(MODULES[module].read_text() if text is None else text)
    top = {id(n) for n in tree.body}
    found, module_names = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _base(module, node)
            if not base or not (base == "leafmap_tiles" or base.startswith("leafmap_tiles.")):
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in MODULES:  # a module (leafmap_tiles._gdal, providers.stac ...)
                    module_names.add(alias.asname or alias.name)
                    found.append((full, full, node.lineno, id(node) in top))
                else:
                    found.append((alias.name, base, node.lineno, id(node) in top))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("leafmap_tiles"):
                    found.append((alias.name, alias.name, node.lineno, id(node) in top))
                    if alias.asname:
                        module_names.add(alias.asname)
    return found, module_names


def _private_uses(module: str, text: str | None = None) -> list[str]:
    text = MODULES[module].read_text() if text is None else text
    found, module_names = _imports(module, text)
    out = []
    for name, source, line, _ in found:
        if source != module and _private(name.rsplit(".", 1)[-1]) and name not in MODULES:
            out.append(f"{module}:{line} imports {source}.{name}")
    for node in ast.walk(ast.parse(text)):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in module_names and _private(node.attr)):
            out.append(f"{module}:{node.lineno} uses {node.value.id}.{node.attr}")
    return out


def test_no_private_name_of_another_module():
    """A private name stays in its module; the shared top-level modules (``_paths``,
    ``_credentials``, ``_gdal`` ...) are package-private modules, imported whole."""
    assert [o for module in MODULES for o in _private_uses(module)] == []


def test_the_rule_sees_private_imports():
    """What the rule catches (the imports the review found before issue 17's fix)."""
    text = ("from leafmap_tiles.render.engine import _band_labels, file_signature\n"
            "from ..map.layers import _index_list\n"
            "from leafmap_tiles.providers import stac as _stac\n"
            "from leafmap_tiles import _credentials, __version__\n"
            "def f():\n    return _stac._tile_server(), _credentials.for_url('x')\n")
    assert _private_uses("leafmap_tiles.render.zonal", text) == [
        "leafmap_tiles.render.zonal:1 imports leafmap_tiles.render.engine._band_labels",
        "leafmap_tiles.render.zonal:2 imports leafmap_tiles.map.layers._index_list",
        "leafmap_tiles.render.zonal:6 uses _stac._tile_server",
    ]


def test_no_import_cycle_when_modules_load():
    """Module-level imports between the package's modules form no cycle (a function
    may import lazily; a package's ``__init__`` re-exporting its modules is not a cycle)."""
    graph = {}
    for module in MODULES:
        found, _ = _imports(module)
        graph[module] = {src for _, src, _, at_top in found
                         if at_top and src in MODULES and src != module and not module.startswith(src + ".")}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    assert cycles == []


# ------------------------------------------------------------------ one error tree

#: Built-in exceptions the package may raise itself (docs/architecture.md, rule 1).
ALLOWED_BUILTINS = {
    "TypeError": "a call with an argument of the wrong Python type or an unknown keyword, as Python's own "
                 "functions do",
    "NotImplementedError": "the whole body of a method that each subclass overrides",
    "AttributeError": "a module's __getattr__ (PEP 562) for a name it does not have",
    "ImportError": "an optional dependency that is not installed (geopandas ...)",
    "AssertionError": "code that cannot be reached, marked for the type checker",
}
#: (module, built-in) pairs left for another branch: leafmap_tiles/protocol.py is issue 17-d's.
LEFT_FOR_NOW = {("leafmap_tiles.protocol", "ValueError")}

BUILTIN_EXCEPTIONS = {name for name, value in vars(__import__("builtins")).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}


def _raised_builtin(node: ast.Raise) -> str | None:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    return exc.id if isinstance(exc, ast.Name) and exc.id in BUILTIN_EXCEPTIONS else None


def _bare_builtin_raises(module: str, text: str | None = None) -> list[str]:
    tree = ast.parse(MODULES[module].read_text() if text is None else text)
    out = []

    def visit(node: ast.AST, fn: ast.AST | None) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            fn = node
        if isinstance(node, ast.Raise) and node.exc is not None:
            name = _raised_builtin(node)
            body = [s for s in getattr(fn, "body", [])
                    if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]  # docstring
            if name is None or (module, name) in LEFT_FOR_NOW:
                pass
            elif name == "NotImplementedError" and body != [node]:
                out.append(f"{module}:{node.lineno} raises NotImplementedError outside a method left to subclasses")
            elif name == "AttributeError" and getattr(fn, "name", None) != "__getattr__":
                out.append(f"{module}:{node.lineno} raises AttributeError outside a module __getattr__")
            elif name not in ALLOWED_BUILTINS:
                out.append(f"{module}:{node.lineno} raises {name}")
        for child in ast.iter_child_nodes(node):
            visit(child, fn)

    visit(tree, None)
    return sorted(out)


def test_every_error_raised_on_purpose_is_a_class_of_the_tree():
    """No module raises a bare built-in exception (ValueError, KeyError, RuntimeError,
    FileNotFoundError ...): each error is a class of leafmap_tiles/errors.py that
    subclasses that built-in, so ``except ValueError`` keeps working; the documented
    exceptions are :data:`ALLOWED_BUILTINS`."""
    assert [o for module in MODULES for o in _bare_builtin_raises(module)] == []


def test_the_error_rule_sees_bare_raises():
    text = ("class A:\n    def f(self):\n        raise NotImplementedError\n"
            "def g(x):\n    if x:\n        raise ValueError('bad')\n    raise NotImplementedError('no')\n"
            "def h():\n    raise KeyError\n"
            "def __getattr__(name):\n    raise AttributeError(name)\n"
            "def k():\n    raise AttributeError('x')\n"
            "def ok(x):\n    if not isinstance(x, str):\n        raise TypeError('x')\n    raise StyleError('y')\n")
    assert _bare_builtin_raises("leafmap_tiles.render.zonal", text) == [
        "leafmap_tiles.render.zonal:13 raises AttributeError outside a module __getattr__",
        "leafmap_tiles.render.zonal:6 raises ValueError",
        "leafmap_tiles.render.zonal:7 raises NotImplementedError outside a method left to subclasses",
        "leafmap_tiles.render.zonal:9 raises KeyError",
    ]


# ------------------------------------------------------------------ one GDAL classifier

#: Modules that test an exception's text for words of something other than GDAL, curl
#: or PROJ (docs/architecture.md, rule 1: GDAL's words are read in gdal_errors.py only).
OTHER_WORDS = {
    "leafmap_tiles.store.sqlite": "SQLite's 'database is locked' (a write to retry)",
    "leafmap_tiles.providers.search": "pystac-client's APIError of a STAC API that refused a filter",
    "leafmap_tiles.store.remote": "its own InvalidDatabaseError's words ('not a valid Terracotta database')",
}


def _message_tests(module: str, text: str | None = None) -> list[str]:
    """``"words" in <an exception's text>`` outside gdal_errors.py: a second classifier."""
    text = MODULES[module].read_text() if text is None else text
    out = []
    for node in ast.walk(ast.parse(text)):
        if (isinstance(node, ast.Compare) and any(isinstance(o, (ast.In, ast.NotIn)) for o in node.ops)
                and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)):
            right = ast.get_source_segment(text, node.comparators[0]) or ""
            if any(w in right for w in ("exc", "err", "msg", "low", "message")):
                out.append(f"{module}:{node.lineno} tests {right} for {node.left.value!r}")
    return out


def test_gdal_messages_are_read_by_the_one_classifier_only():
    found = [o for module in MODULES if module != "leafmap_tiles.gdal_errors" and module not in OTHER_WORDS
             for o in _message_tests(module)]
    assert found == []
    assert _message_tests("leafmap_tiles.render.zonal", "def f(exc):\n    low = str(exc).lower()\n"
                          "    return 'not recognized as' in low or 'x' in names\n") == [
        "leafmap_tiles.render.zonal:3 tests low for 'not recognized as'"]
