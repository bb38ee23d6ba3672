#!/usr/bin/env bash
# The cold-start benchmark (infra/README.md "Cold starts"): builds the seven functions
# (scripts/build-lambdas.sh) and a hello-world Rust Lambda the same way
# (services/lambdas/examples/hello.rs), starts DynamoDB Local for `connect`, and runs
# services/lambdas/examples/init_bench.rs against an emulated Lambda Runtime API. Prints
# init and first-invocation times (median / p90) of hello, authorizer and connect, and every
# zip's size. Figures only: nothing here fails on a time.
#
#   bash scripts/bench-lambda-init.sh [runs]     # runs per function, default 20
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS="${1:-20}"
TARGET="${CARGO_TARGET_DIR:-target}"
LAMBDA_DIR="$TARGET/lambda"

bash scripts/build-lambdas.sh
VENV="$PWD/.cache/cargo-lambda-venv"
cargo lambda --version >/dev/null 2>&1 || export PATH="$VENV/bin:$PATH"
cargo lambda build --profile lambda-release --x86-64 --output-format zip -p switchboard-lambdas \
    --example hello

# The bootstraps, unpacked from the zips Lambda would get.
for name in hello authorizer connect; do
    rm -f "$LAMBDA_DIR/$name/bootstrap"
    python3 -m zipfile -e "$LAMBDA_DIR/$name/bootstrap.zip" "$LAMBDA_DIR/$name/"
    chmod +x "$LAMBDA_DIR/$name/bootstrap"
done

# shellcheck source=scripts/dynamodb-local.sh
source scripts/dynamodb-local.sh
dynamodb_local_start
trap dynamodb_local_stop EXIT

echo "bench-lambda-init: load before the runs: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2
cargo run -q -p switchboard-lambdas --example init_bench -- \
    --lambda-dir "$LAMBDA_DIR" --runs "$RUNS"
