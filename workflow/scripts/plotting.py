"""Shared plotting helpers of the report scripts."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from cymlp import activations
from cymlp._network import BIAS_PLACEMENTS

#: Activations in the order of cymlp's registry (its enum), aliases last.
ORDER = list(activations.NAMES)

#: Activations whose saturation is measured, and those whose dead units are.
SATURATING = {a for a in ORDER if activations.info(a).family == "saturating"}
RECTIFIED = {a for a in ORDER if activations.info(a).family == "rectifying"}


def ordered(activations):
    present = set(activations)
    return [a for a in ORDER if a in present] + sorted(present - set(ORDER))


def colours(activations):
    cmap = plt.get_cmap("tab10" if len(activations) <= 10 else "tab20")
    return {a: cmap(i % cmap.N) for i, a in enumerate(ordered(activations))}


def style(activation, colour):
    """Line colour of ``activation``; identity (the linear baseline) is black, dashed."""
    if activation == "identity":
        return {"color": "black", "linestyle": "--"}
    return {"color": colour[activation]}


def hidden_key(label):
    sizes = [int(v) for v in str(label).split("x") if v]
    return (sum(sizes), len(sizes), str(label))


def reference_bias(values):
    values = set(values)
    for bias in BIAS_PLACEMENTS:
        if bias in values:
            return bias
    return min(values)


def empty_figure(path, message):
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
