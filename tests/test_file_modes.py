"""Every file deepfit writes follows the user's umask, as ``open(path, "w")`` would: a
colleague who can read a run's report can read its predictions, weights and checkpoints."""

from __future__ import annotations

import os
import stat

import pytest

import deepfit
from deepfit.compare import compare_runs, write_comparison
from deepfit.files import atomic_write


@pytest.fixture
def umask():
    """Set a umask for the test and restore the previous one."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_mask(mask: int) -> None:
        os.umask(mask)

    yield set_mask
    os.umask(previous)


def _modes(folder):
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode)
            for p in folder.rglob("*")}


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_atomic_write_gives_the_umask_mode(tmp_path, umask, mask):
    umask(mask)
    path = atomic_write(tmp_path / "f.bin", lambda fh: fh.write(b"x"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_every_run_file_follows_the_umask(tmp_path, umask):
    umask(0o022)
    run = deepfit.train(data="iris", epochs=2, progress=False, out=str(tmp_path / "runs"),
                        bootstrap=20)
    other = deepfit.train(data="iris", epochs=2, progress=False, out=str(tmp_path / "runs"),
                          bootstrap=20, plots=False, report=False, seed=1)
    write_comparison(compare_runs([run.path, other.path]), tmp_path / "runs" / "compare.html")
    modes = _modes(tmp_path / "runs")
    files = {name for name, mode in modes.items() if (tmp_path / "runs" / name).is_file()}
    # The run wrote each kind of file it can write: checked below, not assumed.
    for expected in ("config.yaml", "metrics.json", "predictions.csv", "schema.json",
                     "summary.json", "history.csv", "model.safetensors", "report.html",
                     "report.md", "checkpoints/best.pt", "checkpoints/last.pt"):
        assert f"{run.path.name}/{expected}" in files, expected
    assert any(name.startswith(f"{run.path.name}/plots/") for name in files)
    assert "compare.html" in files
    wrong = {name: oct(mode) for name, mode in modes.items()
             if mode != (0o755 if (tmp_path / "runs" / name).is_dir() else 0o644)}
    assert not wrong, wrong


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_a_generated_data_set_follows_the_umask(tmp_path, umask, mask):
    """The synthetic smears are written into a temporary folder and renamed: the folder and
    its files get the user's modes, not the 0700 of ``tempfile.mkdtemp``."""
    from deepfit.config import DataConfig
    from deepfit.data.detection.source import smear_folder

    umask(mask)
    folder = smear_folder(DataConfig(source="synthetic-smear", root=str(tmp_path),
                                     n_samples=4), seed=0)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~mask
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask for p in files)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing left over
