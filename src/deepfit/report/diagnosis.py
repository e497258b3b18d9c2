"""Plain-language notes from the training diagnostics (``train.diagnostics``): vanishing or
exploding gradients, dead ReLUs, saturated sigmoid / tanh units, layers that do not move.

Each rule reads the last recorded epoch (what the kept model went through last) and says
what it saw, what it means, and what to try. The thresholds are rules of thumb, named here.
"""

from __future__ import annotations

from typing import Any, Optional

from deepfit.train.builtin.diagnostics import activation_rows, probed, weight_rows

VANISHING = 1e-3  # the first weight layer's gradient norm below this fraction of the last's
EXPLODING = 1e3  # ... or above this many times
DEAD = 0.25  # this fraction of a ReLU layer's units never firing on the probe rows
SATURATED = 0.5  # this fraction of a sigmoid / tanh layer's outputs at the ends of its range
STILL = 1e-3  # a layer whose weights moved less than this fraction of the median layer's move
JUMP = 1.0  # a layer whose weights moved by more than their own norm in an epoch


def diagnosis_notes(records: list[dict[str, Any]]) -> list[str]:
    """The notes for a run's diagnostics records (empty when nothing looks wrong)."""
    if not records:
        return []
    last = records[-1]
    epoch = last["epoch"]
    notes = [n for n in (_gradient_note(last, epoch),) if n]
    seen = probed(records) or last  # the latest epoch with activations measured
    for k, row in enumerate(activation_rows(seen), start=1):
        where = f"hidden layer {k} ({row['layer']})"
        if (row.get("dead") or 0) >= DEAD:
            notes.append(f"Dead ReLUs: {row['dead']:.0%} of the {row['type']} units of {where} "
                         f"never fire on the {seen['probe_rows']} probe rows at epoch "
                         f"{seen['epoch']}; "
                         "a dead unit passes no gradient and stops learning. Lower train.lr, "
                         "try model.activation=leaky_relu, or model.init=kaiming.")
        if (row.get("saturated") or 0) >= SATURATED:
            notes.append(f"Saturation: {row['saturated']:.0%} of the {row['type']} outputs of "
                         f"{where} are within 1% of the ends of their range at epoch "
                         f"{seen['epoch']}; "
                         "there the slope is near 0, so gradients through them vanish. "
                         "Standardise the inputs, use ReLU, or model.init=xavier.")
    notes += [n for n in (_update_note(last, epoch),) if n]
    if seen.get("unavailable"):
        notes.append(f"Activation statistics (dead units, saturation) are unavailable: "
                     f"{seen['unavailable']}.")
    return notes


def _update_note(record: dict[str, Any], epoch: int) -> Optional[str]:
    """Layers that stand still while the others move (all of them moving little is the
    schedule's end, not a fault), or that are rewritten in one epoch."""
    rows = [(i, r) for i, r in enumerate(weight_rows(record), start=1)
            if r.get("update_ratio") is not None]
    if not rows:
        return None
    ratios = sorted(r["update_ratio"] for _, r in rows)
    median = ratios[len(ratios) // 2]
    still = [(i, r) for i, r in rows if r["update_ratio"] < STILL * median]
    if still:
        names = ", ".join(f"{i} ({r['layer']}, {r['update_ratio']:.0e})" for i, r in still)
        return (f"Layers that barely moved in epoch {epoch}: {names}, against {median:.0e} "
                "of their size for the model's median layer; they are not learning (no "
                "gradient reaches them, e.g. through dead units, or they are cut off from the "
                "loss).")
    jumped = [(i, r) for i, r in rows if r["update_ratio"] > JUMP]
    if jumped and epoch > 1:
        names = ", ".join(f"{i} ({r['layer']}, {r['update_ratio']:.1f} times)" for i, r in jumped)
        return (f"Layers whose weights changed by more than their own size in epoch {epoch}: "
                f"{names}; the learning rate may be too high (train.lr).")
    return None


def _gradient_note(record: dict[str, Any], epoch: int) -> Optional[str]:
    rows = [(i, r) for i, r in enumerate(weight_rows(record), start=1)
            if r.get("grad_norm") is not None]
    if len(rows) < 2:
        return None
    (i, first), (j, last) = rows[0], rows[-1]
    a, b = first["grad_norm"], last["grad_norm"]
    if b <= 0:
        return None
    names = f"layer {i} ({first['layer']})", f"layer {j} ({last['layer']})"
    if a == 0:
        return (f"No gradient reaches {names[0]} at epoch {epoch} (its gradient norm is 0 while "
                f"{names[1]}'s is {b:.1e}): every unit between them may be dead, or the layer "
                "is cut off from the loss.")
    ratio = a / b
    if ratio < VANISHING:
        return (f"Vanishing gradients: at epoch {epoch} the gradient of {names[0]} is "
                f"{ratio:.0e} of {names[1]}'s, so the early layers barely learn. Consider ReLU "
                "activations, normalisation (model.norm=batch) or a residual network.")
    if ratio > EXPLODING:
        return (f"Exploding gradients: at epoch {epoch} the gradient of {names[0]} is "
                f"{ratio:.0e} times {names[1]}'s. Lower train.lr, set train.grad_clip=1.0, or "
                "add normalisation (model.norm=batch).")
    return None
