"""Every script in examples/ runs end to end in --quick mode and prints its key result.

Each script is run as a user would run it (``python examples/NAME.py --quick --out DIR``), in
a fresh interpreter, from an empty working directory so that nothing lands in the repo. The
scripts that need nothing from their test run two at a time, started together by a fixture
(most of a quick run is the interpreter importing PyTorch, which a second core overlaps).
The bounds are looser than the full runs' results (see the comment at the top of each
script and examples/README.md) but were met on every quick run we measured.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ACCURACY = re.compile(r"test accuracy = ([0-9.]+) on (\d+) rows")

# script -> (lowest quick-mode test accuracy accepted, test rows); linear_regression is
# checked by its own test below.
CLASSIFIERS = {
    "logistic_regression.py": (0.85, 50),
    "xor.py": (0.95, 80),
    "breast_cancer.py": (0.90, 114),
    "omics_multiclass.py": (0.90, 215),
    "own_module.py": (0.90, 114),
}


def _launch(name: str, tmp_path: Path, *extra: str, threads: str | None = None):
    out = tmp_path / "runs"
    work = tmp_path / "cwd"
    work.mkdir(parents=True)
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
           "DEEPFIT_CACHE": str(tmp_path / "cache")}
    if threads:
        env["OMP_NUM_THREADS"] = threads
    return subprocess.run([sys.executable, str(EXAMPLES / name), "--quick", "--out", str(out),
                           *extra],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)


def _checked(name: str, tmp_path: Path, proc: subprocess.CompletedProcess) -> str:
    out, work = tmp_path / "runs", tmp_path / "cwd"
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    assert not any(work.iterdir()), f"{name} wrote into its working directory"
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1 and (runs[0] / "metrics.json").is_file(), list(out.iterdir())
    return proc.stdout


def run_example(name: str, tmp_path: Path, *extra: str) -> str:
    return _checked(name, tmp_path, _launch(name, tmp_path, *extra))


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory):
    """linear_regression and the classifiers, two at a time, one thread each: name ->
    (its folder, its finished process)."""
    names = ["linear_regression.py", *sorted(CLASSIFIERS)]
    roots = {n: tmp_path_factory.mktemp(n.removesuffix(".py")) for n in names}
    with ThreadPoolExecutor(2) as pool:
        procs = dict(zip(names, pool.map(lambda n: _launch(n, roots[n], threads="1"), names)))
    return {n: (roots[n], procs[n]) for n in names}


def test_every_example_is_tested():
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == set(CLASSIFIERS) | {"linear_regression.py", "fashion_mnist_mlp.py",
                                          "cifar_cnn.py"}


def test_linear_regression_recovers_w_and_b(quick_runs):
    root, proc = quick_runs["linear_regression.py"]
    stdout = _checked("linear_regression.py", root, proc)
    match = re.search(r"w = (-?[0-9.]+), b = (-?[0-9.]+)", stdout)
    assert match, stdout
    w, b = map(float, match.groups())
    assert abs(w - 3) < 0.3 and abs(b - 2) < 0.3, (w, b)


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_classifier_example_reaches_its_accuracy(name, quick_runs):
    tmp_path, proc = quick_runs[name]
    stdout = _checked(name, tmp_path, proc)
    match = ACCURACY.search(stdout)
    assert match, stdout
    accuracy, rows = float(match.group(1)), int(match.group(2))
    low, expected_rows = CLASSIFIERS[name]
    assert rows == expected_rows and accuracy >= low, stdout
    report = re.search(r"^report: (.+)$", stdout, re.MULTILINE)
    if report:
        assert Path(report.group(1)).is_file(), stdout
    if name == "xor.py":
        png = tmp_path / "runs" / "xor_hidden_representation.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_mlp_example(tmp_path):
    stdout = run_example("fashion_mnist_mlp.py", tmp_path)
    accuracy, rows = map(float, ACCURACY.search(stdout).groups())
    assert rows == 10000 and accuracy >= 0.80, stdout  # one epoch of the 784-512-512-10 MLP


def test_cifar_cnn_example_on_an_image_folder(tmp_path):
    """CIFAR-10 needs a download; the test gives the script a small folder of 32x32 colour
    images instead (the quick run checks the plumbing, two epochs learn little)."""
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(0)
    for k, cls in enumerate(("red", "green", "blue")):
        (tmp_path / "colours" / cls).mkdir(parents=True)
        for i in range(20):
            a = rng.integers(0, 80, (32, 32, 3)).astype(np.uint8)
            a[..., k] += 150
            Image.fromarray(a).save(tmp_path / "colours" / cls / f"{i}.png")
    stdout = run_example("cifar_cnn.py", tmp_path, "--data", str(tmp_path / "colours"))
    accuracy, rows = map(float, ACCURACY.search(stdout).groups())
    assert rows == 12 and 0.0 <= accuracy <= 1.0, stdout
