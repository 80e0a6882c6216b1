"""The package's own modules import each other without cycles (imports inside functions count)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _module_names() -> dict[str, Path]:
    files = {".".join(p.relative_to(SRC).with_suffix("").parts): p for p in (SRC / "omnifuse").rglob("*.py")}
    return {name.removesuffix(".__init__"): path for name, path in files.items()}


def _imported(path: Path, package: list[str]) -> set[str]:
    """Dotted names a file imports (``from X import y`` gives ``X`` and ``X.y``); TYPE_CHECKING aside."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    checks = [node for node in ast.walk(tree)
              if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)]
    skip = {id(n) for node in checks for statement in node.body for n in ast.walk(statement)}
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                module = ".".join(package[: len(package) - node.level + 1] + ([module] if module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """{file: files it imports}, files relative to src/; package __init__ files are never targets."""
    modules = _module_names()
    targets = {name: path for name, path in modules.items() if path.name != "__init__.py"}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        me = str(path.relative_to(SRC))
        imported = {str(targets[n].relative_to(SRC)) for n in _imported(path, package) if n in targets}
        graph[me] = imported - {me}
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every file ``start`` imports, directly or through others."""
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph[node])
    return seen


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The groups of files that import each other (strongly connected components of two or more)."""
    reach = {node: reachable(graph, node) for node in graph}
    return {frozenset({node} | {other for other in reach[node] if node in reach[other]})
            for node in graph if node in reach[node]}


def test_the_cycle_finder_finds_a_cycle_and_nothing_else() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == {frozenset({"a", "b", "c"})}


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, (
        "new import cycle(s) among omnifuse's modules: "
        + "; ".join(" <-> ".join(sorted(c)) for c in found)
        + ". Move what both sides need into a module of their own (like rows.py or prepare.py)"
    )


BUILTIN_ERRORS = {"ValueError", "RuntimeError", "TypeError", "KeyError", "OSError", "ImportError",
                  "Exception", "AssertionError", "NotImplementedError", "IndexError", "LookupError"}
# Files allowed to raise a built-in exception, and why none of those reaches a user as it is.
INTERNAL_RAISES = {
    "omnifuse/training/state_file.py": "a non-tensor leaf is a bug; checkpoint.py catches a foreign file",
    "omnifuse/export/signature.py": "raised and caught in the same try, re-raised as ExportError",
    "omnifuse/retrieval/read.py": "raised and caught in the same try, re-raised as ModelDirError",
    "omnifuse/datasets/wordnet.py": "raised and caught in the same loop, re-raised as DataError",
    "omnifuse/serving/decode.py": "the JSON parser's hook, caught by the decoder and answered with a 4xx",
    "omnifuse/baselines/features/image.py": "caught by baselines.blocks: that baseline is skipped, reported",
    "omnifuse/baselines/features/text.py": "caught by baselines.blocks: that baseline is skipped, reported",
    "omnifuse/baselines/blocks.py": "caught in the same module: the baseline is skipped and reported",
    "omnifuse/baselines/models.py": "an internal contract (gradient boosting is never fitted for multilabel)",
    "omnifuse/layers/standardize.py": "an internal contract between the trainer and the layer",
    "omnifuse/registry.py": "registering a name twice is a programming error",
    "omnifuse/fusion/base.py": "abstract method",
    "omnifuse/encoders/base.py": "abstract method",
    "omnifuse/encoders/text.py": "built on a wrong or unfitted preprocessor: a programming error",
    "omnifuse/encoders/tabular.py": "an encoder built on a wrong preprocessor is a programming error",
    "omnifuse/encoders/lexical.py": "built on a wrong or unfitted preprocessor: a programming error",
    "omnifuse/generation/prompt.py": "a wrong preprocessor, or a forward before attach: programming errors",
    "omnifuse/data/preprocess/text.py": "an unfitted preprocessor is a programming error",
    "omnifuse/data/preprocess/tfidf.py": "an unfitted preprocessor is a programming error",
    "omnifuse/serving/batching.py": "the micro-batcher's own contracts (the server builds it)",
}


def _builtin_raises(path: Path) -> list[int]:
    """Line numbers of ``raise X(...)`` / ``raise X`` where X is a built-in exception class."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name) and target.id in BUILTIN_ERRORS:
                found.append(node.lineno)
    return found


def test_errors_a_user_can_cause_derive_from_the_project_error() -> None:
    """Every error raised on purpose is an OmnifuseError (the CLI prints it without a traceback), except in
    the files listed in INTERNAL_RAISES; a new built-in raise elsewhere must become one of omnifuse.errors."""
    offenders = {str(path.relative_to(SRC)): lines for path in sorted(SRC.rglob("*.py"))
                 if (lines := _builtin_raises(path)) and str(path.relative_to(SRC)) not in INTERNAL_RAISES}
    assert not offenders, f"built-in exceptions raised (use an omnifuse.errors class): {offenders}"
    stale = [name for name in INTERNAL_RAISES if not _builtin_raises(SRC / name)]
    assert not stale, f"INTERNAL_RAISES lists files that raise no built-in exception any more: {stale}"
