"""Property tests: save -> load is the identity, and parsers fail only with DeepfitError."""

import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepfit.config import RunConfig
from deepfit.data.sources.tabular import read_frame
from deepfit.errors import ConfigError, DataError
from deepfit.train.checkpoint import load_checkpoint, save_checkpoint

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

tensors = st.builds(lambda shape, seed: torch.randn(tuple(shape), generator=torch.Generator()
                                                    .manual_seed(seed)),
                    st.lists(st.integers(0, 4), max_size=3), st.integers(0, 2 ** 31))
leaves = st.one_of(st.integers(-2 ** 40, 2 ** 40), st.floats(allow_nan=False),
                   st.text(max_size=20), st.booleans(), st.none(), tensors)
trees = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20)


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


@FAST
@given(tree=st.dictionaries(st.text(max_size=8), trees, max_size=5))
def test_checkpoint_save_then_load_is_the_identity(tmp_path, tree):
    path = tmp_path / "ck.pt"
    save_checkpoint(tree, path, keep_previous=True)
    assert _same(load_checkpoint(path), tree)


@FAST
@given(text=st.text(max_size=300))
def test_config_parser_fails_only_with_config_error(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        RunConfig.load(path)
    except ConfigError:
        pass


@FAST
@given(raw=st.binary(max_size=400), suffix=st.sampled_from([".csv", ".tsv", ".npz", ".npy",
                                                           ".parquet"]))
def test_table_reader_fails_only_with_data_error(tmp_path, raw, suffix):
    path = tmp_path / f"t{suffix}"
    path.write_bytes(raw)
    try:
        read_frame(path)
    except DataError:
        pass


@FAST
@given(rows=st.lists(st.lists(st.text(alphabet="ab1,;\t\" .-\n", max_size=6), min_size=1,
                              max_size=4), min_size=1, max_size=8))
def test_csv_like_text_fails_only_with_data_error(tmp_path, rows):
    path = tmp_path / "t.csv"
    path.write_text("\n".join(",".join(r) for r in rows), encoding="utf-8")
    try:
        read_frame(path)
    except DataError:
        pass
