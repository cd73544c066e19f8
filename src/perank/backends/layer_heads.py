"""Layer heads on a causal LM: bge-reranker-v2-minicpm-layerwise's design on any Llama-style decoder.

The published layerwise reranker (:mod:`perank.backends.minicpm_layerwise`) scores a pair after L layers as
``head_L(norm(h_L))``: ``h_L`` the hidden state after L decoder layers, ``norm`` the decoder's final norm (shared by
every layer), ``head_L`` that layer's ``Linear(hidden, 1, bias=False)``, read at the last real token; one head per
layer from ``start_layer`` to the last, and the forward pass stops after the deepest layer asked for.
:class:`LayerHeads` computes the same on the decoder of a transformers causal LM (its public ``get_decoder()``,
with a ``layers`` list and a final ``norm``: Llama, Qwen, Mistral, Gemma...): hooks read the layers' outputs and
stop the pass after the deepest one, so no transformers internals are reached into and the LM is not re-written.
Training (``src/train.py --family llm-layerwise``) and inference run this one module, so the reranker scores
what was trained.

A model trained that way is saved as a small folder over a base LM that is already on the machine:

- ``adapter_config.json`` + ``adapter_model.safetensors``: the LoRA adapter, its config naming the base;
- :data:`HEADS_FILE`: ``heads.{L}.weight`` (``[1, hidden]``) for every layer L from ``start_layer`` to the last;
- :data:`HEADS_CONFIG`: the base's name, ``start_layer``, ``num_hidden_layers`` (the published config's names) and
  the prompt it was trained with;
- the tokenizer.

:func:`load_layer_heads` loads the base through :func:`perank.backends.lm_loading.load_causal_lm` (the adapter
merged), puts the heads on its decoder and returns the ``layer_scores`` handle the published checkpoints have
(:class:`perank.backends.layerwise_lm.LayerwiseLanguageModel`), which also carries the trained prompt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perank.backends.layerwise_lm import LayerwiseLanguageModel
from perank.backends.lm_loading import ADAPTER_CONFIG, is_adapter_folder, load_causal_lm
from perank.backends.padding import last_real
from perank.backends.runtime import default_attn_implementation
from perank.types import InputError

HEADS_CONFIG = "layer_heads_config.json"
HEADS_FILE = "layer_heads.safetensors"


def head_key(layer: int) -> str:
    """The key of layer ``layer``'s head weight in :data:`HEADS_FILE`."""
    return f"heads.{layer}.weight"


@dataclass(frozen=True)
class HeadLayout:
    """Which layers have a head (``start_layer`` .. ``num_hidden_layers``), under the published config's names,
    which :class:`~perank.backends.layerwise_lm.LayerwiseLanguageModel` reads from a model's ``config``."""

    start_layer: int
    num_hidden_layers: int
    max_position_embeddings: int | None = None

    @property
    def layers(self) -> range:
        return range(self.start_layer, self.num_hidden_layers + 1)


class _StopForwardError(Exception):
    """Raised before the first layer past the deepest one asked for: the rest of the decoder is not run."""


class LayerHeads(nn.Module):
    """A causal LM's decoder and one ``Linear(hidden, 1, bias=False)`` head per layer from ``start_layer`` on.

    :meth:`layer_scores` is the protocol of the published checkpoint's module (``[batch, seq]`` scores per
    cutoff); calling the module gives every head's score at each row's last real token (``[batch, heads]``), what
    training reads.
    """

    def __init__(self, decoder: nn.Module, heads: nn.ModuleList, start_layer: int) -> None:
        super().__init__()
        layers, norm = getattr(decoder, "layers", None), getattr(decoder, "norm", None)
        if not isinstance(layers, nn.ModuleList) or not isinstance(norm, nn.Module):
            raise InputError(
                f"{type(decoder).__name__}: layer heads need a decoder with a 'layers' list and a final 'norm' "
                "(a Llama-style causal LM)"
            )
        if not 1 <= start_layer <= len(layers):
            raise InputError(f"start_layer {start_layer}: must be between 1 and the model's {len(layers)} layers")
        if len(heads) != len(layers) - start_layer + 1:
            raise InputError(f"{len(heads)} heads for layers {start_layer}..{len(layers)}")
        self.decoder = decoder
        self.heads = heads
        positions = getattr(getattr(decoder, "config", None), "max_position_embeddings", None)
        self.config = HeadLayout(start_layer, len(layers), positions if isinstance(positions, int) else None)

    def head(self, layer: int) -> nn.Module:
        return self.heads[layer - self.config.start_layer]

    def hidden_states(self, input_ids: Tensor, attention_mask: Tensor, layers: list[int]) -> dict[int, Tensor]:
        """The hidden state after each of ``layers`` decoder layers, the pass stopped after the deepest."""
        blocks = self.decoder.layers
        captured: dict[int, Tensor] = {}

        def keep(depth: int) -> Any:
            def hook(module: nn.Module, args: Any, output: Any) -> None:
                captured[depth] = output[0] if isinstance(output, tuple) else output

            return hook

        def stop(module: nn.Module, args: Any) -> None:
            raise _StopForwardError

        deepest = max(layers)
        handles = [blocks[depth - 1].register_forward_hook(keep(depth)) for depth in set(layers)]
        if deepest < len(blocks):
            handles.append(blocks[deepest].register_forward_pre_hook(stop))
        try:
            self.decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        except _StopForwardError:
            pass
        finally:
            for handle in handles:
                handle.remove()
        missing = sorted(set(layers) - set(captured))
        if missing:
            raise RuntimeError(f"{type(self.decoder).__name__} did not run its layers {missing}")
        return captured

    def layer_scores(self, input_ids: Tensor, attention_mask: Tensor, cutoffs: list[int]) -> list[Tensor]:
        """Head scores (``[batch, seq]``, float32) after each layer in ``cutoffs`` (within the scored layers)."""
        wrong = [c for c in cutoffs if c not in self.config.layers]
        if not cutoffs or wrong:
            layers = self.config.layers
            raise InputError(f"layers {cutoffs}: expected layers within {layers.start}..{layers.stop - 1}")
        states = self.hidden_states(input_ids, attention_mask, list(cutoffs))
        norm = self.decoder.norm
        return [self.head(c)(norm(states[c])).squeeze(-1).float() for c in cutoffs]

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Every head's score at each row's last real token, ``[batch, heads]`` (the deepest layer's last): the
        scores of :meth:`layer_scores` there, the norm and the heads applied to that token only (what training
        reads, without keeping every position's normed state of every layer for the backward pass)."""
        layers = list(self.config.layers)
        states = self.hidden_states(input_ids, attention_mask, layers)
        norm = self.decoder.norm
        last = [self.head(c)(norm(last_real(states[c], attention_mask))).squeeze(-1).float() for c in layers]
        return torch.stack(last, dim=-1)


# ------------------------------------------------------------------------------------------------ the saved folder


@dataclass(frozen=True)
class HeadsConfig:
    """A trained folder's :data:`HEADS_CONFIG`."""

    base: str
    start_layer: int
    num_hidden_layers: int
    prompt: str

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "start_layer": self.start_layer,
            "num_hidden_layers": self.num_hidden_layers,
            "prompt": self.prompt,
        }


def is_layer_heads_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a model with layer heads trained here (it has :data:`HEADS_CONFIG`)."""
    return (folder / HEADS_CONFIG).is_file()


def read_heads_config(folder: Path) -> HeadsConfig:
    """The folder's :data:`HEADS_CONFIG`, checked."""
    path = folder / HEADS_CONFIG
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected an object with base, start_layer, num_hidden_layers and prompt")
    start, count = raw.get("start_layer"), raw.get("num_hidden_layers")
    integers = all(isinstance(x, int) and not isinstance(x, bool) for x in (start, count))
    if not integers or not 1 <= start <= count:  # type: ignore[operator]
        raise InputError(f"{path}: start_layer {start!r} and num_hidden_layers {count!r}: expected 1 <= start <= count")
    base, prompt = raw.get("base"), raw.get("prompt")
    if not isinstance(base, str) or not isinstance(prompt, str) or not prompt.strip():
        raise InputError(f"{path}: 'base' and 'prompt' must be text (the prompt not empty)")
    return HeadsConfig(base=base, start_layer=int(start), num_hidden_layers=int(count), prompt=prompt)  # type: ignore[arg-type]


def save_layer_heads(
    folder: str | Path, *, adapter: Any, heads: LayerHeads, tokenizer: Any, config: HeadsConfig
) -> None:
    """Write a trained folder (module docstring): ``adapter`` a peft model whose config names its base."""
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    adapter.save_pretrained(str(out), save_embedding_layers=False)
    state = {
        head_key(layer): heads.head(layer).weight.detach().float().cpu().contiguous() for layer in heads.config.layers
    }
    save_file(state, str(out / HEADS_FILE))
    tokenizer.save_pretrained(str(out))
    (out / HEADS_CONFIG).write_text(json.dumps(config.to_json(), indent=2) + "\n", encoding="utf-8")


def read_heads(path: Path, config: HeadsConfig, hidden: int) -> nn.ModuleList:
    """The heads of :data:`HEADS_FILE`: exactly one ``[1, hidden]`` weight per layer the config names."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise InputError(f"{path}: missing (a {HEADS_CONFIG} folder holds its heads there)")
    state = load_file(str(path))
    layers = range(config.start_layer, config.num_hidden_layers + 1)
    expected = {head_key(layer) for layer in layers}
    if set(state) != expected:
        wrong = sorted(set(state) ^ expected)
        raise InputError(f"{path}: keys do not match layers {layers.start}..{layers.stop - 1} ({', '.join(wrong[:3])})")
    heads = nn.ModuleList()
    for layer in layers:
        weight = state[head_key(layer)]
        if tuple(weight.shape) != (1, hidden):
            raise InputError(f"{path}: {head_key(layer)} has shape {list(weight.shape)}, expected [1, {hidden}]")
        head = nn.Linear(hidden, 1, bias=False)
        with torch.no_grad():
            head.weight.copy_(weight)
        heads.append(head)
    return heads


def load_layer_heads(
    folder: Path,
    *,
    name: str,
    device: torch.device,
    dtype: torch.dtype,
    base: str | None = None,
    trust_remote_code: bool = False,
) -> LayerwiseLanguageModel:
    """The trained folder's model (module docstring) on ``device`` in ``dtype``, in eval mode; ``base`` replaces
    the base its adapter names."""
    config = read_heads_config(folder)
    if not is_adapter_folder(folder):
        raise InputError(f"{folder}: has {HEADS_CONFIG} but no {ADAPTER_CONFIG} (the LoRA adapter of the base)")
    llm, tokenizer = load_causal_lm(folder, device=device, dtype=dtype, base=base, trust_remote_code=trust_remote_code)
    decoder = llm.get_decoder()
    count = len(getattr(decoder, "layers", ()))
    if count != config.num_hidden_layers:
        raise InputError(
            f"{folder / HEADS_CONFIG}: num_hidden_layers {config.num_hidden_layers}, but the base has {count} layers"
        )
    hidden = int(llm.get_input_embeddings().weight.shape[1])
    heads = read_heads(folder / HEADS_FILE, config, hidden).to(device=device, dtype=dtype)
    model = LayerHeads(decoder, heads, config.start_layer).eval()
    attention = default_attn_implementation(device)
    return LayerwiseLanguageModel(model, tokenizer, name=name, attention=attention, prompt=config.prompt)
