# Expected output (measured on CPU, torch 2.14.1, seed 0):
#   full:    test accuracy = 0.947 on 114 rows  (lecture: 0.96 on 114 rows)
#   --quick: test accuracy = 0.947 on 114 rows  (lecture: 0.96 on 114 rows)
#   report: <out>/breast_cancer-breastcancerclassificationmodel-<time>/report.html
"""Your own nn.Module, written the lectures' way, trained by deepfit.

Reproduces the model code of "Single class: Breast cancer classifier" in the
scikit-learn-to-PyTorch lecture (``BreastCancerClassificationModel``: ``__init__`` defines
the layers, ``forward`` applies them and ends with a sigmoid) and the "torch.nn" slides of
"Deep Learning I" and "Deep Learning in Python, Lecture 1" (see examples/README.md): the
class is unchanged; only the hand-written loop (zero_grad / forward / loss / backward /
step, then the test evaluation) is replaced by ``deepfit.train``.

``model.outputs="probabilities"`` tells deepfit that ``forward`` already applies the
sigmoid, so the loss is BCELoss on probabilities (as in the lecture) instead of BCE with
logits. The lecture's ``predict`` method is not needed: ``run.predict`` thresholds at 0.5.
"""

import argparse

import torch
from torch import nn

import deepfit


class BreastCancerClassificationModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer_1 = nn.Linear(in_features=30, out_features=15, bias=True)
        self.layer_2 = nn.Linear(in_features=15, out_features=1, bias=True)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        X = self.layer_1(X)
        X = nn.functional.relu(X)
        X = self.layer_2(X)
        X = nn.functional.sigmoid(X)
        return X


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny run (a few epochs), for tests")
parser.add_argument("--out", default="runs", help="folder for the run directory (default: runs)")
args = parser.parse_args()
settings = dict(epochs=100)
if args.quick:
    settings.update(epochs=10, progress=False, eval={"plots": False, "bootstrap": 0})

torch.manual_seed(0)                    # the weights are initialised here, in __init__
run = deepfit.train(model=BreastCancerClassificationModel(), data="breast_cancer",
                    optimizer="sgd", lr=0.05, out=args.out,
                    **{"model.outputs": "probabilities", **settings})
test = run.metrics["test"]
print(f"test accuracy = {test['accuracy']:.3f} on {test['n']} rows  (lecture: 0.96 on 114 rows)")
print(f"report: {run.report_path}")
