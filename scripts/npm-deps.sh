# Sourced by the test scripts: installs a folder's Node packages with `npm ci` only when
# its package-lock.json changed since the last install (a stamp in node_modules/), so
# repeated runs are fast. A failed install is retried twice (a registry hiccup on a fresh
# machine must not fail the run); each failure prints the end of npm's own log, whose
# "npm error" summary line alone says nothing.
#
#   source scripts/npm-deps.sh
#   npm_ci_if_changed <folder> <label>

npm_ci_if_changed() {
    local dir="$1" label="$2" lock_hash stamp attempt log
    lock_hash="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    stamp="$dir/node_modules/.switchboard-lock-sha256"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_hash" ]]; then
        echo "==> $label: node_modules up to date"
        return 0
    fi
    for attempt in 1 2 3; do
        echo "==> $label: npm ci (attempt $attempt of 3)"
        if (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error); then
            echo "$lock_hash" > "$stamp"
            return 0
        fi
        log="$(ls -t "${npm_config_cache:-$HOME/.npm}"/_logs/*-debug-*.log 2>/dev/null | head -n 1 || true)"
        if [[ -n "$log" ]]; then
            echo "==> $label: npm ci failed; the end of $log:" >&2
            tail -n 25 "$log" >&2 || true
        fi
        [[ "$attempt" == 3 ]] || sleep $((attempt * 10))
    done
    echo "==> $label: npm ci failed three times" >&2
    return 1
}
