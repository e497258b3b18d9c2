"""``hf:owner/name[@config]``: an image dataset from the Hugging Face hub (optional package)."""

from __future__ import annotations

import inspect
import re

from deepfit.data.images.hf import Part, assemble, table_features
from deepfit.data.images.imageset import ImageSet
from deepfit.data.images.options import ImageOptions, data_root, split_name
from deepfit.errors import DataError

PREFIX = "hf:"


def load_hub(spec: str, opts: ImageOptions) -> ImageSet:
    """Load every split of a hub dataset through ``datasets.load_dataset``.

    The download goes to ``<data root>/huggingface``. Remote code runs only when
    ``opts.trust_remote_code`` is set (and the installed ``datasets`` still supports it).
    ``opts.download`` does not apply: ``datasets`` decides (``HF_DATASETS_OFFLINE=1`` keeps
    it to its cache).

    Raises:
        DataError: a malformed name, the ``datasets`` package missing, the dataset not
            reachable (offline, misspelt, private), or a split that is not
            train / validation / test.
    """
    ref = spec[len(PREFIX):].strip()
    repo, _, config = ref.partition("@")
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", repo) or (config and not config.strip()):
        raise DataError(f"'{spec}' is not a hub dataset name; use hf:owner/name or "
                        "hf:owner/name@config")
    try:
        import datasets
    except ImportError:
        raise DataError(f"'{spec}' needs the Hugging Face 'datasets' package; install it with "
                        "pip install 'deepfit[hf]'") from None
    kwargs = {"cache_dir": str(data_root(opts) / "huggingface")}
    if "trust_remote_code" in inspect.signature(datasets.load_dataset).parameters:
        kwargs["trust_remote_code"] = opts.trust_remote_code
    try:
        loaded = datasets.load_dataset(repo, config or None, **kwargs)
    except Exception as exc:  # network, auth, missing repo and script errors all land here
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"could not load Hugging Face dataset '{repo}' (offline, misspelt or "
                        f"private?): {text[:200]}") from None
    splits = loaded.items() if hasattr(loaded, "items") else [("train", loaded)]
    parts = []
    for raw, dataset in splits:
        split = split_name(raw)
        if split is None:
            raise DataError(f"split '{raw}' of hub dataset '{repo}' is not train, validation "
                            "or test; deepfit cannot place it")
        table = dataset.data.table
        features = table_features(table.schema)
        if not features and hasattr(dataset.features, "to_dict"):
            features = dataset.features.to_dict()
        parts.append(Part(table, split, f"hf:{ref} [{raw}]", None, features))
    if not parts:
        raise DataError(f"hub dataset '{repo}' has no splits")
    return assemble(parts, opts, name=repo.split("/")[-1],
                    description=f"Hugging Face hub dataset '{ref}'")
