# Expected output (measured on CPU, torch 2.14.1, seed 0):
#   full:    test accuracy = 1.000 on 80 rows
#            plot: <out>/xor_hidden_representation.png
#   --quick: test accuracy = 1.000 on 80 rows
#            plot: <out>/xor_hidden_representation.png
"""XOR with a 2-2-1 network, and the hidden representation it learns.

Reproduces the XOR example of the lecture "Deep Learning I": XOR is not linearly
separable, but two hidden neurons ("it takes two to XOR") map the four corners to a space
where one output neuron separates them ("Visualising the learned feature representation";
the lecture's ``SmallNeuralNetwork``: Linear(2, 2) -> sigmoid -> Linear(2, 1) -> sigmoid).

Here the hidden activation is tanh (sigmoid works too, but gets stuck more often) and the
output sigmoid sits in the loss. With only two hidden units some random initialisations end
in a local minimum (about 1 seed in 8 here: the lecture's "is there a correct one?"); seed 0
solves it. The figure shows the decision boundary in the input space and the inputs mapped
to the two hidden units, where the output neuron's boundary is a straight line.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import deepfit  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--quick", action="store_true", help="tiny run (a few epochs), for tests")
parser.add_argument("--out", default="runs", help="folder for the run and the plot (default: runs)")
args = parser.parse_args()
settings = dict(epochs=100)
if args.quick:
    settings.update(epochs=20, progress=False, eval={"plots": False, "bootstrap": 0})

run = deepfit.train(data="xor", n_samples=400, hidden=[2], activation="tanh", dropout=0.0,
                    optimizer="sgd", lr=0.1, weight_decay=0.0, early_stopping=False,
                    out=args.out, **settings)
test = run.metrics["test"]
print(f"test accuracy = {test['accuracy']:.3f} on {test['n']} rows")

# Fresh XOR points (the generator's recipe: a corner of the unit square plus noise).
rng = np.random.default_rng(1)
corners = rng.integers(0, 2, size=(200, 2))
points = pd.DataFrame(corners + rng.normal(0, 0.1, size=(200, 2)), columns=["x1", "x2"])
label = corners[:, 0] ^ corners[:, 1]

# The hidden representation: a forward hook on net[1], the tanh after the first Linear.
hidden = []
hook = run.model.net[1].register_forward_hook(lambda m, i, out: hidden.append(out.detach().cpu()))
run.predict_proba(points)                      # the same preprocessing and forward pass
hook.remove()
h = np.concatenate([t.numpy() for t in hidden])

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.5))
g1, g2 = np.meshgrid(np.linspace(-0.5, 1.5, 150), np.linspace(-0.5, 1.5, 150))
grid = pd.DataFrame({"x1": g1.ravel(), "x2": g2.ravel()})
p = run.predict_proba(grid)[:, 1].reshape(g1.shape)
left.contourf(g1, g2, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.4)
left.contour(g1, g2, p, levels=[0.5], colors="k")
left.scatter(points.x1, points.x2, c=label, cmap="RdBu_r", edgecolors="k", s=20)
left.set(title="input space: decision boundary (p = 0.5)", xlabel="x1", ylabel="x2")

out_layer = run.model.net[-1]                  # Linear(2, 1): w . h + b = 0 is the boundary
w, b = out_layer.weight.detach().cpu().numpy()[0], out_layer.bias.item()
right.scatter(h[:, 0], h[:, 1], c=label, cmap="RdBu_r", edgecolors="k", s=30, alpha=0.6)
h1 = np.linspace(-1.1, 1.1, 50)
if abs(w[1]) > 1e-8:
    right.plot(h1, -(w[0] * h1 + b) / w[1], "k-", label="output neuron: p = 0.5")
    right.legend(loc="center left")
right.set(title="hidden representation (tanh units)", xlabel="hidden unit 1",
          ylabel="hidden unit 2", xlim=(-1.1, 1.1), ylim=(-1.1, 1.1))
fig.tight_layout()
Path(args.out).mkdir(parents=True, exist_ok=True)
png = Path(args.out) / "xor_hidden_representation.png"
fig.savefig(png, dpi=120)
print(f"plot: {png}")
print(f"run: {run.path}")
