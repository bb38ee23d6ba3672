#!/usr/bin/env bash
# Tests the AWS deployment in infra/:
#   1. npm ci (skipped when infra/node_modules already matches package-lock.json),
#   2. npm test: tsc + jest (template assertions, least-privilege IAM, cdk-nag) on fake zips,
#   3. cfn-lint on a template synthesized from fake zips (a bootstrap that is an x86_64 ELF header),
#   4. if `cargo lambda build --profile lambda-release --output-format zip` has run (target/lambda/*/bootstrap.zip),
#      `cdk synth` with the real zips, offline, and cfn-lint on that template too,
#   5. scripts/infra-walkthrough.sh: infra/README.md's first-deploy commands, in order, on fake zips.
# Everything installs under the repository (infra/node_modules, .cache/); a second run is fast.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
INFRA="$ROOT/infra"
CACHE="$ROOT/.cache"
CFN_LINT_VERSION="1.58.0"
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1 npm_config_update_notifier=false
export npm_config_fund=false npm_config_audit=false

fail() { echo "infra-test: FAILED: $*" >&2; exit 1; }
trap 'echo "infra-test: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

step() { echo "==> infra-test: $*"; }

# ---- 1. node dependencies -------------------------------------------------------------
cd "$INFRA"
# shellcheck source=scripts/npm-deps.sh
source "$ROOT/scripts/npm-deps.sh"
npm_ci_if_changed "$PWD" infra-test

# ---- 2. unit tests ----------------------------------------------------------------------
step "npm test"
npm test

# ---- cfn-lint in a venv under .cache/ ----------------------------------------------------
VENV="$CACHE/cfn-lint-venv"
if ! "$VENV/bin/cfn-lint" --version 2>/dev/null | grep -q "$CFN_LINT_VERSION"; then
  step "installing cfn-lint $CFN_LINT_VERSION into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
fi
cfn_lint() {
  # Warnings fail too (exit codes: 2 error, 4 warning, 8 informational; only 8 is accepted).
  local rc=0
  # W3005 (redundant DependsOn): CDK makes every function DependsOn its role *and* the
  # role's policy, on purpose, so the policy exists before the function first runs; the
  # role half of that pair is what cfn-lint flags as already implied by Fn::GetAtt.
  "$VENV/bin/cfn-lint" --format parseable --ignore-checks W3005 -- "$@" || rc=$?
  if (( rc & 3 || rc & 4 )); then fail "cfn-lint found problems in $* (exit $rc)"; fi
}

synth() { # synth <lambdaDir> <outdir> [architecture [more cdk arguments...]]
  rm -rf "$2"
  npx cdk synth --no-notices --no-version-reporting --no-path-metadata --quiet \
    -c "lambdaDir=$1" -c "architecture=${3:-x86_64}" "${@:4}" -o "$2" > /dev/null || fail "cdk synth (lambdaDir=$1 ${*:4})"
  [[ -s "$2/Switchboard.template.json" ]] || fail "cdk synth wrote no template in $2"
  # cdk-nag runs as a CDK validation plugin; any unacknowledged finding (error or warning) fails.
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    let bad = 0;
    for (const p of r.pluginReports || []) {
      for (const v of p.violations || []) { bad++; console.error(`${p.pluginName}: ${v.severity} ${v.ruleName}: ${v.description}`); }
      if (p.conclusion !== "success") bad++;
      console.log(`${p.pluginName}: ${p.conclusion}, ${(p.suppressedViolations || []).length} acknowledged finding(s)`);
    }
    process.exit(bad ? 1 : 0);' "$2/validation-report.json" || fail "validation (cdk-nag) findings in $2"
}

# ---- 3. cfn-lint on a template from fake zips (always) ------------------------------------
WORK="$CACHE/infra-test"
mkdir -p "$WORK"
FAKE="$WORK/fake-lambdas"
rm -rf "$FAKE"
# Tiny zips whose `bootstrap` is an x86_64 ELF header (synth checks the architecture).
npx ts-node --transpile-only test/fake-lambdas.ts "$FAKE" x86_64
step "cdk synth (fake zips) + cfn-lint"
synth "$FAKE" "$WORK/cdk.out.fake"
cfn_lint "$WORK/cdk.out.fake/Switchboard.template.json"
# The same with a JWT_ISSUERS_FILE (a layer instead of the JWKS URL parameter).
ISSUERS="$WORK/issuers.json"
cat > "$ISSUERS" <<JSON
{"issuers": [
  {"issuer": "https://acme.example", "jwksUrl": "https://acme.example/jwks.json", "tenants": ["acme"]},
  {"issuer": "https://ops.example", "jwksFile": "$ROOT/services/core/src/auth/testdata/jwks.json",
   "tenants": "*", "globalAdmin": true, "allowSharedTenants": true}
]}
JSON
# ... and a TENANTS_FILE (a layer of tenant settings, docs/design.md: Tenants).
TENANTS="$WORK/tenants.json"
cat > "$TENANTS" <<JSON
{"defaults": {"maxConnections": 10000, "publishesPerSecond": 100},
 "tenants": {"acme": {"maxConnectionsPerUser": 5, "allowedTargets": ["users"]}}}
JSON
# ... and the events' own webhook route (an EventBridge connection, API destination and rule).
step "cdk synth (fake zips, jwtIssuersFile, tenantsFile, events webhook) + cfn-lint"
synth "$FAKE" "$WORK/cdk.out.issuers" x86_64 -c "jwtIssuersFile=$ISSUERS" -c "tenantsFile=$TENANTS" \
  -c "eventsWebhookUrl=https://hooks.example.com/switchboard" -c "eventsWebhookApiKeySecret=switchboard/events-webhook"
cfn_lint "$WORK/cdk.out.issuers/Switchboard.template.json"

# ---- 4. the real zips, when built ----------------------------------------------------------
REAL="${LAMBDA_DIR:-$ROOT/target/lambda}"  # LAMBDA_DIR overrides, e.g. for an --arm64 build elsewhere
REAL_ARCH="${LAMBDA_ARCH:-x86_64}"         # LAMBDA_ARCH=arm64 for such a build (synth checks each bootstrap)
missing=()
for name in authorizer connect disconnect default publisher publish-api events; do
  [[ -f "$REAL/$name/bootstrap.zip" ]] || missing+=("$name")
done
if (( ${#missing[@]} == 0 )); then
  step "cdk synth (real zips in $REAL) + cfn-lint"
  synth "$REAL" "$WORK/cdk.out.real" "$REAL_ARCH"
  cfn_lint "$WORK/cdk.out.real/Switchboard.template.json"
elif (( ${#missing[@]} < 7 )); then
  fail "target/lambda has some zips but not: ${missing[*]} (run: cargo lambda build --profile lambda-release --output-format zip)"
else
  step "no target/lambda/*/bootstrap.zip: skipping the synth with real zips (cargo lambda build --profile lambda-release --output-format zip)"
fi

step "infra/README.md's first-deploy walkthrough, in order, on fake zips" && bash "$ROOT/scripts/infra-walkthrough.sh"

step "OK"
