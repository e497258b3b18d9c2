"""Batched augmentation: every op's contract, exact geometry, randomness discipline, errors."""

from __future__ import annotations

import doctest

import pytest
import torch
import torch.nn.functional as F

import deepfit.data.images.augment as augment_module
from deepfit.data.images.augment import (COLOUR_PRESETS, PRESETS, AugmentOp, Augmenter,
                                         resolve_augment)
from deepfit.config import RunConfig
from deepfit.errors import ConfigError

SPECS = ["hflip", "vflip", "rotate", "crop", "resized_crop", "jitter", "blur", "noise", "erase",
         "none", "auto", "light", "standard", "strong",
         ["hflip", "vflip", "crop:2", "rotate:30", "resized_crop:0.2", "jitter:0.5", "blur:2",
          "noise:0.2", "erase:1"]]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _batch(b: int, c: int, size: tuple[int, int], seed: int = 0) -> torch.Tensor:
    return torch.rand(b, c, *size, generator=_gen(seed))


@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("channels,size,b", [(3, (12, 20), 16), (1, (16, 16), 16), (3, (9, 7), 1)])
def test_contract_shape_range_purity_and_determinism(spec, channels, size, b):
    aug = Augmenter(spec, channels, size)
    x = _batch(b, channels, size)
    before = x.clone()
    out = aug(x, _gen(1))
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert out.data_ptr() != x.data_ptr()
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(x, before)  # the input is never modified in place
    assert torch.equal(out, aug(x, _gen(1)))
    if aug.ops and b > 1:
        assert not torch.equal(out, aug(x, _gen(2)))


def test_independent_of_the_global_rng():
    aug = Augmenter(SPECS[-1], 3, (12, 20))
    x = _batch(8, 3, (12, 20))
    torch.manual_seed(123)
    first = aug(x, _gen(5))
    torch.manual_seed(456)
    torch.rand(10)  # advance the global stream too
    assert torch.equal(first, aug(x, _gen(5)))


def test_generator_state_advances_so_batches_differ():
    aug = Augmenter("strong", 3, (12, 12))
    x = _batch(8, 3, (12, 12))
    g = _gen(0)
    assert not torch.equal(aug(x, g), aug(x, g))


def test_spec_order_does_not_matter():
    x = _batch(8, 3, (12, 12))
    a = Augmenter(["crop", "hflip", "noise"], 3, (12, 12))(x, _gen(3))
    b = Augmenter("noise, hflip ,crop", 3, (12, 12))(x, _gen(3))
    assert torch.equal(a, b)


def test_flips_with_probability_one_and_zero_are_exact():
    x = _batch(4, 3, (5, 7))
    assert torch.equal(Augmenter("hflip:1", 3, (5, 7))(x, _gen(0)), x.flip(-1))
    assert torch.equal(Augmenter("vflip:1.0", 3, (5, 7))(x, _gen(0)), x.flip(-2))
    assert torch.equal(Augmenter("hflip:0", 3, (5, 7))(x, _gen(0)), x)


def test_hflip_is_decided_per_sample():
    x = _batch(64, 1, (4, 6))
    out = Augmenter("hflip", 1, (4, 6))(x, _gen(0))
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert bool((flipped | kept).all())
    assert 10 < int(flipped.sum()) < 54


def test_pad_and_crop_output_is_a_window_of_the_reflect_padded_input():
    h, w, pad = 6, 9, 3
    x = (torch.arange(h * w, dtype=torch.float32) / (h * w)).view(1, 1, h, w).repeat(24, 2, 1, 1)
    x[:, 1] = 1 - x[:, 1]  # channels must move together
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    out = Augmenter(f"crop:{pad}", 2, (h, w))(x, _gen(0))
    offsets = set()
    for i in range(len(x)):
        hits = [(dy, dx) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)
                if torch.equal(out[i], padded[i, :, dy:dy + h, dx:dx + w])]
        assert hits, f"sample {i} is not an exact window of the padded image"
        offsets.add(hits[0])
    assert len(offsets) > 5  # offsets are drawn per sample


def test_default_crop_padding_scales_with_image_size():
    assert resolve_augment("crop", 3, (32, 32)) == ["crop:4"]
    assert resolve_augment("crop", 1, (28, 28)) == ["crop:4"]
    assert resolve_augment("crop", 3, (64, 96)) == ["crop:8"]
    assert resolve_augment("crop", 1, (3, 3)) == ["crop:1"]


@pytest.mark.parametrize("size", [(16, 16), (12, 20)])
def test_zero_rotation_and_full_scale_crop_are_identity(size):
    x = _batch(6, 3, size)
    for spec in ("rotate:0", "resized_crop:1", ["rotate:0", "resized_crop:1.0"]):
        assert torch.allclose(Augmenter(spec, 3, size)(x, _gen(0)), x, atol=1e-5), spec


def test_affine_warps_reflect_instead_of_filling_black():
    # A constant image stays constant only if out-of-image samples are mirrored, not zeroed.
    x = torch.full((8, 3, 10, 14), 0.7)
    out = Augmenter(["rotate:60", "resized_crop:0.2"], 3, (10, 14))(x, _gen(0))
    assert torch.allclose(out, x, atol=1e-5)


def test_mps_grid_mirroring_matches_reflection_padding():
    # The MPS path folds the grid itself; check its maths against the native mode here.
    x = _batch(3, 2, (7, 11))
    grid = (torch.rand(3, 7, 11, 2, generator=_gen(1)) - 0.5) * 14  # up to 7 widths outside
    native = F.grid_sample(x, grid, padding_mode="reflection", align_corners=False)
    folded = F.grid_sample(x, augment_module._mirror_grid(grid), padding_mode="border",
                           align_corners=False)
    assert torch.allclose(native, folded, atol=1e-5)


def test_rotation_changes_images_and_keeps_their_mean():
    x = _batch(16, 1, (20, 20))
    out = Augmenter("rotate:30", 1, (20, 20))(x, _gen(0))
    assert float((out - x).abs().mean()) > 0.05
    assert torch.allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=0.05)


def test_resized_crop_zooms_into_the_image_without_mirroring():
    w = 16
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w).expand(12, 1, 10, w).contiguous()
    out = Augmenter("resized_crop:0.3", 1, (10, w))(ramp, _gen(0))
    steps = out.diff(dim=-1)
    assert float(steps.min()) >= -1e-6  # still left-to-right: no flips or reflections
    # Zooming in spreads a narrower slice of the ramp over the full width: steps shrink
    # below the original 1 / (w - 1), and never grow (the box never exceeds the image).
    assert float(steps.max()) <= 1 / (w - 1) + 1e-5
    assert float(steps[..., 1:-1].mean()) < 0.9 / (w - 1)


def test_jitter_keeps_a_gray_image_gray_and_constant():
    levels = torch.linspace(0.2, 0.8, 16).view(16, 1, 1, 1)
    x = levels.expand(16, 3, 6, 8).contiguous()
    out = Augmenter("jitter:0.5", 3, (6, 8))(x, _gen(0))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    assert torch.allclose(out, out[:, :1, :1, :1].expand_as(out), atol=1e-6)
    ratio = out[:, 0, 0, 0] / x[:, 0, 0, 0]
    assert float(ratio.min()) >= 0.5 - 1e-5 and float(ratio.max()) <= 1.5 + 1e-5
    assert float(ratio.std()) > 0.05  # brightness differs per sample


def test_jitter_changes_colour_saturation_only_on_rgb():
    x = _batch(8, 3, (6, 6))
    out = Augmenter("jitter:0.5", 3, (6, 6))(x, _gen(0))
    spread_in = (x.max(1).values - x.min(1).values).mean(dim=(1, 2))
    spread_out = (out.max(1).values - out.min(1).values).mean(dim=(1, 2))
    assert not torch.allclose(spread_in, spread_out, atol=1e-3)
    gray = Augmenter("jitter:0.5", 1, (6, 6))(x[:, :1], _gen(0))
    assert gray.shape == (8, 1, 6, 6)


def test_noise_statistics():
    x = torch.full((64, 3, 32, 32), 0.5)
    out = Augmenter("noise:0.1", 3, (32, 32))(x, _gen(0))
    residual = out - x
    assert abs(float(residual.mean())) < 2e-3
    stds = residual.flatten(1).std(dim=1)  # per-sample std, uniform in [0, 0.1]
    assert float(stds.max()) <= 0.1 * 1.05
    assert 0.035 < float(stds.mean()) < 0.065
    assert float(stds.min()) < 0.03


def test_erase_fills_one_rectangle_with_mid_gray():
    size = (20, 24)
    x = _batch(32, 3, size) * 0.4  # never exactly 0.5
    out = Augmenter("erase:1", 3, size)(x, _gen(0))
    mask = out == 0.5
    assert torch.equal(mask[:, 0], mask[:, 1]) and torch.equal(mask[:, 1], mask[:, 2])
    assert torch.equal(out[~mask], x[~mask])  # everything else untouched
    for m in mask[:, 0]:
        rows = m.any(dim=1).nonzero().flatten()
        cols = m.any(dim=0).nonzero().flatten()
        assert len(rows) and len(cols)
        box = m[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        assert bool(box.all()) and int(m.sum()) == box.numel()  # a solid rectangle
        assert 0.005 < box.numel() / m.numel() < 0.4
    assert torch.equal(Augmenter("erase:0", 3, size)(x, _gen(0)), x)


def test_blur_reduces_the_variance_of_noise_on_about_half_the_batch():
    x = _batch(32, 1, (24, 24))
    out = Augmenter("blur:2", 1, (24, 24))(x, _gen(0))
    var_in = x.flatten(1).var(dim=1)
    var_out = out.flatten(1).var(dim=1)
    unchanged = (out == x).flatten(1).all(dim=1)
    blurred = ~unchanged
    assert 4 < int(blurred.sum()) < 28  # applied with p = 0.5, per sample
    # sigma near its 0.1 floor barely blurs, so every sample may only lose variance, and the
    # blurred ones lose most of it on average.
    assert bool((var_out <= var_in * (1 + 1e-5)).all())
    assert float((var_out[blurred] / var_in[blurred]).mean()) < 0.5
    assert torch.allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=0.02)


def test_blur_works_on_images_smaller_than_the_kernel():
    x = _batch(4, 3, (2, 3))
    out = Augmenter("blur:3", 3, (2, 3))(x, _gen(0))
    assert out.shape == x.shape and bool(torch.isfinite(out).all())


def test_none_is_identity_and_returns_a_new_tensor():
    x = _batch(4, 3, (8, 8))
    out = Augmenter("none", 3, (8, 8))(x, _gen(0))
    assert torch.equal(out, x) and out.data_ptr() != x.data_ptr()
    assert Augmenter([], 3, (8, 8)).ops == []


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_other_float_dtypes_round_trip(dtype):
    x = _batch(4, 3, (10, 12)).to(dtype)
    out = Augmenter("strong", 3, (10, 12))(x, _gen(0))
    assert out.dtype == dtype and float(out.min()) >= 0 and float(out.max()) <= 1


def test_rejects_batches_that_do_not_match():
    aug = Augmenter("light", 3, (8, 8))
    with pytest.raises(ValueError, match="expected a float batch"):
        aug(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), _gen(0))
    with pytest.raises(ValueError, match="expected a float batch"):
        aug(torch.zeros(2, 1, 8, 8), _gen(0))


def test_auto_and_light_flip_only_colour_images():
    for spec in ("auto", "light", "AUTO"):
        assert [op.name for op in Augmenter(spec, 1, (28, 28)).ops] == ["crop"]
        assert [op.name for op in Augmenter(spec, 3, (32, 32)).ops] == ["hflip", "crop"]
    for name in PRESETS:
        assert not any(op.startswith("hflip") for op in resolve_augment(name, 1, (28, 28)))


def test_preset_contents():
    assert resolve_augment("none", 3, (32, 32)) == []
    assert resolve_augment("standard", 3, (32, 32)) == ["hflip:0.5", "crop:4", "rotate:10",
                                                        "jitter:0.2"]
    assert resolve_augment("standard", 1, (28, 28)) == ["crop:4", "rotate:10"]
    assert resolve_augment("strong", 1, (28, 28)) == ["crop:4", "rotate:10", "jitter:0.4",
                                                      "blur:1", "noise:0.03", "erase:0.25"]
    assert resolve_augment("strong", 3, (32, 32))[0] == "hflip:0.5"
    assert set(PRESETS) == set(COLOUR_PRESETS) == {"none", "light", "standard", "strong"}


def test_ops_carry_resolved_defaults():
    ops = Augmenter(["blur", "rotate", "resized_crop", "jitter", "noise", "erase", "vflip"],
                    3, (32, 32)).ops
    assert ops == [AugmentOp("vflip", 0.5), AugmentOp("rotate", 15.0),
                   AugmentOp("resized_crop", 0.35), AugmentOp("jitter", 0.3),
                   AugmentOp("blur", 1.0), AugmentOp("noise", 0.05), AugmentOp("erase", 0.25)]


def test_a_command_line_op_list_is_split_at_its_commas():
    # deepfit train ... data.augment=hflip,crop:2 arrives as the one-item list ['hflip,crop:2'].
    cfg = RunConfig().override(["data.augment=hflip, crop:2"])
    assert Augmenter(cfg.data.augment, 1, (28, 28)).ops == [AugmentOp("hflip", 0.5),
                                                             AugmentOp("crop", 2.0)]
    assert resolve_augment(["hflip,crop", "rotate:5"], 3, (32, 32)) == [
        "hflip:0.5", "crop:4", "rotate:5"]


@pytest.mark.parametrize("spec,expected", [
    ("standrd", "did you mean 'standard'?"),
    (["hflp"], "did you mean 'hflip'?"),
    ("rotat:10", "did you mean 'rotate'?"),
    ("sharpen", "use a preset ('auto', 'none', 'light', 'standard', 'strong')"),
    ("rotate:abc", "op 'rotate:abc': DEG must be a number in [0, 180], got 'abc'"),
    ("hflip:1.5", "op 'hflip:1.5': P must be a number in [0, 1]"),
    ("noise:-0.1", "op 'noise:-0.1': STD must be a number in [0, 1]"),
    ("crop:2.5", "op 'crop:2.5': PAD must be a whole number of pixels in [0, 31]"),
    ("crop:40", "PAD must be a whole number of pixels in [0, 31], got '40'"),
    ("resized_crop:0", "MINSCALE must be a number in (0, 1]"),
    ("blur:nan", "op 'blur:nan': SIGMA must be a number in [0.1, 10]"),
    ("erase:", "op 'erase:': P must be"),
    (["jitter:0.2", "jitter:0.4"], "op 'jitter' is given twice ('jitter:0.2', 'jitter:0.4')"),
    (["standard", "hflip"], "preset 'standard' cannot be mixed with ops"),
    (5, "expected a preset name or a list of ops, got int"),
    ([3], "ops must be strings"),
])
def test_bad_specs_raise_one_line_config_errors(spec, expected):
    with pytest.raises(ConfigError) as info:
        Augmenter(spec, 3, (32, 32))
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_describe_lists_each_op_in_execution_order():
    aug = Augmenter(SPECS[-1], 3, (12, 20))
    lines = aug.describe()
    assert len(lines) == len(aug.ops) == 9
    keywords = ["horizontal flip (p=0.5)", "vertical flip", "pad 2 px", "±30°",
                "resized crop (area 20%", "saturation ×[0.5, 1.5]", "blur", "noise (std 0–0.2)",
                "erasing (p=1"]
    for line, word in zip(lines, keywords):
        assert word in line
    assert "saturation" not in Augmenter("jitter", 1, (8, 8)).describe()[0]
    assert Augmenter("none", 3, (8, 8)).describe() == []


def test_docstring_example_runs():
    assert doctest.testmod(augment_module).failed == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_on_cuda_with_a_cuda_generator():
    x = _batch(8, 3, (12, 20)).cuda()
    g = torch.Generator(device="cuda").manual_seed(0)
    out = Augmenter(SPECS[-1], 3, (12, 20))(x, g)
    assert out.device == x.device and float(out.min()) >= 0 and float(out.max()) <= 1
    g2 = torch.Generator(device="cuda").manual_seed(0)
    assert torch.equal(out, Augmenter(SPECS[-1], 3, (12, 20))(x, g2))


@pytest.mark.skipif(not torch.backends.mps.is_available(), reason="needs MPS")
def test_runs_on_mps_with_an_mps_generator():
    x = _batch(8, 3, (12, 20)).to("mps")
    out = Augmenter(SPECS[-1], 3, (12, 20))(x, torch.Generator(device="mps").manual_seed(0))
    assert out.device == x.device and float(out.min()) >= 0 and float(out.max()) <= 1
