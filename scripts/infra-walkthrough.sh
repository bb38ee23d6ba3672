#!/usr/bin/env bash
# Runs infra/README.md's first-deploy walkthrough, in the order written, without an AWS
# account, and fails when any of its commands fails there. It proves the walkthrough works
# as written up to what only a real account can show.
#
# The commands are the one fenced `sh` block after the line `<!-- walkthrough: first-deploy -->`
# in infra/README.md. They run in a scratch copy of infra/ and scripts/, in one bash with
# `set -euo pipefail` (so a `cd` carries over to later lines), starting at the repository root.
# Three kinds of command are stood in for, and each stand-in is printed:
#   bash scripts/build-lambdas.sh   fake zips (infra/test/fake-lambdas.ts: an x86_64 ELF header
#                                   as `bootstrap`) written to target/lambda of the copy, where the
#                                   build would put them: no Rust build here;
#   aws …                           skipped: it needs credentials and an account;
#   npx cdk bootstrap|deploy|diff   `npx cdk synth` with the same `-c` context (dropping
#                                   `--parameters`, `--require-approval`, an `aws://…` environment):
#                                   both synthesize the app first, so a step that cannot synthesize
#                                   there (zips not built yet, bad context) fails here too.
# Everything else runs as written (`npm ci` included).
#
#   bash scripts/infra-walkthrough.sh     (scripts/infra-test.sh runs it)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
README="$ROOT/infra/README.md"
MARKER='<!-- walkthrough: first-deploy -->'
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1 npm_config_update_notifier=false
export npm_config_fund=false npm_config_audit=false npm_config_prefer_offline=true

fail() { echo "infra-walkthrough: FAILED: $*" >&2; exit 1; }

[[ -d "$ROOT/infra/node_modules" ]] || fail "infra/node_modules is missing (scripts/infra-test.sh installs it first)"
(( $(grep -cxF "$MARKER" "$README") == 1 )) || fail "$README must hold exactly one line '$MARKER'"

# ---- the block: from the first fence after the marker to its closing fence ----------------
BLOCK="$(awk -v marker="$MARKER" '
  $0 == marker { found = 1; next }
  found && !open && /^```/ { open = 1; next }
  open && /^```/ { exit }
  open { print }' "$README")"
[[ -n "$BLOCK" ]] || fail "no fenced block after '$MARKER' in $README"

# ---- the stand-ins, then every command (continuation lines joined) -------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/switchboard-walkthrough.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
SCRIPT="$WORK/walkthrough.sh"
cat > "$SCRIPT" <<'HEADER'
set -euo pipefail
fake_build() { # stands in for scripts/build-lambdas.sh, which runs from the repository root
  [[ -f scripts/build-lambdas.sh ]] || { echo "walkthrough: build step run outside the repository root ($PWD)" >&2; return 1; }
  (cd "$ORIGINAL/infra" && npx ts-node --transpile-only test/fake-lambdas.ts "$OLDPWD/target/lambda" x86_64)
  echo "   (stand-in: fake x86_64 zips in $PWD/target/lambda instead of a Rust build)"
}
account_cdk() { # `cdk bootstrap|deploy|diff …` → `cdk synth` with the same context
  shift
  local args=()
  while (( $# )); do
    case "$1" in
      --parameters|--require-approval|--profile|--role-arn) shift 2 ;;
      --parameters=*|--require-approval=*|--profile=*|--role-arn=*|aws://*) shift ;;
      *) args+=("$1"); shift ;;
    esac
  done
  echo "   (stand-in: npx cdk synth --quiet ${args[*]})"
  npx cdk synth --quiet --no-notices "${args[@]}" > /dev/null
}
HEADER
commands=0
line_acc=""
while IFS= read -r raw || [[ -n "$raw" ]]; do
  if [[ "$raw" =~ \\$ ]]; then line_acc+="${raw%\\} "; continue; fi
  cmd="$line_acc$raw"
  line_acc=""
  trimmed="${cmd#"${cmd%%[![:space:]]*}"}"
  [[ -z "$trimmed" || "$trimmed" == \#* ]] && continue
  commands=$((commands + 1))
  printf 'echo %q\n' "+ $trimmed" >> "$SCRIPT"
  if [[ "$trimmed" =~ (^|[[:space:]\;\&\|\(])aws[[:space:]] && ! "$trimmed" =~ npx\ cdk ]]; then
    echo 'echo "   (skipped: needs an AWS account)"' >> "$SCRIPT"
    continue
  fi
  # Stand-ins wherever the command appears in the line (`cd .. && bash scripts/build-lambdas.sh`).
  line="${trimmed//bash scripts\/build-lambdas.sh/fake_build}"
  for sub in bootstrap deploy diff; do line="${line//npx cdk $sub/account_cdk $sub}"; done
  echo "$line" >> "$SCRIPT"

done <<< "$BLOCK"
(( commands > 0 )) || fail "the walkthrough block holds no commands"

# ---- a scratch copy: the README's commands may write (npm ci, target/lambda, cdk.out) -------
COPY="$WORK/repo"
mkdir -p "$COPY"
tar -C "$ROOT" --exclude=infra/node_modules --exclude=infra/cdk.out -cf - infra scripts | tar -C "$COPY" -xf -

echo "==> infra-walkthrough: $commands commands from $README, in a copy at $COPY"
(cd "$COPY" && ORIGINAL="$ROOT" bash "$SCRIPT") || fail "a command of the walkthrough failed (above); fix infra/README.md"
echo "==> infra-walkthrough: OK"
