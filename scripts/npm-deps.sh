# Sourced by the test scripts: installs a folder's Node packages with `npm ci` only when
# its package-lock.json changed since the last install (a stamp in node_modules/), so
# repeated runs are fast.
#
#   source scripts/npm-deps.sh
#   npm_ci_if_changed <folder> <label>

npm_ci_if_changed() {
    local dir="$1" label="$2" lock_hash stamp
    lock_hash="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
    stamp="$dir/node_modules/.switchboard-lock-sha256"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_hash" ]]; then
        echo "==> $label: node_modules up to date"
    else
        echo "==> $label: npm ci"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$lock_hash" > "$stamp"
    fi
}
