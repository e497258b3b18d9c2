"""Regenerate docs/configuration.md from the config dataclasses: `make docs`."""

from pathlib import Path

from deepfit.config import describe_config

INTRO = """# Configuration

Every key, its default, and what is allowed. This is the output of `deepfit config`; save it
as a YAML file, edit it, and run `deepfit train my.yaml`. Keys can also be set on the
command line as `section.key=value` (values are YAML: `model.hidden=[128,64]`,
`train.grad_clip=1.0`, `data.target=null`) or with the flags `--data`, `--target`, `--task`,
`--model`, `--epochs`, `--lr`, `--batch-size`, `--seed`, `--device`, `--out`, `--name`.
Precedence: defaults < config file < `key=value` < flags.

Validation happens before any work starts: an unknown key names the closest valid one, a
wrong type or an out-of-range value names the key, the value and what is allowed. YAML is
read with `yaml.safe_load` only. The resolved config is saved as `config.yaml` in every run.

"""

if __name__ == "__main__":
    path = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    path.write_text(INTRO + "```yaml\n" + describe_config() + "```\n", encoding="utf-8")
    print(f"wrote {path}")
