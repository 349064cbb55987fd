"""Masked-language-model pretraining of a transformer classifier's trunk (n-gram stem + encoder).

The trunk is everything of `TransformerClassifier` but its classification head; an LM head in
RoBERTa's shape (Hugging Face's `RobertaLMHead`), with its output weights tied to the token embeddings,
predicts the masked tokens from the trunk's states. Only the trunk's weights leave pretraining.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers.models.roberta.modeling_roberta import RobertaLMHead

from .transformer import TransformerClassifier

HEAD_PREFIX = "head."  # the classifier's head: not part of the trunk


def trunk_state(classifier: TransformerClassifier) -> dict[str, torch.Tensor]:
    """The classifier's weights without its head, contiguous (what safetensors stores)."""
    return {k: v.detach().contiguous() for k, v in classifier.state_dict().items() if not k.startswith(HEAD_PREFIX)}


def load_trunk(classifier: TransformerClassifier, state: dict[str, torch.Tensor]) -> None:
    """Load pretrained trunk weights; the head keeps its fresh initialisation.

    Every trunk tensor must be present with the classifier's shape: a trunk pretrained for another
    architecture is an error, never a partial load.
    """
    own = trunk_state(classifier)
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or extra or wrong:
        raise ValueError(f"pretrained trunk does not fit the transformer: missing {missing[:3]}, "
                         f"unexpected {extra[:3]}, other shape {wrong[:3]}")
    classifier.load_state_dict({**classifier.state_dict(), **state})


class MaskedLM(nn.Module):
    """forward(input_ids, attention_mask, labels) -> (mean loss over masked tokens, masked-token accuracy)."""

    def __init__(self, classifier: TransformerClassifier):
        super().__init__()
        self.classifier = classifier
        encoder = classifier.encoder
        self.lm_head = RobertaLMHead(encoder.config)
        self.lm_head.decoder.weight = encoder.get_input_embeddings().weight  # tied, as in BERT and RoBERTa

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        states = self.classifier.states(input_ids, attention_mask)
        picked = labels != -100  # only the masked positions are scored (fewer vocabulary projections)
        logits = self.lm_head(states[picked]).float()
        target = labels[picked]
        loss = F.cross_entropy(logits, target) if target.numel() else logits.sum() * 0.0
        accuracy = (logits.argmax(-1) == target).float().mean() if target.numel() else torch.zeros(())
        return loss, accuracy
