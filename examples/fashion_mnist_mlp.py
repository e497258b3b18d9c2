# Expected output (measured on CPU, torch 2.14.1, seed 0; Fashion-MNIST from Debian's
# dataset-fashion-mnist package):
#   full:    test accuracy = 0.890 on 10000 rows  (the lectures give no figure)   [early stop after 19 epochs]
#   --quick: test accuracy = 0.859 on 10000 rows  (the lectures give no figure)   [1 epoch]
#   report: <out>/fashion-mnist-mlp-<time>/report.html
"""An MLP on images: Fashion-MNIST with the lectures' 784-512-512-10 network.

Reproduces the image classifier of the lectures "Deep Learning I" and "Deep Learning in
Python, Lecture 1" (see examples/README.md): ``nn.Flatten()`` ->
Linear(28*28, 512) -> ReLU -> Linear(512, 512) -> ReLU -> Linear(512, 10), trained with
cross-entropy on mini-batches from a ``DataLoader`` over ``torchvision.datasets``
(``ToTensor`` + ``Normalize``). With ``--data mnist`` it is the MNIST digits version.

In deepfit the same network is ``model="mlp", hidden=[512, 512]`` (it flattens images
itself). The data are read once from the IDX files into one uint8 tensor; every batch is
scaled and normalised on the training device with statistics of the training split; the
official 10,000 test images stay the test set and the validation images come out of the
60,000 training images. An MLP sees no spatial structure, so no augmentation (flips and
crops help CNNs; see cifar_cnn.py).
"""

import argparse

import deepfit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", default="fashion-mnist", help="fashion-mnist (default) or mnist")
parser.add_argument("--root", default=None, help="folder holding the IDX files (optional)")
parser.add_argument("--quick", action="store_true", help="one epoch, no plots (for tests)")
parser.add_argument("--out", default="runs", help="folder for the run directory (default: runs)")
args = parser.parse_args()
settings = dict(epochs=1, progress=False, eval={"plots": False, "bootstrap": 0}) if args.quick else {}

run = deepfit.train(data=args.data, root=args.root, model="mlp", hidden=[512, 512], dropout=0.0,
                    augment=["none"], out=args.out, **settings)
test = run.metrics["test"]
print(f"test accuracy = {test['accuracy']:.3f} on {test['n']} rows  (the lectures give no figure)")
print(f"report: {run.report_path}")
