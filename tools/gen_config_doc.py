"""Regenerate docs/configuration.md from the config dataclasses: `make docs`."""

from pathlib import Path

from deepfit.config import describe_config

INTRO = """# Configuration

Every key, its default, and what is allowed. This is the output of `deepfit config`; save it
as a YAML file, edit it, and run `deepfit train my.yaml`. Keys can also be set on the
command line as `section.key=value` (values are YAML: `model.hidden=[128,64]`,
`train.grad_clip=1.0`, `data.target=null`) or with the flags `--data`, `--target`, `--task`,
`--model`, `--epochs`, `--lr`, `--batch-size`, `--seed`, `--device`, `--out`, `--name`.
Precedence: defaults < config file < `key=value` and flags. One key given twice on the
command line, under any of its names (`--epochs 5 train.max_epochs=3`), is an error, as is
one keyword given twice from Python (`lr=0.1, learning_rate=0.01`): one would silently win.

Validation happens before any work starts: an unknown key names the closest valid one, a
wrong type or an out-of-range value names the key, the value and what is allowed. YAML is
read with `yaml.safe_load` only. The resolved config is saved as `config.yaml` in every run.

Nothing you set is silently ignored. Each key applies to some runs only, and a key set to
anything but its default on a run it does not apply to stops the run before training, in
one line naming the key and why (all such keys at once):

- tables only: `data.targets`, `split_column`, `val_file`, `test_file`, `id_column`,
  `drop_columns`, `missing`, `standardize`, `feature_transform`, `max_categories`;
  `data.scale_target` for regression tables; `data.sheet` for Excel files;
- images only: `data.image_size`, `resize` (with `image_size`), `color`, `augment`,
  `normalize`, `mean`, `std`, `bad_images`, `cache`, `max_memory_gb`, `train.channels_last`;
  `data.workers` when images are streamed from disk; `data.image_column` for image tables;
  `data.root` for named image datasets; `data.trust_remote_code` for `hf:` sets;
  `data.target` and `data.group_column` apply to tables and image tables, not to folders;
- toy generators only: `data.n_samples`, `data.noise`;
- by model: `model.hidden`, `activation`, `norm`, `init` (mlp); `model.dropout` (mlp, cnn);
  `model.channels` and `model.weights` (deepfit's image networks; weights also torchvision);
  `model.pretrained` (torchvision); `model.kwargs` (torchvision, your own module);
  `model.outputs` (your own module: deepfit's networks return logits);
- by another key: `train.momentum` (sgd, rmsprop), `train.nesterov` (sgd),
  `train.step_size` (step schedule), `train.gamma` (step, plateau), `train.plateau_patience`
  (plateau), `train.patience` (early stopping), `eval.beta` (fbeta objective),
  `eval.apply_threshold` (a threshold objective), `eval.ci_level` (bootstrap > 0),
  `track.experiment` (`track.mlflow` set; tracking: docs/deploy.md);
- by the number of processes: `train.sync_bn` (several processes on GPUs, docs/scaling.md);
- by task: `data.positive_class`, `eval.threshold_objective`, `eval.apply_threshold`,
  `eval.target` (binary); `data.label_map`, `train.class_weights`, `eval.betas`,
  `eval.calibration_bins` (binary, multiclass); `eval.bootstrap` > 0 (single-label tasks).

A run's `config.yaml` and its report leave out the keys that do not apply (a CNN run shows
no hidden layers). Names other tools use are accepted for the same key: `learning_rate`
(`train.lr`), `max_epochs` / `n_epochs` / `num_epochs` (`train.epochs`), `batch`
(`train.batch_size`), `optimiser`, `scheduler`, `random_state` (`train.seed`),
`max_grad_norm`, `label` (`data.target`), `validation_split` (`data.val_size`),
`hidden_layer_sizes` (`model.hidden`), `n_bootstrap` (`eval.bootstrap`), and a few more
(`deepfit.config.ALIASES`); a mistyped key suggests the one you most likely meant.

"""

if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    path.write_text(INTRO + "```yaml\n" + describe_config() + "```\n", encoding="utf-8")
    print(f"wrote {path}")
