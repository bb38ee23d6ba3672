#!/usr/bin/env bash
# The newcomer check (scripts/newcomer-check.py): README.md's "Try it" commands, run exactly
# as written from the repository root, must print what the README shows. Then the same check
# on a copy of the README with one sample changed must fail (exit 1), which shows that a stale
# sample or command cannot pass. The first run builds the release binary (`cargo run
# --release`, as written). Needs ports 8080 and 8081 of 127.0.0.1 free (the README's).
#
#   bash scripts/newcomer-check.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python3 scripts/newcomer-check.py --readme README.md

stale=$(mktemp)
trap 'rm -f "$stale"' EXIT
# One sample changed: the receipt's status.
sed 's/^\(#   {"acceptedAt":.*\)"status":"delivered"/\1"status":"queued"/' README.md >"$stale"
if cmp -s README.md "$stale"; then
    echo "newcomer-check: the receipt sample to change was not found in README.md" >&2
    exit 1
fi
rc=0
python3 scripts/newcomer-check.py --readme "$stale" >/dev/null 2>"$stale.err" || rc=$?
if [ "$rc" -ne 1 ] || ! grep -q '"status":"queued"' "$stale.err"; then
    echo "newcomer-check: a README whose receipt sample says \"queued\" should fail on that line (exit 1), got exit $rc:" >&2
    cat "$stale.err" >&2
    rm -f "$stale.err"
    exit 1
fi
rm -f "$stale.err"
echo "newcomer-check: a changed sample fails the check, as it should"
