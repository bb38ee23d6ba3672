#!/usr/bin/env bash
# Builds the seven Lambda functions (services/lambdas) as x86-64 `bootstrap.zip` files under
# target/lambda/<name>/, the layout the CDK app deploys, with the `lambda-release` profile (root
# Cargo.toml: size and start-up over build time; infra/README.md "Cold starts").
#
# Idempotent: when `cargo lambda` is not on PATH, it is installed from PyPI (the
# `cargo-lambda` package, which brings zig through the `ziglang` package) into a venv under
# <repo>/.cache/cargo-lambda-venv (git-ignored) and reused on later runs.
#
#   bash scripts/build-lambdas.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUNCTIONS=(authorizer connect disconnect default publisher publish-api events)
VENV="$PWD/.cache/cargo-lambda-venv"

if ! cargo lambda --version >/dev/null 2>&1; then
    if [ ! -x "$VENV/bin/cargo-lambda" ]; then
        echo "build-lambdas: installing cargo-lambda from PyPI into $VENV" >&2
        if ! python3 -m venv "$VENV"; then
            # Debian's python3 ships venv/ensurepip separately.
            echo "build-lambdas: python3 -m venv failed; installing Debian's python3-venv" >&2
            rm -rf "$VENV"
            SUDO=""
            [ "$(id -u)" -eq 0 ] || SUDO="sudo"
            $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
            $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            python3 -m venv "$VENV"
        fi
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==1.9.2"
    fi
    export PATH="$VENV/bin:$PATH"
fi
echo "build-lambdas: $(cargo lambda --version)" >&2

started=$SECONDS
cargo lambda build --profile lambda-release --x86-64 --output-format zip -p switchboard-lambdas
echo "build-lambdas: built in $((SECONDS - started)) s" >&2

missing=0
for name in "${FUNCTIONS[@]}"; do
    zip="${CARGO_TARGET_DIR:-target}/lambda/$name/bootstrap.zip"
    if [ -f "$zip" ]; then
        printf '%-12s %10s bytes  %s\n' "$name" "$(stat -c %s "$zip")" "$zip"
    else
        echo "build-lambdas: MISSING $zip" >&2
        missing=1
    fi
done
if [ "$missing" -ne 0 ]; then
    echo "build-lambdas: FAILED: not every function was built" >&2
    exit 1
fi
