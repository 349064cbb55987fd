"""Loss functions on logits."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from streamguard.errors import ConfigError
from streamguard.train.losses import FocalLoss, make_loss


def _data():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(32, generator=gen) * 3, (torch.rand(32, generator=gen) > 0.3).float()


def test_bce_matches_torch_and_weights_positives():
    logits, labels = _data()
    assert torch.allclose(make_loss("bce")(logits, labels), F.binary_cross_entropy_with_logits(logits, labels))
    weighted = make_loss("bce", pos_weight=3.0)(logits, labels)
    expected = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=torch.tensor(3.0))
    assert torch.allclose(weighted, expected)


def test_focal_loss_formula():
    logits, labels = _data()
    assert torch.allclose(FocalLoss(gamma=0.0)(logits, labels), F.binary_cross_entropy_with_logits(logits, labels))
    p = torch.sigmoid(logits)
    p_t = torch.where(labels == 1, p, 1 - p)
    alpha_t = torch.where(labels == 1, torch.tensor(0.25), torch.tensor(0.75))
    manual = (alpha_t * (1 - p_t) ** 2 * -torch.log(p_t)).mean()
    assert torch.allclose(make_loss("focal", focal_gamma=2.0, focal_alpha=0.25)(logits, labels), manual, rtol=1e-4)


def test_focal_loss_is_finite_for_extreme_logits():
    logits = torch.tensor([80.0, -80.0, 80.0], requires_grad=True)
    loss = FocalLoss(2.0)(logits, torch.tensor([0.0, 1.0, 1.0]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()


def test_bad_loss_settings_are_config_errors():
    with pytest.raises(ConfigError, match="unknown loss"):
        make_loss("hinge")
    with pytest.raises(ConfigError, match="gamma"):
        FocalLoss(gamma=-1)
    with pytest.raises(ConfigError, match="alpha"):
        FocalLoss(alpha=1.5)
