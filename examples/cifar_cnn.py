# Expected output: NOT measured here - the development machine has no internet, so CIFAR-10
# could not be downloaded. LeNet-5 reaches about 0.60-0.65 test accuracy on CIFAR-10 in the
# literature; run it online and replace this line with what it prints:
#   full:    test accuracy = ... on 10000 rows  (the lectures give no figure; LeNet-5: ~0.60-0.65)
#   --quick: 2 epochs on whatever --data gives (tests/test_examples.py uses a small folder
#            of 32x32 colour images, where it checks the plumbing, not the accuracy)
"""A CNN on colour images: the lectures' LeNet-style network on CIFAR-10.

Reproduces the CIFAR-10 pipeline of the lecture "Deep Learning in Python, Lecture 1"
(``datasets.CIFAR10(...)`` with ``transforms.ToTensor()`` +
``transforms.Normalize((0.5,)*3, (0.5,)*3)``, a ``DataLoader`` with batch size 32; the
course's Lecture 2 builds CNNs on it) and the LeNet-like network described in "Course –
Introduction to deep learning" (convolution and max-pooling layers, then a small perceptron
on the flattened features); see examples/README.md for the lectures.

In deepfit that network is ``model="lenet"``. The 50,000 training images are decoded once
into a uint8 tensor on the training device; each batch is normalised there with the
training split's per-channel statistics and augmented (random horizontal flips and
pad-and-crop, the ``light`` preset for colour images), which the lecture's pipeline lacks.
CIFAR-10 is downloaded on first use (online); ``--data`` takes any image folder instead
(one sub-folder per class), e.g. a local copy of your own images.
"""

import argparse

import deepfit

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", default="cifar10", help="cifar10 (default) or an image folder")
parser.add_argument("--root", default=None, help="where CIFAR-10 is, or is downloaded to")
parser.add_argument("--quick", action="store_true", help="two epochs, no plots (for tests)")
parser.add_argument("--out", default="runs", help="folder for the run directory (default: runs)")
args = parser.parse_args()
settings = dict(epochs=2, progress=False, eval={"plots": False, "bootstrap": 0}) if args.quick else {}

run = deepfit.train(data=args.data, root=args.root, model="lenet", batch_size=32,
                    out=args.out, **settings)
test = run.metrics["test"]
print(f"test accuracy = {test['accuracy']:.3f} on {test['n']} rows  "
      "(the lectures give no figure; LeNet-5: ~0.60-0.65)")
print(f"report: {run.report_path}")
