# Sourced by the scripts that test against a real `switchboard serve` (smoke-serve.sh,
# schemathesis.sh, clients/js/test/install/install.sh): starts the debug binary on free
# ports and reads back the addresses it prints.
#
#   source scripts/serve-start.sh
#   serve_start <folder> [serve flags...]   # the caller's environment configures it
#   # -> SERVE_PID, SERVE_WS (ws://host:port/<stage>), SERVE_HTTP (http://host:port),
#   #    SERVE_MANAGEMENT (http://host:port of the management listener);
#   #    stdout in <folder>/serve.out, stderr in <folder>/serve.err
#   serve_stop                              # safe to call twice (e.g. from an EXIT trap)
#
# SWITCHBOARD_BIN names another binary (default: target/debug/switchboard, built by the
# caller). Waits at most 20 s for the addresses; on failure prints serve's stderr and
# returns 1.

SERVE_PID=""

serve_start() {
    local folder="$1"
    shift
    local root bin
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    bin="${SWITCHBOARD_BIN:-$root/target/debug/switchboard}"
    "$bin" serve --listen 127.0.0.1:0 --management-listen 127.0.0.1:0 "$@" \
        >"$folder/serve.out" 2>"$folder/serve.err" &
    SERVE_PID=$!
    SERVE_WS=""
    SERVE_MANAGEMENT=""
    for _ in $(seq 1 200); do
        SERVE_WS="$(sed -n 's/^switchboard listening on http:\/\/[^ ]* (WebSocket \(ws:\/\/[^)]*\))$/\1/p' "$folder/serve.out")"
        SERVE_MANAGEMENT="$(sed -n 's/^switchboard management API on \(http:\/\/[^/ ]*\).*/\1/p' "$folder/serve.out")"
        [ -n "$SERVE_WS" ] && [ -n "$SERVE_MANAGEMENT" ] && break
        if ! kill -0 "$SERVE_PID" 2>/dev/null; then
            echo "serve-start: serve exited:" >&2
            cat "$folder/serve.err" >&2
            return 1
        fi
        sleep 0.1
    done
    if [ -z "$SERVE_WS" ] || [ -z "$SERVE_MANAGEMENT" ]; then
        echo "serve-start: serve printed no addresses within 20 s" >&2
        cat "$folder/serve.err" >&2
        return 1
    fi
    SERVE_HTTP="http://${SERVE_WS#ws://}"
    SERVE_HTTP="${SERVE_HTTP%/*}"
}

serve_stop() {
    if [ -n "$SERVE_PID" ]; then
        kill "$SERVE_PID" 2>/dev/null || true
        wait "$SERVE_PID" 2>/dev/null || true
        SERVE_PID=""
    fi
}
