"""Multi-label classification: one sigmoid output per label, a binary cross-entropy each.

``docs/model.md`` derives the gradient: per label ``softplus(z) - T z`` with
``T = (1 - eps) Y + eps / 2``, summed over the labels and averaged over the batch, so
``dz = sigma(z) - T``. Checked here against central differences (float64), against the
NumPy reference, and against PyTorch's ``BCEWithLogitsLoss`` over an SGD trajectory
(float32); then the scikit-learn conventions (``classes_``, an indicator matrix from
``predict``, a probability per label) and fastText's multi-label files.
"""
import warnings

import numpy as np
import pytest

import cymlp
from cymlp import MLPClassifier, TextClassifier, gradcheck
from cymlp import _reference as ref
from cymlp._network import BIAS_PLACEMENTS
from cymlp.datasets import read_file
from cymlp.gradcheck import analytic_gradient

N, D, M = 12, 4, 3


def _data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D))
    Y = (rng.random((n, M)) < 0.4).astype(int)
    Y[0] = [1, 1, 1]
    Y[1] = [0, 0, 0]
    return X, Y


def _initialised(bias, seed=0, **params):
    X, Y = _data(seed)
    model = MLPClassifier((5,), "tanh", bias=bias, dtype="float64", random_state=seed,
                          **params)
    model._initialize(X, Y)
    rng = np.random.default_rng(seed + 1)
    for b in model.intercepts_:
        if b is not None:
            b[...] = rng.normal(0.0, 0.5, size=b.shape)
    return model, X, Y


@pytest.mark.parametrize("bias", BIAS_PLACEMENTS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
def test_gradcheck_and_reference(bias, label_smoothing):
    model, X, Y = _initialised(bias, label_smoothing=label_smoothing, alpha=0.1)
    errors = gradcheck(model, X, Y)
    assert max(errors.values()) < 1e-6, errors
    got = analytic_gradient(model, X, Y)
    weights = [w.copy() for w in model.coefs_]
    biases = [None if b is None else b.copy() for b in model.intercepts_]
    want = ref.loss_and_grads(weights, biases, X, Y, M, ["tanh"], alpha=0.1,
                              label_smoothing=label_smoothing, multilabel=True)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-12)
    for a, b in zip(got["dW"] + got["db"], want["dW"] + want["db"]):
        if b is None:
            assert a is None
        else:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_the_loss_is_the_binary_cross_entropy_by_hand():
    model, X, Y = _initialised("both", alpha=0.0)
    z = model._engine.forward(cymlp._inputs.DenseInputs(X))
    p = 1 / (1 + np.exp(-z))
    by_hand = -np.mean(np.sum(Y * np.log(p) + (1 - Y) * np.log(1 - p), axis=1))
    assert analytic_gradient(model, X, Y)["loss"] == pytest.approx(by_hand, rel=1e-12)


@pytest.mark.parametrize("bias", BIAS_PLACEMENTS)
def test_pytorch_parity(bias):
    """20 plain SGD steps in float32 against BCEWithLogitsLoss (its mean is over
    rows and labels: our loss is M times it, so torch's rate is M times ours)."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, D)).astype(np.float32)
    Y = (rng.random((40, M)) < 0.4).astype(np.float32)
    lr, batch = 0.1, 8
    model = MLPClassifier((6,), "tanh", bias=bias, solver="sgd", momentum=0.0, alpha=0.0,
                          batch_size=batch, shuffle=False, learning_rate_init=lr,
                          random_state=0)
    model._initialize(X, Y.astype(int))
    layers = []
    for W, b in zip(model.coefs_, model.intercepts_):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], bias=b is not None)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            if b is not None:
                lin.bias.copy_(torch.from_numpy(b.copy()))
        layers.append(lin)
    params = [p for lin in layers for p in lin.parameters()]
    opt = torch.optim.SGD(params, lr=lr * M)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(4):  # 4 epochs of 5 batches
        for s in range(0, 40, batch):
            h = torch.tanh(layers[0](torch.from_numpy(X[s:s + batch])))
            loss = loss_fn(layers[1](h), torch.from_numpy(Y[s:s + batch]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.partial_fit(X, Y.astype(int))
    for lin, W, b in zip(layers, model.coefs_, model.intercepts_):
        np.testing.assert_allclose(W, lin.weight.detach().numpy().T, rtol=1e-4, atol=1e-5)
        if b is not None:
            np.testing.assert_allclose(b, lin.bias.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_scikit_learn_conventions():
    X, Y = _data(n=60)
    X = X + 2 * Y[:, :1]  # the first label is learnable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier((8,), max_iter=200, random_state=0).fit(X, Y)
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
    pred = model.predict(X)
    assert pred.shape == (60, M) and set(np.unique(pred)) <= {0, 1}
    proba = model.predict_proba(X)
    assert proba.shape == (60, M) and np.all((proba > 0) & (proba < 1))
    np.testing.assert_array_equal(pred, (proba >= 0.5).astype(int))
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(proba), rtol=1e-10)
    # the threshold moves the decision (read at prediction)
    model.set_params(threshold=0.9)
    np.testing.assert_array_equal(model.predict(X), (proba >= 0.9).astype(int))
    assert model.score(X, Y) == pytest.approx(np.mean(np.all(model.predict(X) == Y,
                                                             axis=1)))


def test_label_lists_for_the_text_classifier(tmp_path):
    path = tmp_path / "train.txt"
    lines = []
    for i in range(60):
        labels = ["__label__sport"] if i % 3 == 0 else []
        if i % 2 == 0:
            labels.append("__label__news")
        if not labels:
            labels = ["__label__other"]
        words = ("goal match team" if "__label__sport" in labels else "vote law") + \
            (" today report" if "__label__news" in labels else " maybe")
        lines.append(" ".join(labels) + " " + words)
    path.write_text("\n".join(lines) + "\n")
    data = read_file(path, multilabel=True)
    assert data.format == "fasttext"
    model = TextClassifier((8,), embed_dim=8, max_iter=40, early_stopping=False,
                           learning_rate_init=0.2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(data.X, data.y)
    assert list(model.classes_) == ["news", "other", "sport"]
    pred = model.predict(["goal match team today report", "vote law maybe"])
    np.testing.assert_array_equal(pred, [[1, 0, 1], [0, 1, 0]])
    assert model.score(data.X, data.y) > 0.95
    labels, probs = model.predict_topk(["goal match team today report"], k=3, threshold=0.5)
    assert sorted(labels[0].tolist()) == ["news", "sport"] and np.all(probs[0] >= 0.5)
    # save / load keeps the output kind
    loaded = cymlp.load(model.save(tmp_path / "m.cymlp"))
    np.testing.assert_array_equal(loaded.predict_proba(data.X), model.predict_proba(data.X))


def test_multi_label_and_single_label_do_not_mix():
    X, Y = _data()
    model = MLPClassifier((3,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, Y)
    with pytest.raises(ValueError, match="fitted on multi-label y"):
        model.partial_fit(X, Y[:, 0])
    with pytest.raises(ValueError, match="class_weight is not supported with multi-label"):
        MLPClassifier((3,), class_weight={0: 2.0}).fit(X, Y)
    with pytest.raises(ValueError, match="multi-output classification is not supported"):
        MLPClassifier((3,)).fit(X, Y * 2)


def test_predict_topk_of_a_single_label_model():
    X, Y = _data(n=40)
    y = np.argmax(Y + np.arange(M) * 0.1, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier((4,), max_iter=20, random_state=0).fit(X, y)
    proba = model.predict_proba(X)
    labels, probs = model.predict_topk(X, k=2)
    for row, lab, p in zip(proba, labels, probs):
        order = np.argsort(-row, kind="stable")[:2]
        np.testing.assert_array_equal(lab, model.classes_[order])
        np.testing.assert_allclose(p, row[order])
    np.testing.assert_array_equal([lab[0] for lab in labels], model.predict(X))
    labels, _ = model.predict_topk(X, k=3, threshold=0.99)
    assert all(len(lab) <= 1 for lab in labels)
    with pytest.raises(ValueError, match="k must be in"):
        model.predict_topk(X, k=0)
