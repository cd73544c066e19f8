# Shell helpers shared by the recipes/*/train_small.sh recipes (sourced from the repository root).

last_step() {  # the step of the last checkpoint-N folder in ${1:-$OUT} (0 if none)
    local c n=0
    for c in "${1:-$OUT}"/checkpoint-*; do
        [ -d "$c" ] && [ "${c##*-}" -gt "$n" ] && n=${c##*-}
    done
    echo "$n"
}

rank_rows() {  # sets ROWS to the teacher rows: as given, else $W/train_mix.jsonl, built by recipes/build_rank_mix.sh
    if [ -z "${ROWS:-}" ]; then
        ROWS=$W/train_mix.jsonl
        WORK="$W" PY="$PY" TEACHER=dense bash recipes/build_rank_mix.sh  # the dense mix, whatever TEACHER says
    fi
}

# copy_last_checkpoint [--present] FILE...: the FILEs of $OUT's last checkpoint-N into $DEST (the model folder),
# when $DEST/adapter_model.safetensors is missing, empty or older than the checkpoint's. A FILE the checkpoint
# lacks stops the recipe (set -e), or with --present is skipped.
copy_last_checkpoint() {
    local present=0 weights=adapter_model.safetensors last f
    if [ "${1:-}" = --present ]; then present=1; shift; fi
    last="$OUT/checkpoint-$(last_step)"
    if [ ! -s "$DEST/$weights" ] || [ "$last/$weights" -nt "$DEST/$weights" ]; then
        mkdir -p "$DEST"
        for f in "$@"; do
            if [ "$present" = 1 ] && [ ! -e "$last/$f" ]; then continue; fi
            cp "$last/$f" "$DEST/$f"
        done
        echo "wrote $DEST from $last" >&2
    fi
}
