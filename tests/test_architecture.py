"""Rules of the codebase that must not silently erode."""

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "deepfit"

# Lower layers never import higher ones: config -> data -> model -> train -> evaluate -> report.
LAYERS = [
    {"errors", "version", "config", "config_rules", "config_scope", "files",
     "forked"},
    {"data"},
    {"models", "task"},
    {"train"},
    {"evaluate"},
    {"report", "run"},
    {"result", "assemble", "pipeline", "summary", "inspection", "explanations", "compare", "cv",
     "detection",
     "tune", "sklearn", "estimators", "serve", "playground", "predict_files", "export", "track"},
    {"cli", "cli_args", "launch", "entry", "__main__", "__init__"},
]


def _layer(module: str) -> int:
    top = module.split(".")[0]
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"module deepfit.{module} is in no layer; add it to LAYERS")


def _modules():
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        yield ".".join(rel.parts), path


def test_imports_flow_one_way():
    problems = []
    for name, path in _modules():
        own = _layer(name if name != "__init__" else "__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("deepfit."):
                targets = [node.module[len("deepfit."):]]
            elif isinstance(node, ast.Import):
                targets = [a.name[len("deepfit."):] for a in node.names if a.name.startswith("deepfit.")]
            for target in targets:
                if _layer(target) > own:
                    problems.append(f"deepfit.{name} imports higher layer deepfit.{target}")
    assert not problems, "\n".join(problems)


def test_train_knows_nothing_of_evaluation_or_the_cli():
    for name, path in _modules():
        if name.startswith(("data", "models", "train", "evaluate")):
            assert "deepfit.cli" not in path.read_text(), name


@pytest.mark.parametrize("pattern, why", [
    (r"torch\.load\((?![^)]*weights_only=True)", "torch.load without weights_only=True"),
    (r"yaml\.(load|unsafe_load)\(", "yaml.load is unsafe; use yaml.safe_load"),
    (r"allow_pickle\s*=\s*True", "NumPy pickles can run code"),
    (r"^from \S+ import \*", "star import"),
    (r"(?<![.\w])(exec|eval)\(", "exec / eval"),
])
def test_no_unsafe_or_magic_code(pattern, why):
    hits = [f"{p.relative_to(SRC)}:{i + 1}" for p in SRC.rglob("*.py")
            for i, line in enumerate(p.read_text().splitlines()) if re.search(pattern, line)]
    assert not hits, f"{why}: {hits}"


def test_modules_stay_small():
    big = [f"{p.relative_to(SRC)} ({n})" for p in SRC.rglob("*")
           if p.suffix in (".py", ".js", ".css", ".html")  # the playground's page too
           and (n := len(p.read_text().splitlines())) > 400]
    assert not big, big


def test_test_modules_have_unique_names():
    """The test folders are not packages: two test files of one name anywhere under tests/
    stop the whole run at collection ("import file mismatch")."""
    tests = Path(__file__).resolve().parent
    seen: dict[str, list[str]] = {}
    for path in tests.rglob("test_*.py"):
        seen.setdefault(path.name, []).append(str(path.relative_to(tests)))
    assert not [p for p in seen.values() if len(p) > 1], [p for p in seen.values() if len(p) > 1]
