"""The PE-Rank model: frozen encoder + projector + any Hugging Face causal LM, joined LLaVA-style.

Each passage becomes ONE input vector: the encoder embeds it, the projector maps the embedding into the
LLM's input space, and that vector replaces the ``<PLACEHOLDER>`` (prompt) or ``<RANK>`` (assistant turn)
token at its position in ``inputs_embeds``. Nothing else about the LLM changes: no weight surgery, no
resized vocabulary (the two tokens' own embedding rows are never read), no private transformers internals.
The score of passage i at a decoding step is ``h_t . P(e_i)``, with ``h_t`` the final normed hidden state.

Token ids live on the instance (from its tokenizer), never in module globals.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from perank.backends.encoder import PassageEncoder, default_pooling
from perank.backends.hf_lm import HFLanguageModel
from perank.backends.lm_loading import causal_lm_weights, load_tokenizer
from perank.backends.pe_rank_backbone import PERANK_CONFIG, load_backbone
from perank.backends.resolve import resolve_model
from perank.backends.runtime import default_attn_implementation, default_dtype
from perank.families.pe_rank.projector import build_projector
from perank.families.pe_rank.prompts import PLACEHOLDER, RANK_TOKEN, PromptSpec

logger = logging.getLogger(__name__)

CONFIG_NAME = PERANK_CONFIG
PROJECTOR_NAME = "projector.safetensors"
RELEVANCE_NAME = "relevance.safetensors"
RELEVANCE_FEATURES = ("none", "cosine")


@dataclass
class PERankConfig:
    """Everything needed to rebuild a PE-Rank model around its weights (saved as ``perank_config.json``)."""

    llm_name: str
    encoder_name: str
    encoder_pooling: str = "mean"
    encoder_max_length: int = 256
    projector_type: str = "mlp2x_gelu"
    embedding_size: int = 0  # filled from the encoder
    hidden_size: int = 0  # filled from the LLM
    query_embedding: bool = False
    query_embedding_position: str = "prompt"  # "prompt" (after the query text) or "answer" (prompts.py)
    query_text: bool = True  # False: the prompt omits the query's text (needs query_embedding; prompts.py)
    relevance_feature: str = "none"  # "cosine": each passage vector also carries cos(query, passage) (below)
    trust_remote_code: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PERankConfig:
        known = {f.name for f in fields(cls)}
        unknown = {k: v for k, v in data.items() if k not in known}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs.setdefault("extra", {}).update(unknown)
        return cls(**kwargs)


class PERankModel(nn.Module):
    """Encoder + projector + causal LM, with the placeholder-injection and scoring primitives.

    Higher-level code (listwise decoding, the training losses) builds on three methods:
    :meth:`embed_candidates` (or :meth:`embed_passages` for bare texts), :meth:`inputs_embeds` and
    :meth:`hidden_states`.
    """

    def __init__(
        self,
        config: PERankConfig,
        llm: nn.Module,
        tokenizer: Any,
        encoder: PassageEncoder,
        projector: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.llm = llm
        self.tokenizer = tokenizer
        self.encoder = encoder
        config.embedding_size = config.embedding_size or encoder.dim
        config.hidden_size = config.hidden_size or int(llm.config.hidden_size)
        self.projector = projector or build_projector(config.projector_type, config.embedding_size, config.hidden_size)
        self.projector.to(device=self.device, dtype=self.dtype)
        self.relevance: nn.Parameter | None = None
        self.set_relevance_feature(config.relevance_feature)
        add_special_tokens(tokenizer)
        self.placeholder_id = int(tokenizer.convert_tokens_to_ids(PLACEHOLDER))
        self.rank_id = int(tokenizer.convert_tokens_to_ids(RANK_TOKEN))
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(
        cls,
        llm_name: str,
        encoder_name: str,
        *,
        encoder_pooling: str | None = None,
        encoder_max_length: int = 256,
        projector_type: str = "mlp2x_gelu",
        query_embedding: bool = False,
        query_embedding_position: str = "prompt",
        query_text: bool = True,
        relevance_feature: str = "none",
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        attn_implementation: str | None = None,
        trust_remote_code: bool = False,
        seed: int | None = 0,
    ) -> PERankModel:
        """A new model from a base LLM and an encoder, with a freshly initialised projector."""
        device = torch.device(device)
        dtype = dtype or default_dtype(device)
        enc_local = resolve_model(encoder_name)
        tokenizer = load_tokenizer(llm_name, trust_remote_code=trust_remote_code)
        llm = causal_lm_weights(
            llm_name,
            dtype=dtype,
            attn=attn_implementation or default_attn_implementation(device),
            trust_remote_code=trust_remote_code,
        ).to(device)
        encoder = PassageEncoder(
            encoder_name,
            pooling=encoder_pooling or default_pooling(enc_local),
            max_length=encoder_max_length,
            trust_remote_code=trust_remote_code,
        ).to(device)
        config = PERankConfig(
            llm_name=llm_name,
            encoder_name=encoder_name,
            encoder_pooling=encoder.pooling,
            encoder_max_length=encoder_max_length,
            projector_type=projector_type,
            query_embedding=query_embedding,
            query_embedding_position=query_embedding_position,
            query_text=query_text,
            relevance_feature=relevance_feature,
            trust_remote_code=trust_remote_code,
        )
        if seed is not None:
            torch.manual_seed(seed)
        return cls(config, llm, tokenizer, encoder)

    # ------------------------------------------------------------------ properties

    @property
    def device(self) -> torch.device:
        return next(self.llm.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return self.llm.get_input_embeddings().weight.dtype

    @property
    def prompt_spec(self) -> PromptSpec:
        return PromptSpec(
            mode="embedding",
            query_embedding=self.config.query_embedding,
            query_embedding_position=self.config.query_embedding_position,
            query_text=self.config.query_text,
        )

    @property
    def lm(self) -> HFLanguageModel:
        """The decoder LLM and tokenizer as a language-model handle (context length, tokenizer helpers)."""
        return HFLanguageModel(self.llm, self.tokenizer, name=self.config.llm_name)

    def decoder(self) -> nn.Module:
        """The LLM body without its vocabulary head (returns final-normed hidden states)."""
        return self.llm.get_decoder()

    # ------------------------------------------------------------------ primitives

    def project(self, embeddings: Tensor) -> Tensor:
        """Map encoder embeddings ``[..., d_enc]`` into LLM input space ``[..., d_llm]``."""
        return self.projector(embeddings.to(device=self.device, dtype=self.dtype))

    def set_relevance_feature(self, kind: str) -> None:
        """Give the model the relevance feature (``"cosine"``) or take it away (``"none"``).

        The learned direction starts at zero, so a trained model given the feature ranks exactly as before
        until the direction is trained (how ``--init_from`` adds it to a shipped checkpoint).
        """
        if kind not in RELEVANCE_FEATURES:
            raise ValueError(f"relevance_feature {kind!r}: choose one of {', '.join(RELEVANCE_FEATURES)}")
        self.config.relevance_feature = kind
        if kind == "none":
            self.relevance = None
        elif self.relevance is None:
            self.relevance = nn.Parameter(torch.zeros(self.config.hidden_size, device=self.device, dtype=self.dtype))

    @property
    def needs_query_vector(self) -> bool:
        """Whether ranking needs the query's encoder embedding (its own token, or the relevance feature)."""
        return self.config.query_embedding or self.relevance is not None

    def with_relevance(self, projected: Tensor, passage_embeddings: Tensor, query_embedding: Tensor) -> Tensor:
        """Passage vectors ``[n, d_llm]`` plus ``cos(query, passage) * relevance`` (unchanged without it).

        Why: an LLM of 135M parameters hardly reads the relevance hidden in one projected vector per passage
        (checkpoints/README.md). The cosine of the frozen encoder's query and passage embeddings is put where
        the model cannot miss it: it shifts the passage's injected token and, since a step's score is
        ``h . vector``, adds ``cos * (h . relevance)`` to that passage's logit at every decoding step.
        """
        if self.relevance is None:
            return projected
        cos = query_cosines(passage_embeddings, query_embedding)
        return projected + cos.to(device=projected.device, dtype=projected.dtype).unsqueeze(-1) * self.relevance

    def embed_candidates(
        self,
        passages: list[list[str]],
        queries: list[str],
        batch_size: int = 64,
        encode: Callable[[list[str]], Tensor] | None = None,
    ) -> tuple[list[Tensor], list[Tensor | None]]:
        """For each query: its passages' vectors ``[n_i, d_llm]`` (with the relevance feature when the model
        has it) and its query-token vector ``[1, d_llm]`` (None without ``query_embedding``). One encoder pass
        over every text of the batch, through ``encode`` when given (training's text-keyed cache), else the
        encoder itself. No ``no_grad`` here: the projector trains through this in stage 2."""
        sizes = [len(group) for group in passages]
        texts = [t for group in passages for t in group]
        with_query = self.needs_query_vector
        if with_query:
            texts.extend(queries)
        raw = encode(texts) if encode is not None else self.encoder.encode(texts, batch_size=batch_size)
        vectors = self.project(raw)
        first_query = sum(sizes)
        out_passages: list[Tensor] = []
        out_queries: list[Tensor | None] = []
        offset = 0
        for j, n in enumerate(sizes):
            group = vectors[offset : offset + n]
            q = first_query + j
            if with_query:
                group = self.with_relevance(group, raw[offset : offset + n], raw[q])
            out_passages.append(group)
            out_queries.append(vectors[q : q + 1] if self.config.query_embedding else None)
            offset += n
        return out_passages, out_queries

    def embed_passages(self, texts: list[str], batch_size: int = 64) -> Tensor:
        """Encode and project texts: ``[n, d_llm]``. The encoder is frozen; the projector may train."""
        return self.project(self.encoder.encode(texts, batch_size=batch_size))

    def inputs_embeds(self, input_ids: Tensor, injected: Tensor | list[Tensor]) -> Tensor:
        """Token embeddings with every ``<PLACEHOLDER>``/``<RANK>`` position replaced, in order, row by row.

        ``injected`` is either the concatenation over rows of each row's vectors (in order of appearance), or
        a list with one ``[k_row, d]`` tensor per row. The count must match the special tokens exactly: a
        mismatch means a prompt/embedding bug, so it is an error rather than a silent misalignment.
        """
        special = (input_ids == self.placeholder_id) | (input_ids == self.rank_id)
        safe_ids = input_ids.masked_fill(special, 0)
        embeds = self.llm.get_input_embeddings()(safe_ids)
        flat = torch.cat(list(injected), dim=0) if isinstance(injected, list) else injected
        if flat.shape[0] != int(special.sum()):
            raise ValueError(f"{int(special.sum())} passage tokens in the input but {flat.shape[0]} vectors given")
        if flat.shape[0] == 0:
            return embeds
        return embeds.masked_scatter(special.unsqueeze(-1), flat.to(embeds.dtype))

    def hidden_states(
        self,
        inputs_embeds: Tensor,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
    ) -> tuple[Tensor, Any]:
        """Final normed hidden states ``[B, T, d]`` (and the KV cache when ``use_cache``)."""
        out = self.decoder()(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            use_cache=use_cache,
        )
        return out.last_hidden_state, (out.past_key_values if use_cache else None)

    # ------------------------------------------------------------------ persistence

    def save_pretrained(self, path: str | Path, save_llm: bool = True) -> None:
        """Save config, projector, tokenizer and the LLM (a LoRA adapter if the LLM is a PEFT model).

        With ``save_llm=False`` only the projector is stored and the base LLM named in the config is used
        at load time (stage-1 alignment output).
        """
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        cfg = self.config.to_dict()
        is_peft = hasattr(self.llm, "peft_config")
        cfg["llm_weights"] = ("lora" if is_peft else "full") if save_llm else "base"
        (path / CONFIG_NAME).write_text(json.dumps(cfg, indent=2) + "\n")
        state = {k: v.detach().cpu().contiguous() for k, v in self.projector.state_dict().items()}
        save_file(state, str(path / PROJECTOR_NAME))
        if self.relevance is not None:
            save_file({"direction": self.relevance.detach().cpu().contiguous()}, str(path / RELEVANCE_NAME))
        self.tokenizer.save_pretrained(path)
        if save_llm:
            self.llm.save_pretrained(path)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        attn_implementation: str | None = None,
        model_base: str | None = None,
        trainable_lora: bool = False,
    ) -> PERankModel:
        """Load a folder written by :meth:`save_pretrained` (full, LoRA or projector-only): the LLM through the
        common loader (:func:`perank.backends.pe_rank_backbone.load_backbone`, the one
        :func:`perank.backends.lm_sources.load_language_model` uses), then the encoder and projector around it.
        ``model_base`` replaces the base LLM of a LoRA or projector-only folder; ``trainable_lora`` keeps a LoRA
        adapter apart and trainable (continued training) instead of merging it.

        Released PE-Rank checkpoints (the original's layouts) are read by
        :func:`perank.families.pe_rank.checkpoint.load_pe_rank`, which also dispatches here.
        """
        from safetensors.torch import load_file

        path = Path(path)
        cfg_file = path / CONFIG_NAME
        if not cfg_file.exists():
            raise FileNotFoundError(f"{path}: not a perank checkpoint (missing {CONFIG_NAME})")
        raw = json.loads(cfg_file.read_text())
        raw.pop("llm_weights", None)
        config = PERankConfig.from_dict(raw)
        device = torch.device(device)
        dtype = dtype or default_dtype(device)
        attn = attn_implementation or default_attn_implementation(device)
        needed = [PROJECTOR_NAME] + ([RELEVANCE_NAME] if config.relevance_feature != "none" else [])
        for name in needed:
            if not (path / name).exists():
                raise FileNotFoundError(f"{path}: checkpoint is missing {name}")
        backbone = load_backbone(path, "perank", base=model_base, dtype=dtype, attn=attn, trainable_lora=trainable_lora)
        llm, tokenizer = backbone.llm.to(device), backbone.tokenizer
        encoder = PassageEncoder(
            config.encoder_name,
            pooling=config.encoder_pooling,
            max_length=config.encoder_max_length,
            trust_remote_code=config.trust_remote_code,
        ).to(device)
        model = cls(config, llm, tokenizer, encoder)
        model.projector.load_state_dict(load_file(str(path / PROJECTOR_NAME)))
        model.projector.to(device=device, dtype=dtype)
        if model.relevance is not None:
            direction = load_file(str(path / RELEVANCE_NAME))["direction"]
            if direction.shape != model.relevance.shape:
                shapes = f"shape {tuple(direction.shape)}, the LLM needs {tuple(model.relevance.shape)}"
                raise ValueError(f"{path / RELEVANCE_NAME}: {shapes}")
            with torch.no_grad():
                model.relevance.copy_(direction.to(device=device, dtype=dtype))
        return model


def query_cosines(passage_embeddings: Tensor, query_embedding: Tensor) -> Tensor:
    """``[n]`` cosines of passage embeddings ``[n, d]`` with one query embedding (``[d]`` or ``[1, d]``), in fp32:
    the dense teacher's scores, and the relevance feature's input."""
    return torch.nn.functional.cosine_similarity(
        passage_embeddings.float(), query_embedding.float().reshape(1, -1), dim=-1
    )


def add_special_tokens(tokenizer: Any) -> None:
    """Add ``<PLACEHOLDER>`` and ``<RANK>`` as special tokens if the tokenizer lacks them (idempotent)."""
    missing = [t for t in (PLACEHOLDER, RANK_TOKEN) if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_special_tokens({"additional_special_tokens": missing}, replace_extra_special_tokens=False)
