"""The report's "Why the network decided" section: attribution maps over test images and
the randomised-weights sanity check, as HTML (report.html) and Markdown (report.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from deepfit.evaluate.explain import TITLES
from deepfit.report.page import escape, figures_html, figures_markdown

INTRO = ("Where in each test image the network found the evidence for the class it predicted "
         "(regression: for its value), brighter is more. Grad-CAM weighs the feature maps of "
         "a late convolutional layer by how much the predicted class's score rises with "
         "each of them (coarse: that layer's resolution). Integrated gradients add up, pixel "
         "by pixel, the gradient of that score along a straight path from a black image to "
         "the image (fine, often speckled). A map is evidence of what the model used, not "
         "proof of what it understood: a map that points at a ruler, a label or the border "
         "of the image shows a shortcut worth fixing.")


def sanity_sentences(explained: dict[str, Any]) -> list[str]:
    """One sentence per method on the randomised-weights check (Adebayo et al., 2018)."""
    out = []
    for method, check in (explained.get("sanity") or {}).items():
        name, rho = TITLES.get(method, method), check.get("rank_correlation")
        n = sum(r is not None for r in check.get("per_image", []))
        if rho is None:
            out.append(f"{name}: the sanity check is undefined (the maps were constant).")
        elif check.get("changes"):
            out.append(f"{name} passes the sanity check: with every weight drawn afresh the "
                       f"maps change (rank correlation with the trained network's maps "
                       f"{rho:.2f}, median of {n} images), so they depend on what the "
                       "network learned.")
        else:
            out.append(f"{name} fails the sanity check: with every weight drawn afresh the "
                       f"maps stay alike (rank correlation {rho:.2f}, median of {n} images, "
                       "0.5 or more), so they show the image (edges, bright areas) more than "
                       "what the network learned; do not read them as explanations.")
    return out


def _layer_sentence(explained: dict[str, Any]) -> Optional[str]:
    if not explained.get("layer"):
        return None
    how = "named in eval.explain_layer" if explained.get("layer_chosen") == "named" else (
        "the last layer with feature maps; name another with eval.explain_layer")
    return f"Grad-CAM read layer '{explained['layer']}' ({how})."


def explained_html(explained: Optional[dict[str, Any]], run_path: Path) -> str:
    """The section's HTML ("" when the run has no explanations)."""
    if not explained or not (explained.get("plots") or explained.get("reason")):
        return ""
    parts = [f"<h3>Why the network decided (test images)</h3><p>{escape(INTRO)}</p>"]
    notes = [s for s in [_layer_sentence(explained), *sanity_sentences(explained)] if s]
    if notes:
        parts.append("<ul>" + "".join(f"<li>{escape(s)}</li>" for s in notes) + "</ul>")
    parts.append(figures_html(explained.get("plots", {}), run_path, explained.get("reason")))
    return "".join(parts)


def explained_markdown(explained: Optional[dict[str, Any]]) -> list[str]:
    if not explained or not (explained.get("plots") or explained.get("reason")):
        return []
    out = ["", "### Why the network decided (test images)", "", INTRO]
    notes = [s for s in [_layer_sentence(explained), *sanity_sentences(explained)] if s]
    if notes:
        out += [""] + [f"- {s}" for s in notes]
    return out + figures_markdown(explained.get("plots", {}), explained.get("reason"))
