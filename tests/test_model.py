import math

import torch

from fashion_cnn import build_model, summary
from fashion_cnn.models import layer_table
from fashion_cnn.models.layers import Flatten


def test_parameter_counts_match_the_tutorial():
    model = build_model("tutorial-cnn")
    rows = {r.name: r.params for r in layer_table(model)}
    assert rows == {
        "conv2d": 320,
        "max_pooling2d": 0,
        "conv2d_1": 18496,
        "max_pooling2d_1": 0,
        "flatten": 0,
        "dense": 313700,
        "dropout": 0,
        "dense_1": 1010,
    }
    assert sum(p.numel() for p in model.parameters()) == 333526


def test_summary_table_reads_like_keras():
    text = summary(build_model(), print_fn=lambda s: None)
    assert "conv2d (Conv2D)" in text and "(None, 28, 28, 32)" in text and "(None, 7, 7, 64)" in text
    assert "(None, 3136)" in text and "313,700" in text
    assert "Total params: 333,526" in text and "Non-trainable params: 0" in text


def test_keras_initialisation():
    torch.manual_seed(0)
    model = build_model()
    dense = model.dense.linear
    limit = math.sqrt(6 / (3136 + 100))  # Glorot uniform
    assert dense.weight.abs().max() <= limit
    assert abs(dense.weight.std().item() - limit / math.sqrt(3)) < 0.01 * limit
    conv = model.conv2d_1.conv
    conv_limit = math.sqrt(6 / (9 * 32 + 9 * 64))
    assert conv.weight.abs().max() <= conv_limit and conv.weight.abs().max() > 0.9 * conv_limit
    assert all(float(m.bias.detach().abs().sum()) == 0 for m in (dense, conv, model.dense_1.linear, model.conv2d.conv))


def test_flatten_uses_keras_order():
    n, c, h, w = 2, 3, 4, 5
    x = torch.zeros(n, c, h, w)
    for ci in range(c):
        for hi in range(h):
            for wi in range(w):
                x[:, ci, hi, wi] = 100 * hi + 10 * wi + ci
    flat = Flatten()(x)
    for ci, hi, wi in ((0, 0, 1), (2, 3, 4), (1, 2, 0)):
        assert flat[0, (hi * w + wi) * c + ci] == 100 * hi + 10 * wi + ci


def test_output_is_logits_for_ten_classes():
    model = build_model().eval()
    out = model(torch.rand(4, 1, 28, 28))
    assert out.shape == (4, 10)
    assert not torch.allclose(out.sum(1), torch.ones(4))  # softmax is applied by predict, not the module


def test_pooling_before_relu_is_exact_for_values_and_gradients():
    """KerasSequential pools before the ReLU; layer by layer (ReLU first) must give the same numbers.

    PyTorch's operators on both sides (a model runs them until ``use_kernels``): the fused first-block kernel
    (tests/test_fused.py) sums in another order.
    """
    import contextlib

    torch.manual_seed(0)
    model = build_model()
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    for cast in (contextlib.nullcontext, lambda: torch.autocast("cpu", dtype=torch.bfloat16)):
        grads = []
        for fused in (True, False):
            model.zero_grad()
            torch.manual_seed(1)  # the same dropout mask both times
            with cast():
                if fused:
                    out = model(x)
                else:
                    out = x
                    for layer in model:
                        out = layer(out)
                loss = torch.nn.functional.cross_entropy(out.float(), y)
            loss.backward()
            grads.append((out.detach().clone(), [p.grad.clone() for p in model.parameters()]))
        (out_a, g_a), (out_b, g_b) = grads
        assert torch.equal(out_a, out_b)
        assert all(torch.equal(a, b) for a, b in zip(g_a, g_b))
