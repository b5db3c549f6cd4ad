"""Training trajectories of cymlp against PyTorch autograd.

The same network is built twice: as :class:`cymlp.MLPClassifier` (hand-derived
backward pass, compiled) and as ``torch.nn.Linear`` layers with the activation and
``F.cross_entropy`` (mean reduction), trained by ``torch.optim.SGD``. Both start from
the same parameters and see the same minibatches in the same order (``shuffle=False``);
after 20 plain SGD steps, in float32, every parameter agrees to 1e-4.

Conventions: cymlp's ``coefs_[l]`` is ``W[l]`` of shape ``(fan_in, fan_out)`` and a
layer computes ``A W + b``; ``torch.nn.Linear`` stores ``weight`` of shape
``(fan_out, fan_in)`` and computes ``A weight^T + bias``, so ``weight = W^T``.
For SwiGLU the layer has ``2 v`` outputs ``[a, c]`` (``a`` the first ``v``) and
``h = swish(a) * c``. Torch's ``label_smoothing`` uses the same targets as cymlp:
``T = (1 - eps) onehot(y) + eps / n_classes``.
"""

import numpy as np
import pytest

from cymlp import MLPClassifier

torch = pytest.importorskip("torch")
F = torch.nn.functional

N_FEATURES, N_CLASSES, BATCH, BATCHES_PER_EPOCH, N_EPOCHS = 6, 4, 8, 5, 4
HIDDEN = (7, 5)
LR = 0.05


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Single-threaded torch (the machine is shared; results do not depend on it)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _activation(name):
    if name == "relu":
        return torch.relu
    if name == "tanh":
        return torch.tanh
    if name == "gelu":
        return lambda k: F.gelu(k, approximate="none")  # k Phi(k), erf form
    if name == "swish":
        return lambda k: k * torch.sigmoid(k)

    def swiglu(k):
        v = k.shape[1] // 2
        a, c = k[:, :v], k[:, v:]
        return a * torch.sigmoid(a) * c

    assert name == "swiglu"
    return swiglu


class TorchNet(torch.nn.Module):
    """Linear layers with one activation between them, built from cymlp's parameters."""

    def __init__(self, coefs, intercepts, activation):
        super().__init__()
        self.layers = torch.nn.ModuleList()
        for W, b in zip(coefs, intercepts):
            layer = torch.nn.Linear(W.shape[0], W.shape[1], bias=b is not None,
                                    dtype=torch.float32)
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(np.array(W.T)))
                if b is not None:
                    layer.bias.copy_(torch.from_numpy(np.array(b)))
            self.layers.append(layer)
        self.g = _activation(activation)

    def forward(self, x):
        for layer in self.layers[:-1]:
            x = self.g(layer(x))
        return self.layers[-1](x)


def _data(seed):
    rng = np.random.default_rng(seed)
    n = BATCH * BATCHES_PER_EPOCH
    X = rng.standard_normal((n, N_FEATURES)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, n)
    y[:N_CLASSES] = np.arange(N_CLASSES)
    return X, y


def _run_both(activation, *, bias="both", label_smoothing=0.0, seed=0):
    X, y = _data(seed)
    model = MLPClassifier(HIDDEN, activation, solver="sgd", momentum=0.0, alpha=0.0,
                          shuffle=False, batch_size=BATCH, learning_rate_init=LR,
                          bias=bias, label_smoothing=label_smoothing, dtype="float32",
                          random_state=seed)
    model._initialize(X, y)
    rng = np.random.default_rng(seed + 1)
    for b in model.intercepts_:
        if b is not None:
            b[...] = rng.normal(0.0, 0.3, size=b.shape)
    net = TorchNet(model.coefs_, model.intercepts_, activation)
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y.astype(np.int64))
    torch_epoch_losses = []
    for _ in range(N_EPOCHS):
        model.partial_fit(X, y)
        total = 0.0
        for s in range(0, len(y), BATCH):
            opt.zero_grad()
            loss = F.cross_entropy(net(Xt[s:s + BATCH]), yt[s:s + BATCH],
                                   label_smoothing=label_smoothing, reduction="mean")
            loss.backward()
            opt.step()
            total += loss.item() * BATCH
        torch_epoch_losses.append(total / len(y))
    return model, net, torch_epoch_losses, X


def _assert_parity(model, net, torch_losses, X):
    assert model.n_iter_ == N_EPOCHS
    for l, (W, b, layer) in enumerate(zip(model.coefs_, model.intercepts_, net.layers)):
        np.testing.assert_allclose(W, layer.weight.detach().numpy().T, rtol=1e-4, atol=1e-4,
                                   err_msg=f"W[{l}]")
        if b is None:
            assert layer.bias is None
        else:
            np.testing.assert_allclose(b, layer.bias.detach().numpy(), rtol=1e-4, atol=1e-4,
                                       err_msg=f"b[{l}]")
    np.testing.assert_allclose(model.loss_curve_, torch_losses, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        proba = torch.softmax(net(torch.from_numpy(X)), dim=1).numpy()
    np.testing.assert_allclose(model.predict_proba(X), proba, atol=1e-4)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "swish", "swiglu"])
def test_sgd_trajectory_matches_torch(activation):
    model, net, losses, X = _run_both(activation)
    _assert_parity(model, net, losses, X)
    # the runs did learn something, so the parameters did move
    assert model.loss_curve_[-1] < model.loss_curve_[0]


@pytest.mark.parametrize("activation", ["tanh", "swiglu"])
def test_label_smoothing_matches_torch(activation):
    model, net, losses, X = _run_both(activation, label_smoothing=0.15, seed=1)
    _assert_parity(model, net, losses, X)


@pytest.mark.parametrize("bias", ["none", "hidden", "output"])
def test_bias_placement_matches_torch(bias):
    model, net, losses, X = _run_both("relu", bias=bias, seed=2)
    n_biased = sum(b is not None for b in model.intercepts_)
    assert n_biased == {"none": 0, "hidden": 2, "output": 1}[bias]
    _assert_parity(model, net, losses, X)
