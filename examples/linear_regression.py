# Expected output (measured on CPU, torch 2.14.1, seed 0):
#   full:    w = 2.899, b = 1.990  (lecture: w = 2.9014, b = 2.0385)
#   --quick: w = 3.038, b = 2.020  (lecture: w = 2.9014, b = 2.0385)
"""Linear regression with one neuron: y = 3x + 2 + noise, MSE loss, SGD.

Reproduces the "Linear regression" example of the lecture "Deep Learning in Python,
Lecture 1: PyTorch and Deep Neural Networks" (the same model is the "Linear regression:
single neuron" section of the scikit-learn-to-PyTorch lecture; see examples/README.md for
the lectures): ``nn.Linear(1, 1)``, ``nn.MSELoss()``,
``optim.SGD``, 100 noisy points; the lecture prints ``tensor([[2.9014]]) tensor([2.0385])``.

In deepfit the single neuron is an MLP with no hidden layer (``hidden=[]``); the input and
the target are left unscaled so that the learned weight and bias are the slope and intercept.
"""

import argparse

import deepfit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny run (a few epochs), for tests")
parser.add_argument("--out", default="runs", help="folder for the run directory (default: runs)")
args = parser.parse_args()
size = dict(n_samples=100, noise=0.5, epochs=100)  # as in the lecture: 100 points, noise 0.5
if args.quick:
    size.update(n_samples=1000, epochs=5, progress=False, eval={"plots": False, "bootstrap": 0})

run = deepfit.train(
    data="linear",                      # x ~ U(0, 1), y = 3x + 2 + N(0, noise^2)
    hidden=[], optimizer="sgd", lr=0.1, weight_decay=0.0, out=args.out, **size,
    **{"data.standardize": False, "data.scale_target": False},
)
neuron = run.model.net[0]               # the single nn.Linear(1, 1)
print(f"w = {neuron.weight.item():.3f}, b = {neuron.bias.item():.3f}  "
      "(lecture: w = 2.9014, b = 2.0385)")
print(f"run: {run.path}")
