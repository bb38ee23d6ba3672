#!/usr/bin/env bash
# DynamoDB Local for Switchboard's tests and benchmarks: installs it (idempotently) and
# starts it in memory on a free port of 127.0.0.1.
#
# DynamoDB Local ships inside the npm package `amplify-dynamodb-simulator` (its `emulator/`
# folder holds DynamoDBLocal.jar and DynamoDBLocal_lib/). We fetch that package's tarball
# with `npm pack` (the ordinary npm client, no install scripts, none of the package's
# Node dependencies, which only wrap the jar) and unpack it under
# <repo>/.cache/dynamodb-local/<version>/ (git-ignored). Needs `npm` once and `java` to run.
#
# Sourced (what scripts/test.sh does):
#   source scripts/dynamodb-local.sh
#   dynamodb_local_start          # exports DYNAMODB_ENDPOINT and DYNAMODB_LOCAL_PID
#   trap dynamodb_local_stop EXIT
#   cargo test -p switchboard-aws
#
# Run directly:
#   bash scripts/dynamodb-local.sh install     # download/unpack only
#   eval "$(bash scripts/dynamodb-local.sh start)"   # start; prints the export lines
#   bash scripts/dynamodb-local.sh stop [PID]  # stop (PID defaults to $DYNAMODB_LOCAL_PID)
#
# Settings (environment): DYNAMODB_LOCAL_VERSION (npm version of
# amplify-dynamodb-simulator, default below), DYNAMODB_LOCAL_DIR (install folder),
# DYNAMODB_LOCAL_PORT (fixed port instead of a free one), DYNAMODB_LOCAL_TIMEOUT
# (seconds to wait until it answers, default 60).

DYNAMODB_LOCAL_DEFAULT_VERSION="2.9.30"

_ddb_local_log() {
    printf 'dynamodb-local: %s\n' "$*" >&2
}

_ddb_local_root() {
    local here
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" || return 1
    (cd "$here/.." && pwd)
}

# The folder holding DynamoDBLocal.jar and DynamoDBLocal_lib/.
dynamodb_local_emulator_dir() {
    local root version base
    root="$(_ddb_local_root)" || return 1
    version="${DYNAMODB_LOCAL_VERSION:-$DYNAMODB_LOCAL_DEFAULT_VERSION}"
    base="${DYNAMODB_LOCAL_DIR:-$root/.cache/dynamodb-local}"
    printf '%s/%s/emulator\n' "$base" "$version"
}

# Installs DynamoDB Local unless it is already there.
dynamodb_local_install() {
    local emulator version target tmp tarball
    emulator="$(dynamodb_local_emulator_dir)" || return 1
    if [[ -f "$emulator/DynamoDBLocal.jar" && -d "$emulator/DynamoDBLocal_lib" ]]; then
        _ddb_local_log "already installed in $emulator"
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        _ddb_local_log "ERROR: npm is needed to install DynamoDB Local (npm package amplify-dynamodb-simulator)"
        return 1
    fi
    version="${DYNAMODB_LOCAL_VERSION:-$DYNAMODB_LOCAL_DEFAULT_VERSION}"
    target="$(dirname "$emulator")"
    mkdir -p "$(dirname "$target")" || return 1
    tmp="$(mktemp -d "$(dirname "$target")/.install.XXXXXX")" || return 1
    _ddb_local_log "installing amplify-dynamodb-simulator@$version into $target"
    if ! (cd "$tmp" && npm pack "amplify-dynamodb-simulator@$version" --silent >/dev/null); then
        _ddb_local_log "ERROR: npm pack amplify-dynamodb-simulator@$version failed"
        rm -rf "$tmp"
        return 1
    fi
    tarball="$(ls "$tmp"/amplify-dynamodb-simulator-*.tgz 2>/dev/null | head -n 1 || true)"
    if [[ -z "$tarball" ]] || ! tar -xzf "$tarball" -C "$tmp" package/emulator; then
        _ddb_local_log "ERROR: could not unpack the emulator from the npm package"
        rm -rf "$tmp"
        return 1
    fi
    if [[ ! -f "$tmp/package/emulator/DynamoDBLocal.jar" ]]; then
        _ddb_local_log "ERROR: the npm package has no emulator/DynamoDBLocal.jar"
        rm -rf "$tmp"
        return 1
    fi
    rm -rf "$target"
    mkdir -p "$target" || return 1
    mv "$tmp/package/emulator" "$emulator" || { rm -rf "$tmp"; return 1; }
    rm -rf "$tmp"
    _ddb_local_log "installed in $emulator"
}

# Prints a free TCP port on 127.0.0.1.
_ddb_local_free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()' && return 0
    fi
    # Fallback: random high ports until one refuses connections.
    local port i
    for i in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    return 1
}

# Whether something answers HTTP on the endpoint (DynamoDB Local answers a bare POST
# with a 4xx; any HTTP status means it is up).
_ddb_local_answers() {
    local code
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' -X POST "$1/" 2>/dev/null)" || true
    [[ -n "$code" && "$code" != "000" ]]
}

# Starts DynamoDB Local in memory on a free port; exports DYNAMODB_ENDPOINT and
# DYNAMODB_LOCAL_PID. Calling it again while that process lives does nothing.
dynamodb_local_start() {
    if [[ -n "${DYNAMODB_LOCAL_PID:-}" && -n "${DYNAMODB_ENDPOINT:-}" ]] \
        && kill -0 "$DYNAMODB_LOCAL_PID" 2>/dev/null; then
        _ddb_local_log "already running (pid $DYNAMODB_LOCAL_PID) at $DYNAMODB_ENDPOINT"
        return 0
    fi
    if ! command -v java >/dev/null 2>&1; then
        _ddb_local_log "ERROR: java is not installed; DynamoDB Local needs a Java runtime (e.g. apt-get install -y default-jre-headless)"
        return 1
    fi
    if ! command -v curl >/dev/null 2>&1; then
        _ddb_local_log "ERROR: curl is needed to check that DynamoDB Local answers"
        return 1
    fi
    dynamodb_local_install || return 1
    local emulator timeout attempt port pid endpoint log waited
    emulator="$(dynamodb_local_emulator_dir)" || return 1
    timeout="${DYNAMODB_LOCAL_TIMEOUT:-60}"
    for attempt in 1 2 3; do
        port="${DYNAMODB_LOCAL_PORT:-$(_ddb_local_free_port)}" || {
            _ddb_local_log "ERROR: no free port found"
            return 1
        }
        endpoint="http://127.0.0.1:$port"
        log="$(dirname "$emulator")/dynamodb-local-$port.log"
        # From the install folder: DynamoDB Local writes dynamodb-local-metadata.json
        # into its working directory. `exec` keeps $! the java process itself.
        (cd "$(dirname "$emulator")" && exec java -Djava.library.path="$emulator/DynamoDBLocal_lib" \
            -jar "$emulator/DynamoDBLocal.jar" \
            -inMemory -sharedDb -port "$port" -disableTelemetry) \
            </dev/null >"$log" 2>&1 &
        pid=$!
        waited=0
        while ((waited < timeout * 10)); do
            if ! kill -0 "$pid" 2>/dev/null; then
                break
            fi
            # A failed bind leaves the JVM running without a server: give up on this port.
            if grep -q "Address already in use" "$log" 2>/dev/null; then
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
                break
            fi
            if _ddb_local_answers "$endpoint"; then
                export DYNAMODB_ENDPOINT="$endpoint"
                export DYNAMODB_LOCAL_PID="$pid"
                _ddb_local_log "running (pid $pid) at $endpoint, log $log"
                return 0
            fi
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            _ddb_local_log "ERROR: DynamoDB Local did not answer on $endpoint within ${timeout}s (log: $log)"
            tail -n 20 "$log" >&2 2>/dev/null || true
            return 1
        fi
        # It exited early: most likely the port was taken in between; try another one.
        wait "$pid" 2>/dev/null || true
        _ddb_local_log "DynamoDB Local exited early on port $port (attempt $attempt), log:"
        tail -n 20 "$log" >&2 2>/dev/null || true
        if [[ -n "${DYNAMODB_LOCAL_PORT:-}" ]]; then
            return 1
        fi
    done
    _ddb_local_log "ERROR: could not start DynamoDB Local"
    return 1
}

# Stops the DynamoDB Local started by dynamodb_local_start (or the PID given).
dynamodb_local_stop() {
    local pid="${1:-${DYNAMODB_LOCAL_PID:-}}"
    if [[ -z "$pid" ]]; then
        return 0
    fi
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        _ddb_local_log "stopped (pid $pid)"
    fi
    if [[ "${DYNAMODB_LOCAL_PID:-}" == "$pid" ]]; then
        unset DYNAMODB_LOCAL_PID DYNAMODB_ENDPOINT
    fi
    return 0
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    case "${1:-}" in
        install)
            dynamodb_local_install
            ;;
        start)
            dynamodb_local_start
            printf 'export DYNAMODB_ENDPOINT=%s\nexport DYNAMODB_LOCAL_PID=%s\n' \
                "$DYNAMODB_ENDPOINT" "$DYNAMODB_LOCAL_PID"
            ;;
        stop)
            dynamodb_local_stop "${2:-}"
            ;;
        *)
            echo "usage: $0 install|start|stop [PID]" >&2
            echo "  or: source $0; dynamodb_local_start; ...; dynamodb_local_stop" >&2
            exit 2
            ;;
    esac
fi
