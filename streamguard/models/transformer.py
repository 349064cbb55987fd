"""Transformer classifier over code tokens.

A Hugging Face encoder with a one-logit head. By default a small RoBERTa-style encoder is built from
config (sized by params, trained from scratch on CPU in minutes); `pretrained` (a local directory or a
hub id such as microsoft/codebert-base) loads a checkpoint instead, whose own tokenizer must then be
used by prepare (`tokenizer.kind: pretrained`).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, RobertaConfig, RobertaModel

from ..errors import pretrained_unavailable


def build_encoder(vocab_size: int, pad_id: int, max_length: int, hidden_size: int, num_layers: int,
                  num_heads: int, intermediate_size: int, dropout: float, pretrained: str | None = None,
                  hf_config: dict | None = None) -> nn.Module:
    if hf_config is not None:  # a pretrained architecture rebuilt from its config (weights come from a bundle)
        config = dict(hf_config)
        config = AutoConfig.for_model(config.pop("model_type"), **config)
        try:
            return AutoModel.from_config(config, add_pooling_layer=False)
        except TypeError:
            return AutoModel.from_config(config)
    if pretrained:
        try:
            return AutoModel.from_pretrained(pretrained, add_pooling_layer=False)
        except TypeError:  # encoders without a pooling layer argument
            return AutoModel.from_pretrained(pretrained)
        except Exception as exc:
            raise pretrained_unavailable(pretrained, "model", exc) from None
    config = RobertaConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
        # No attention dropout: on CPU it materializes a mask as large as the attention matrix.
        intermediate_size=intermediate_size, hidden_dropout_prob=dropout, attention_probs_dropout_prob=0.0,
        # RoBERTa numbers positions from pad_id + 1, so the table needs max_length + pad_id + 1 rows.
        max_position_embeddings=max_length + pad_id + 1, pad_token_id=pad_id, type_vocab_size=1)
    return RobertaModel(config, add_pooling_layer=False)


class TransformerClassifier(nn.Module):
    """encode(batch) -> [B, H] (masked mean or max of token states); forward(batch) -> logits [B].

    `conv_kernel` > 0 adds a convolution over the token embeddings (a residual n-gram stem) before the
    encoder. A small encoder trained from scratch with learned absolute positions starts out as a bag
    of tokens, and the vulnerable and patched twins share almost all their tokens: on the quick data
    neither the stem nor max pooling alone moved it off chance, both together did (README, ablation).
    Max pooling keeps the few positions where twins differ from being averaged away.

    `flow_tags` > 0 adds an embedding of each token's flow tag (its statement's taint flags, one of
    `flow_tags` values; the batch's `flow_tags`) to the token embeddings, as GraphCodeBERT feeds data
    flow to its encoder: what a variable carries is then part of the input, not something 960
    functions must teach the model to track.
    """

    def __init__(self, encoder: nn.Module, dropout: float = 0.1, conv_kernel: int = 0, pooling: str = "mean",
                 flow_tags: int = 0):
        super().__init__()
        if pooling not in ("mean", "max"):
            raise ValueError(f"unknown pooling {pooling!r}")
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.out_dim = hidden
        self.pooling = pooling
        self.conv = nn.Conv1d(hidden, hidden, conv_kernel, padding=conv_kernel // 2) if conv_kernel else None
        self.tag_embeddings = nn.Embedding(flow_tags, hidden) if flow_tags else None
        if self.tag_embeddings is not None:  # on the scale of the encoder's own embeddings
            nn.init.normal_(self.tag_embeddings.weight, std=getattr(encoder.config, "initializer_range", 0.02))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def states(self, ids: torch.Tensor, mask: torch.Tensor, tags: torch.Tensor | None = None) -> torch.Tensor:
        """Token states [B, L, H] of the trunk (tag embeddings + stem + encoder); masked pretraining
        reads them too (without tags)."""
        tags = tags if self.tag_embeddings is not None else None
        if self.conv is None and tags is None:
            return self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        emb = self.encoder.get_input_embeddings()(ids)
        if tags is not None:
            emb = emb + self.tag_embeddings(tags)
        keep = mask.unsqueeze(-1).to(emb.dtype)
        if self.conv is not None:
            emb = emb + self.conv((emb * keep).transpose(1, 2)).transpose(1, 2) * keep
        # With inputs_embeds RoBERTa numbers positions 0..L-1 regardless of padding; number them as
        # it does from input_ids (pad_id + 1 onwards, pad positions at pad_id) so both paths agree.
        pad = self.encoder.config.pad_token_id
        positions = torch.cumsum(mask.long(), 1) * mask.long() + pad
        return self.encoder(inputs_embeds=emb, position_ids=positions, attention_mask=mask).last_hidden_state

    def encode(self, batch: dict) -> torch.Tensor:
        """[B, H] per function. A windowed batch (`window_owner`: the function of each row) pools all
        of a function's windows at once, as if its tokens had been one sequence."""
        mask = batch["attention_mask"]
        states = self.states(batch["input_ids"], mask, batch.get("flow_tags"))
        owner = batch.get("window_owner")
        if self.pooling == "max":
            pooled = states.masked_fill(~mask.bool().unsqueeze(-1), torch.finfo(states.dtype).min).max(1).values
            if owner is None:
                return pooled
            index = owner.unsqueeze(-1).expand_as(pooled)
            out = pooled.new_full((int(owner[-1]) + 1, pooled.shape[1]), torch.finfo(pooled.dtype).min)
            return out.scatter_reduce(0, index, pooled, "amax")
        # Masked mean pooling: unlike the first-token state it depends on every token from the first
        # step, so a small encoder trained from scratch does not start out input-blind.
        weights = mask.unsqueeze(-1).to(states.dtype)
        sums, counts = (states * weights).sum(1), weights.sum(1)
        if owner is not None:
            n = int(owner[-1]) + 1
            sums = sums.new_zeros(n, sums.shape[1]).index_add(0, owner, sums)
            counts = counts.new_zeros(n, 1).index_add(0, owner, counts)
        return sums / counts.clamp(min=1.0)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.encode(batch)).squeeze(-1)
