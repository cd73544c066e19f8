"""The layerwise MiniCPM reranker's forward pass (bge-reranker-v2-minicpm-layerwise), written here so the published
checkpoint loads without its remote code (which imports transformers internals that transformers 5 removed); the
backend that serves it is :mod:`perank.backends.layerwise_lm`.

The model is MiniCPM (a Llama-like decoder: RMSNorm, RoPE, SwiGLU MLP, grouped-query attention) with three
scalings of its own: token embeddings times ``scale_emb``, and each residual branch (attention, MLP) times
``scale_depth / sqrt(num_hidden_layers)``. ``dim_model_base`` only scales the 'raw'/'complex' heads, which the
published reranker does not use. Its 'simple' heads are one ``Linear(hidden, 1, bias=False)`` per layer from
``start_layer`` to ``num_hidden_layers`` (``lm_head.{i}.linear_head``, or one shared ``lm_head.linear_head`` when
``head_multi`` is false). The score after L layers is ``head[L - start_layer](norm(h_L))`` with the shared final
RMSNorm, and the pass stops after the largest layer asked for. Module names equal the checkpoint's keys, so its
state dict loads strictly. Numerics follow the original: RMSNorm variance and the rotary products in float32,
positions ``0..S-1`` whatever the padding (RoPE sees relative positions only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perank.types import InputError


@dataclass(frozen=True)
class LayerwiseConfig:
    """The fields of a layerwise MiniCPM ``config.json`` that the forward pass needs."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    rms_norm_eps: float
    rope_theta: float
    scale_emb: float
    scale_depth: float
    start_layer: int
    head_multi: bool
    attention_bias: bool

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str) -> LayerwiseConfig:
        """Check that the config is one this module implements; anything else needs the checkpoint's code."""
        remote = "pass trust_remote_code=True to run the checkpoint's own code"
        if raw.get("model_type") != "minicpm":
            raise InputError(f"{where}: model_type {raw.get('model_type')!r} is not a layerwise MiniCPM reranker")
        if "start_layer" not in raw:
            raise InputError(f"{where}: config.json has no start_layer: not a layerwise reranker")
        if raw.get("head_type", "simple") != "simple":
            raise InputError(f"{where}: head_type {raw['head_type']!r} is not implemented here; {remote}")
        if raw.get("rope_scaling"):
            raise InputError(f"{where}: rope_scaling {raw['rope_scaling']!r} is not implemented here; {remote}")
        if raw.get("hidden_act", "silu") != "silu" or int(raw.get("pretraining_tp", 1)) != 1:
            raise InputError(f"{where}: hidden_act/pretraining_tp differ from MiniCPM's; {remote}")
        try:
            heads = int(raw["num_attention_heads"])
            return cls(
                vocab_size=int(raw["vocab_size"]),
                hidden_size=int(raw["hidden_size"]),
                intermediate_size=int(raw["intermediate_size"]),
                num_hidden_layers=int(raw["num_hidden_layers"]),
                num_attention_heads=heads,
                num_key_value_heads=int(raw.get("num_key_value_heads") or heads),
                rms_norm_eps=float(raw.get("rms_norm_eps", 1e-6)),
                rope_theta=float(raw.get("rope_theta", 10000.0)),
                scale_emb=float(raw.get("scale_emb", 1)),
                scale_depth=float(raw.get("scale_depth", 1)),
                start_layer=int(raw["start_layer"]),
                head_multi=bool(raw.get("head_multi", True)),
                attention_bias=bool(raw.get("attention_bias", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: config.json lacks or mangles {exc}") from exc

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        variance = x.to(torch.float32).pow(2).mean(dim=-1, keepdim=True)
        return (x * torch.rsqrt(variance + self.eps)).to(x.dtype) * self.weight


def rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary(q: Tensor, k: Tensor, theta: float) -> tuple[Tensor, Tensor]:
    """RoPE at positions 0..S-1, computed in float32 and cast back, as MiniCPM's code does."""
    dim, length = q.shape[-1], q.shape[-2]
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, device=q.device).float() / dim))
    freqs = torch.outer(torch.arange(length, device=q.device, dtype=torch.float32), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(q.dtype).float(), emb.sin().to(q.dtype).float()
    qf, kf = q.float(), k.float()
    return (qf * cos + rotate_half(qf) * sin).to(q.dtype), (kf * cos + rotate_half(kf) * sin).to(k.dtype)


class Attention(nn.Module):
    def __init__(self, config: LayerwiseConfig) -> None:
        super().__init__()
        self.config = config
        h, d, bias = config.hidden_size, config.head_dim, config.attention_bias
        self.q_proj = nn.Linear(h, config.num_attention_heads * d, bias=bias)
        self.k_proj = nn.Linear(h, config.num_key_value_heads * d, bias=bias)
        self.v_proj = nn.Linear(h, config.num_key_value_heads * d, bias=bias)
        self.o_proj = nn.Linear(config.num_attention_heads * d, h, bias=bias)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        c = self.config
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, c.num_attention_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, s, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, s, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        q, k = rotary(q, k, c.rope_theta)
        groups = c.num_attention_heads // c.num_key_value_heads
        k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, -1))


class MLP(nn.Module):
    def __init__(self, config: LayerwiseConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: LayerwiseConfig) -> None:
        super().__init__()
        self.self_attn = Attention(config)
        self.mlp = MLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.residual_scale = config.scale_depth / math.sqrt(config.num_hidden_layers)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), mask) * self.residual_scale
        return x + self.mlp(self.post_attention_layernorm(x)) * self.residual_scale


class Decoder(nn.Module):
    def __init__(self, config: LayerwiseConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class LayerHead(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.linear_head = nn.Linear(hidden, 1, bias=False)


class LayerwiseReranker(nn.Module):
    """MiniCPM with one score head per layer; :meth:`layer_scores` gives ``[batch, seq]`` per cutoff."""

    def __init__(self, config: LayerwiseConfig) -> None:
        super().__init__()
        self.config = config
        self.model = Decoder(config)
        count = config.num_hidden_layers - config.start_layer + 1
        self.lm_head: nn.Module = (
            nn.ModuleList(LayerHead(config.hidden_size) for _ in range(count))
            if config.head_multi
            else LayerHead(config.hidden_size)
        )

    def head(self, layer: int) -> nn.Linear:
        if isinstance(self.lm_head, nn.ModuleList):
            return self.lm_head[layer - self.config.start_layer].linear_head
        return self.lm_head.linear_head

    def layer_scores(self, input_ids: Tensor, attention_mask: Tensor, cutoffs: list[int]) -> list[Tensor]:
        """Head scores after each layer in ``cutoffs`` (sorted, within ``start_layer..num_hidden_layers``)."""
        s = input_ids.shape[1]
        causal = torch.ones(s, s, dtype=torch.bool, device=input_ids.device).tril()
        keys = attention_mask.bool()[:, None, None, :]
        # a padding row may see only padding: let every position see itself so no row is all -inf (NaN)
        mask = (causal & keys) | torch.eye(s, dtype=torch.bool, device=input_ids.device)
        h = self.model.embed_tokens(input_ids) * self.config.scale_emb
        wanted, out = set(cutoffs), {}
        for depth in range(max(cutoffs) + 1):
            if depth in wanted:
                out[depth] = self.head(depth)(self.model.norm(h)).float().reshape(input_ids.shape[0], -1)
            if depth < max(cutoffs):
                h = self.model.layers[depth](h, mask)
        return [out[c] for c in cutoffs]
