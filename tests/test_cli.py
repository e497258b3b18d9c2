"""End to end through the command line: train -> evaluate -> predict -> runs -> report,
and one clear line (no traceback) for each bad input."""

import subprocess
import sys

import pandas as pd
import pytest

from deepfit.cli import main

FAST = ["train.epochs=8", "eval.plots=false"]


def _cli(*args, cwd=None):
    """Run the real console entry point in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "deepfit", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def _in_process(capsys, *args):
    """The same commands through ``main`` in this process (each subprocess pays PyTorch's
    import again); returns (exit code, stdout, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as stop:  # argparse's own refusals
        code = stop.code
    got = capsys.readouterr()
    return code, got.out, got.err


def test_train_evaluate_predict_runs_report(tmp_path, tabular_csv, capsys):
    out = tmp_path / "runs"
    # The first command through the real console entry point, as a user runs it ...
    res = _cli("train", "--data", str(tabular_csv), "--target", "diagnosis", "--out", str(out),
               "--name", "first", "--quiet", "data.id_column=patient", *FAST)
    assert res.returncode == 0, res.stderr
    assert "Accuracy" in res.stdout and "report:" in res.stdout
    run = out / "first"
    assert (run / "report.html").is_file() and (run / "checkpoints" / "best.pt").is_file()

    # ... the rest through main() in this process.
    code, stdout, err = _in_process(capsys, "evaluate", str(run), "--data", str(tabular_csv))
    assert code == 0, err
    assert "Accuracy" in stdout

    new_rows = pd.read_csv(tabular_csv).drop(columns=["diagnosis"]).head(7)
    new_rows.to_csv(tmp_path / "new.csv", index=False)
    predict = ("predict", str(run), str(tmp_path / "new.csv"), "-o", str(tmp_path / "p.csv"))
    code, stdout, err = _in_process(capsys, *predict)
    assert code == 0, err
    preds = pd.read_csv(tmp_path / "p.csv")
    assert len(preds) == 7 and list(preds.columns) == ["patient", "predicted", "p_healthy",
                                                       "p_sick"]
    assert preds["patient"].tolist() == new_rows["patient"].tolist()

    code, stdout, err = _in_process(capsys, *predict)
    assert code == 2 and "already exists" in err  # never overwrite

    code, stdout, err = _in_process(capsys, "runs", "--out", str(out))
    assert code == 0 and "first" in stdout and "Accuracy" in stdout

    (run / "report.html").unlink()
    code, stdout, err = _in_process(capsys, "report", str(run))
    assert code == 0 and (run / "report.html").is_file()

    # The saved config re-runs the experiment into a new directory.
    code, stdout, err = _in_process(capsys, "train", str(run / "config.yaml"), "--name",
                                    "second", "--quiet")
    assert code == 0, err
    assert (pd.read_csv(out / "second" / "history.csv")["train_loss"]
            == pd.read_csv(run / "history.csv")["train_loss"]).all()


def test_datasets_lists_builtins_and_generators(capsys):
    assert main(["datasets"]) == 0
    text = capsys.readouterr().out
    for name in ("breast_cancer", "digits", "iris", "wine", "diabetes", "xor", "circles",
                 "moons", "spiral", "gaussians", "linear"):
        assert name in text


@pytest.mark.parametrize("args, message", [
    (["--data", "missing.csv"], "data file 'missing.csv' does not exist"),
    (["--data", "breast_cancr"], "did you mean 'breast_cancer'"),
    (["--data", "iris", "train.lrr=0.1"], "unknown config key 'train.lrr' (did you mean 'train.lr'?)"),
    (["--data", "iris", "train.lr=-1"], "'train.lr' = -1.0 is out of range; it must be > 0.0"),
    (["--data", "iris", "train.epochs=many"], "'train.epochs' = 'many' is not an integer"),
    (["--data", "iris", "train.optimizer=adamm"], "did you mean 'adam'"),
    (["--data", "iris", "--model", "resnet"], "unknown model 'resnet'"),
    (["--data", "iris", "--target", "species"], "target column 'species' is not in iris"),
    (["--data", "iris", "lr"], "config file 'lr' does not exist"),
])
def test_bad_input_is_one_line_with_exit_code_2(tmp_path, args, message, capsys):
    code = main(["train", "--out", str(tmp_path / "runs"), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _bad_csv(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("content, message", [
    ("a,b,y\n1,2,0\n3,4,0\n5,6,0\n", "single value"),
    ("a,b,y\n1,2,0\n3,4,1\n5,6,1,9\n", "could not be parsed"),
    ("a,b,y\n1,2,0\n3,oops,1\n" + "".join(f"{i},{i},{i % 2}\n" for i in range(40)),
     "column 'b' is numeric except for 'oops'"),
    ("", "is empty"),
    ("a,b,y\n", "no data rows"),
])
def test_bad_csv_files_are_named_and_left_untouched(tmp_path, content, message, capsys):
    path = _bad_csv(tmp_path, "bad.csv", content)
    before = path.read_bytes()
    code = main(["train", "--data", str(path), "--out", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert path.read_bytes() == before


def test_split_that_leaves_a_class_out_of_training(tmp_path, capsys):
    rows = "".join(f"{i},{'a' if i % 2 else 'b'},train\n" for i in range(20))
    rows += "".join(f"{i},c,test\n" for i in range(5)) + "1,a,val\n2,b,val\n"
    path = _bad_csv(tmp_path, "split.csv", "x,label,part\n" + rows)
    code = main(["train", "--data", str(path), "--target", "label", "--out", str(tmp_path),
                 "--quiet", "data.split_column=part"])
    err = capsys.readouterr().err
    assert code == 2 and "class 'c' appears in the test split but not in training" in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    code = main(["--debug", "train", "--data", "nope.csv", "--out", str(tmp_path)])
    assert code == 2 and "Traceback" in capsys.readouterr().err


def test_evaluate_on_a_missing_run_is_clear(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "no deepfit run at" in capsys.readouterr().err


def test_configuration_doc_matches_the_code():
    from pathlib import Path

    from deepfit.config import describe_config

    doc = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    assert describe_config() in doc.read_text(), "run `make docs`"


def test_version_and_resume_flag_rules(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and "deepfit 0.1.0" in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path), "--epochs", "3"]) == 2
    assert "give no other options" in capsys.readouterr().err


def test_overrides_may_come_anywhere_among_the_options(tmp_path, tabular_csv, capsys):
    from deepfit.cli import parse
    args = parse(["train", "train.lr=0.01", "--epochs", "2", "eval.plots=false", "--quiet",
                  "data.id_column=patient"])
    assert args.args == ["train.lr=0.01", "eval.plots=false", "data.id_column=patient"]
    assert args.epochs == 2 and args.quiet
    code = main(["train", "--data", str(tabular_csv), "--target", "diagnosis",
                 "data.id_column=patient", "--epochs", "2", "eval.plots=false", "--out",
                 str(tmp_path / "runs"), "--name", "mixed", "--quiet", "eval.bootstrap=0"])
    assert code == 0
    config = (tmp_path / "runs" / "mixed" / "config.yaml").read_text()
    assert "id_column: patient" in config and "plots: false" in config \
        and "bootstrap: 0" in config
    # An unknown option is still refused, by argparse's own message and exit code.
    with pytest.raises(SystemExit) as info:
        parse(["train", "--data", "x.csv", "--bogus", "train.lr=0.1"])
    assert info.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_a_key_given_as_a_flag_and_as_key_value_is_refused(tmp_path, capsys):
    from deepfit.cli import main
    code = main(["train", "--data", "iris", "--epochs", "1", "train.max_epochs=3",
                 "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: train.epochs is given twice (train.max_epochs=3 and --epochs 1); keep one"
    code = main(["train", "--data", "iris", "train.lr=0.1", "train.learning_rate=0.2",
                 "--out", str(tmp_path)])
    assert code == 2 and "train.lr is given twice" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv,expected", [
    (["train", "--data", "iris", "--lr", "abc"],
     "error: argument --lr: invalid float value: 'abc' (see 'deepfit train --help')"),
    (["trian"], "error: argument COMMAND: invalid choice: 'trian'")])
def test_argparse_mistakes_are_one_line_too(argv, expected, capsys):
    from deepfit.cli import main
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(expected) and "usage:" not in err


def test_a_reader_that_leaves_early_gets_no_error_message():
    """``deepfit models | head -0``: the pipe breaks; no 'internal error' line."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "deepfit", "models"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before anything is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""
