# Expected output (measured on CPU, torch 2.14.1, seed 0):
#   full:    test accuracy = 0.956 on 114 rows  (lecture: 0.96 on 114 rows)
#            report: <out>/breast_cancer-mlp-<time>/report.html
#   --quick: test accuracy = 0.947 on 114 rows  (lecture: 0.96 on 114 rows)
#            report: <out>/breast_cancer-mlp-<time>/report.html
"""The breast cancer classifier: a 30-15-1 network with ReLU and a sigmoid output.

Reproduces "Single class: Breast cancer classifier" of the scikit-learn-to-PyTorch
lecture (see examples/README.md): the Wisconsin
breast cancer data (569 rows, 30 features), ``BreastCancerClassificationModel`` =
Linear(30, 15) -> ReLU -> Linear(15, 1) -> sigmoid, trained with ``nn.BCELoss()``; the
lecture reports a test accuracy of 0.96 on 114 test rows.

In deepfit the same network is ``hidden=[15]`` (ReLU is the default activation; the lecture's
network has no dropout). It outputs a logit and the sigmoid is inside the loss (BCE with
logits). Everything else is deepfit's default: standardised features, 65/15/20 % stratified
split (114 test rows, as in the lecture), AdamW, early stopping on the validation loss, and
a report with the learning curves, confusion matrix, ROC/PR curves and per-class metrics.
"""

import argparse

import deepfit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny run (a few epochs), for tests")
parser.add_argument("--out", default="runs", help="folder for the run directory (default: runs)")
args = parser.parse_args()
settings = dict(epochs=20, progress=False, eval={"plots": False, "bootstrap": 0}) if args.quick else {}

run = deepfit.train(data="breast_cancer", hidden=[15], dropout=0.0, out=args.out, **settings)
test = run.metrics["test"]
print(f"test accuracy = {test['accuracy']:.3f} on {test['n']} rows  (lecture: 0.96 on 114 rows)")
print(f"report: {run.report_path}")
