# Shell helpers shared by the recipes/*/train_small.sh recipes (sourced from the repository root).

last_step() {  # the step of the last checkpoint-N folder in ${1:-$OUT} (0 if none)
    local c n=0
    for c in "${1:-$OUT}"/checkpoint-*; do
        [ -d "$c" ] && [ "${c##*-}" -gt "$n" ] && n=${c##*-}
    done
    echo "$n"
}
