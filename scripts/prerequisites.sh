#!/usr/bin/env bash
# Checks the tools README.md's "Prerequisites" names, all at once: every one that is missing
# or too old is reported with what to install, then the script exits 1. Sourced by
# scripts/test.sh at its start; also runs on its own:
#
#   bash scripts/prerequisites.sh
#
# Versions: Rust 1.85+ (the workspace's `rust-version` in Cargo.toml), Node.js 20+ with npm
# (clients/js and infra say `"engines": {"node": ">=20"}`), Java 17+ (DynamoDB Local),
# Python 3.9+ with its venv module (schemathesis, cfn-lint and cargo-lambda install into venvs
# under .cache/; scripts/newcomer-check.py), curl. Chromium is not checked:
# scripts/browser-test.sh installs Debian's package when it is missing.

# "major.minor" of the first version number in $1 (e.g. "openjdk 17.0.15" -> 17.0).
_prereq_version() {
    printf '%s\n' "$1" | grep -oE '[0-9]+(\.[0-9]+)?' | head -n 1 || true
}

# True when version $1 (major[.minor]) is at least $2 (major.minor).
_prereq_at_least() {
    local have_major have_minor want_major want_minor
    have_major=${1%%.*}
    have_minor=${1#*.}
    [ "$have_minor" = "$1" ] && have_minor=0
    want_major=${2%%.*}
    want_minor=${2#*.}
    [ "$have_major" -gt "$want_major" ] && return 0
    [ "$have_major" -eq "$want_major" ] && [ "$have_minor" -ge "$want_minor" ]
}

# _prereq_require <what> <minimum major.minor> <command> <version text> <install hint>:
# records a problem when <command> is missing or its version is below the minimum.
_prereq_require() {
    local what=$1 minimum=$2 command=$3 text=$4 hint=$5 version
    if ! command -v "$command" >/dev/null 2>&1; then
        _prereq_problems+=("$what: $command not found; $hint")
        return
    fi
    version=$(_prereq_version "$text")
    if [ -z "$version" ] || ! _prereq_at_least "$version" "$minimum"; then
        _prereq_problems+=("$what: $command is ${version:-of an unknown version}; $hint")
    fi
}

prerequisites_check() {
    _prereq_problems=()
    _prereq_require "Rust 1.85+" 1.85 rustc "$(rustc --version 2>/dev/null)" \
        "install or update it with rustup (https://rustup.rs; \`rustup update stable\`)"
    command -v cargo >/dev/null 2>&1 || _prereq_problems+=("Rust: cargo not found; install Rust with rustup (https://rustup.rs)")
    _prereq_require "Node.js 20+" 20.0 node "$(node --version 2>/dev/null)" \
        "install Node.js 20 or newer with npm (https://nodejs.org, or your distribution's nodejs and npm)"
    command -v npm >/dev/null 2>&1 || _prereq_problems+=("npm: not found; it comes with Node.js (Debian: the npm package)")
    # `java -version` prints `openjdk version "17.0.15" ...` (or "1.8.0_..." for Java 8) on stderr.
    _prereq_require "Java 17+ (runs DynamoDB Local)" 17.0 java \
        "$(java -version 2>&1 | head -n 1 | sed 's/^[^"]*"//')" \
        "install a JDK or JRE 17 or newer (Debian: openjdk-17-jre-headless)"
    _prereq_require "Python 3.9+" 3.9 python3 "$(python3 --version 2>&1)" \
        "install Python 3.9 or newer with its venv module (Debian: python3 python3-venv)"
    if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
        _prereq_problems+=("Python venv module: \`python3 -m venv\` cannot make virtual environments; install it (Debian: python3-venv)")
    fi
    command -v curl >/dev/null 2>&1 || _prereq_problems+=("curl: not found; install it (Debian: curl)")

    if [ "${#_prereq_problems[@]}" -gt 0 ]; then
        echo "prerequisites: missing or too old (README.md, \"Prerequisites\"):" >&2
        local problem
        for problem in "${_prereq_problems[@]}"; do
            echo "  - $problem" >&2
        done
        return 1
    fi
}

prerequisites_check || exit 1
