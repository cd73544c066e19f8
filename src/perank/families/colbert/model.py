"""The ColBERT model: an encoder's token states through ``colbert_linear``, one L2-normalised vector per token.

Exactly bge-m3's multi-vector head (FlagEmbedding ``EncoderOnlyEmbedderM3Model._colbert_embedding``): the last
hidden states of every token *but the first* (CLS), through ``colbert_linear``, times the attention mask, then
L2-normalised; a text of n tokens gives n - 1 vectors (``</s>`` / ``[SEP]`` kept).

Layouts read (:func:`load_colbert`):

- bge-m3's: an encoder folder (``config.json``, weights, tokenizer) with ``colbert_linear.pt`` beside it, the
  state dict of ``nn.Linear(hidden, dim)`` (keys ``weight``, ``bias``), as FlagEmbedding saves it. This is what
  ``src/train.py --family colbert`` writes too.
- a plain encoder without ``colbert_linear.pt`` (the packaged ``all-minilm-l6-v2``, any ``*Model`` /
  ``*ForMaskedLM`` checkpoint): the projection is the identity (dim = hidden size, zero bias), so zero-shot
  scores are MaxSim over the encoder's own normalised token states, and training starts from there. (FlagEmbedding
  silently initialises a missing ``colbert_linear`` at random, which makes untrained scores noise.)

Anything else is refused with what is missing: a folder of another family (a cross-encoder's classification
head, a PE-Rank or ListConRanker checkpoint) names its kind and ``colbert_linear.pt``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from perank.backends.resolve import resolve_model
from perank.backends.weights import check_weight_files
from perank.types import InputError

COLBERT_LINEAR = "colbert_linear.pt"
#: a trained projection over an encoder that stayed frozen: ``{"encoder": NAME}`` names that encoder (a packaged
#: alias, a hub id or a folder), so the folder ships only ``colbert_linear.pt`` instead of a copy of its weights
BASE_ENCODER = "colbert_encoder.json"
#: config architectures that are a plain encoder (AutoModel loads its base model)
PLAIN_ARCHITECTURES = ("Model", "ForMaskedLM", "ForPreTraining")
#: files that mark another family's checkpoint folder
OTHER_FAMILIES = {
    "perank_config.json": "a PE-Rank checkpoint",
    "list_transformer.pt": "a ListConRanker checkpoint",
    "linear_in_embedding.pt": "a ListConRanker checkpoint",
}
#: what a hub download fetches (bge-m3's repo also holds ~2 GB of ONNX files that are never read)
HUB_PATTERNS = ["*.json", "*.safetensors", "*.bin", "*.pt", "*.model", "*.txt"]


def checkpoint_folder(path_or_id: str) -> Path:
    """A local folder for a path, the packaged MiniLM alias or a hub id (fetched into the Hugging Face cache)."""
    local = Path(resolve_model(path_or_id))
    if local.is_dir():
        return local
    if local.exists():
        raise InputError(f"{path_or_id}: expected a model folder, got a file")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(path_or_id, allow_patterns=HUB_PATTERNS))
    except Exception as exc:  # offline, unknown repo, malformed id: all mean "not found" to the user
        raise InputError(
            f"{path_or_id}: no such model folder, and the Hugging Face hub could not provide it ({type(exc).__name__})"
        ) from exc


def base_encoder(folder: Path) -> Path | None:
    """The encoder folder :data:`BASE_ENCODER` names (None when the folder holds its own encoder)."""
    path = folder / BASE_ENCODER
    if not path.is_file():
        return None
    try:
        name = json.loads(path.read_text(encoding="utf-8"))["encoder"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f'{path}: expected {{"encoder": NAME}} ({exc})') from exc
    if not (folder / COLBERT_LINEAR).is_file():
        raise InputError(f"{folder}: {BASE_ENCODER} without the {COLBERT_LINEAR} it belongs to")
    return checkpoint_folder(str(name))


def find_projection(folder: Path) -> Path | None:
    """``colbert_linear.pt`` of a ColBERT folder, None for a plain encoder; InputError for anything else."""
    linear = folder / COLBERT_LINEAR
    if linear.is_file():
        return linear
    if (folder / "sparse_linear.pt").exists():  # FlagEmbedding would silently start a random colbert_linear here
        raise InputError(f"{folder}: a bge-m3 folder (sparse_linear.pt) without its {COLBERT_LINEAR}: incomplete copy?")
    for marker, kind in OTHER_FAMILIES.items():
        if (folder / marker).exists():
            raise InputError(f"{folder}: {kind} ({marker}), not a ColBERT one: no {COLBERT_LINEAR}")
    config = folder / "config.json"
    if not config.is_file():
        raise InputError(f"{folder}: not a ColBERT checkpoint: no {COLBERT_LINEAR} and no config.json")
    try:
        cfg = json.loads(config.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{config}: not valid JSON ({exc})") from exc
    heads = [a for a in cfg.get("architectures") or [] if not str(a).endswith(PLAIN_ARCHITECTURES)]
    if heads or cfg.get("is_encoder_decoder"):
        what = heads[0] if heads else "an encoder-decoder"
        raise InputError(
            f"{folder}: not a ColBERT checkpoint: no {COLBERT_LINEAR}, and its config.json says {what} "
            "(a model with a task head), not a plain encoder"
        )
    return None


def read_projection(path: Path, hidden: int, dim: int | None = None) -> nn.Linear:
    """``nn.Linear(hidden, dim)`` from bge-m3's ``colbert_linear.pt`` (keys ``weight`` and ``bias``)."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # a pickle that is not a plain tensor dict is refused by weights_only
        raise InputError(f"{path}: not a colbert_linear state dict ({exc})") from exc
    weight = state.get("weight") if isinstance(state, dict) else None
    if not isinstance(weight, Tensor) or weight.ndim != 2 or weight.shape[1] != hidden:
        shape = tuple(weight.shape) if isinstance(weight, Tensor) else None
        raise InputError(
            f"{path}: expected a 'weight' of shape [dim, {hidden}] (the encoder's hidden size), got {shape}"
        )
    if dim is not None and dim != weight.shape[0]:
        raise InputError(f"{path}: projects to {weight.shape[0]} dimensions, not the {dim} asked for")
    bias = state.get("bias")
    if bias is not None and (not isinstance(bias, Tensor) or tuple(bias.shape) != (weight.shape[0],)):
        raise InputError(f"{path}: 'bias' does not match 'weight' ({weight.shape[0]} outputs)")
    extra = sorted(set(state) - {"weight", "bias"})
    if extra:
        raise InputError(f"{path}: unexpected keys {extra} (expected 'weight' and 'bias')")
    linear = nn.Linear(hidden, weight.shape[0], bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight.float())
        if bias is not None:
            linear.bias.copy_(bias.float())
    return linear


def identity_projection(hidden: int) -> nn.Linear:
    """The projection of a plain encoder: ``Linear(hidden, hidden)`` at the identity with a zero bias."""
    linear = nn.Linear(hidden, hidden)
    with torch.no_grad():
        linear.weight.copy_(torch.eye(hidden))
        linear.bias.zero_()
    return linear


class ColbertModel(nn.Module):
    """Encoder + ``colbert_linear`` + tokenizer; :meth:`forward` gives per-token vectors and their mask."""

    def __init__(self, encoder: nn.Module, tokenizer: object, colbert_linear: nn.Linear, name_or_path: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.colbert_linear = colbert_linear
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "right"  # forward drops position 0 as CLS, so texts must start there
        self.name_or_path = name_or_path
        #: where the projection came from: ``colbert_linear.pt``, ``identity`` (a plain encoder) or ``random``
        self.projection = "identity"

    @property
    def hidden_size(self) -> int:
        return int(self.encoder.config.hidden_size)

    @property
    def dim(self) -> int:
        return int(self.colbert_linear.out_features)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.encoder.parameters()).dtype

    @property
    def max_tokens(self) -> int | None:
        """The longest input the tokenizer declares (None when it declares a placeholder)."""
        limit = getattr(self.tokenizer, "model_max_length", None)
        return int(limit) if isinstance(limit, int) and 0 < limit < 1_000_000 else None

    def hidden_states(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """The encoder's last hidden states ``[B, T, h]``."""
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def project(self, hidden: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(vectors [B, T-1, dim] float32, mask [B, T-1] bool)``: CLS dropped, projected, masked, normalised.

        Masked positions are zero vectors (as bge-m3); the fp32 normalisation is ours (bge-m3 normalises in the
        model dtype), so half-precision runs lose nothing more there."""
        mask = attention_mask[:, 1:]
        vectors = self.colbert_linear(hidden[:, 1:]) * mask.unsqueeze(-1).to(hidden.dtype)
        return F.normalize(vectors.float(), dim=-1), mask.bool()

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        return self.project(self.hidden_states(input_ids, attention_mask), attention_mask)

    def token_ids(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """Input ids per text, special tokens added, truncated to ``max_length`` (as FlagEmbedding tokenizes)."""
        if not texts:
            return []
        return list(self.tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"])

    def token_counts(self, texts: Sequence[str], max_length: int) -> tuple[list[int], list[bool]]:
        """``(tokens after truncation, truncated?)`` per text: tokenizing to ``max_length + 1`` tells both."""
        ids = self.token_ids(texts, max_length + 1)
        return [min(len(x), max_length) for x in ids], [len(x) > max_length for x in ids]

    @torch.no_grad()
    def encode(self, texts: Sequence[str], max_length: int, batch_size: int = 64) -> list[Tensor]:
        """One ``[tokens - 1, dim]`` float32 CPU matrix per text, in batches sorted by length (less padding)."""
        ids = self.token_ids(texts, max_length)
        out: list[Tensor] = [torch.empty(0)] * len(ids)
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = self.tokenizer.pad([{"input_ids": ids[i]} for i in idx], padding=True, return_tensors="pt")
            vectors, _ = self(batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device))
            for row, i in enumerate(idx):
                out[i] = vectors[row, : len(ids[i]) - 1].cpu()
        return out

    def fingerprint(self) -> str:
        """A short digest of the weights (the projection and every 1-D encoder tensor: biases and norms), so a
        cache key changes when a folder is retrained in place; cheap even for bge-m3."""
        digest = hashlib.sha1()
        tensors = [p for _, p in sorted(self.colbert_linear.state_dict().items())]
        tensors += [p for _, p in sorted(self.encoder.state_dict().items()) if p.ndim == 1 and p.is_floating_point()]
        for tensor in tensors:
            digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def save(self, folder: str | Path) -> None:
        """Write bge-m3's layout: the encoder and tokenizer, ``colbert_linear.pt`` beside them."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        state = {k: v.detach().cpu().clone() for k, v in self.colbert_linear.state_dict().items()}
        torch.save(state, folder / COLBERT_LINEAR)


def load_colbert(
    path_or_id: str,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
    dim: int | None = None,
) -> ColbertModel:
    """A :class:`ColbertModel` from a bge-m3-style folder, a plain encoder (identity projection) or a hub id.

    ``dim`` (training from a plain encoder only): project to ``dim`` dimensions with a freshly initialised
    ``colbert_linear`` instead of the identity, as FlagEmbedding's ``--colbert_dim``.
    """
    from transformers import AutoModel, AutoTokenizer

    folder = checkpoint_folder(path_or_id)
    source = base_encoder(folder) or folder
    linear_file = find_projection(folder)
    check_weight_files(folder)
    tokenizer = AutoTokenizer.from_pretrained(str(source), trust_remote_code=trust_remote_code)
    encoder = AutoModel.from_pretrained(str(source), dtype=dtype, trust_remote_code=trust_remote_code)
    hidden = int(encoder.config.hidden_size)
    if linear_file is not None:
        linear, projection = read_projection(linear_file, hidden, dim), COLBERT_LINEAR
    elif dim is None or dim == hidden:
        linear, projection = identity_projection(hidden), "identity"
    else:
        linear, projection = nn.Linear(hidden, dim), "random"
    model = ColbertModel(encoder, tokenizer, linear, str(path_or_id))
    model.projection = projection
    return model.to(device=torch.device(device), dtype=dtype).eval()
