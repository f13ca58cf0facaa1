#!/usr/bin/env bash
# Developer entry point: works on a fresh clone, needs no input, safe to run again.
#
#   bash scripts/dev.sh setup        venv + Python deps, bun, Chromium, database migrations
#   bash scripts/dev.sh run [ARGS]   setup, demo data, then `reflex run ARGS` (dev: 3000 + 8000)
#   bash scripts/dev.sh test [ARGS]  setup, then `python -m pytest ARGS` (no ARGS: the whole suite on 2 processes)
#   bash scripts/dev.sh env          print the environment lines (eval "$(bash scripts/dev.sh env)")
#
# No download ever leaves the package registries: bun comes from the npm registry, Reflex is
# told which npm registry to use, Chromium comes from Debian.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUN_VERSION="1.4.4"
VENV="$ROOT/.venv"
TOOLS="$ROOT/.tools"
BUN="$TOOLS/node_modules/.bin/bun"
STAMP="$VENV/.chiiki-pyproject.sha256"

log() { printf '[dev.sh] %s\n' "$*" >&2; }
die() { printf '[dev.sh] error: %s\n' "$*" >&2; exit 1; }

ensure_venv() {
    if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        return
    fi
    local py="${PYTHON:-python3}"
    command -v "$py" >/dev/null || die "$py not found (Python >= 3.11 is needed)"
    "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$py is $("$py" -V 2>&1); Python >= 3.11 is needed"
    log "creating $VENV"
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
}

ensure_python_deps() {
    local want have=""
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    [[ -f "$STAMP" ]] && have="$(cat "$STAMP")"
    if [[ "$want" == "$have" ]]; then
        return
    fi
    log "pip install -e '.[test]' (pyproject.toml changed or first run)"
    local pip_log="$VENV/pip-install.log"
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -e '.[test]' >"$pip_log" 2>&1; then
        tail -n 60 "$pip_log" >&2
        die "pip install failed (full log: $pip_log)"
    fi
    printf '%s\n' "$want" >"$STAMP"
}

npm_registry() {
    if [[ -n "${NPM_CONFIG_REGISTRY:-}" ]]; then
        printf '%s' "$NPM_CONFIG_REGISTRY"
    elif command -v npm >/dev/null; then
        npm config get registry
    else
        printf '%s' "https://registry.npmjs.org/"
    fi
}

AXE_VERSION=4.14.1

ensure_bun() {
    # bun builds the frontend; axe-core is injected into pages by the accessibility tests.
    if [[ -x "$BUN" ]] && [[ "$("$BUN" --version 2>/dev/null)" == "$BUN_VERSION" ]] \
        && [[ -f "$TOOLS/node_modules/axe-core/axe.min.js" ]]; then
        return
    fi
    command -v npm >/dev/null || die "npm not found: it is needed once to install bun $BUN_VERSION"
    log "installing bun $BUN_VERSION and axe-core $AXE_VERSION into .tools/ (npm registry)"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "bun@$BUN_VERSION" \
        "axe-core@$AXE_VERSION" >/dev/null
    [[ "$("$BUN" --version 2>/dev/null)" == "$BUN_VERSION" ]] || die "bun $BUN_VERSION did not install into $TOOLS"
}

ensure_chromium() {
    local pkgs=()
    [[ -x /usr/bin/chromium ]] || pkgs+=(chromium chromium-driver)
    # Japanese UI: without a CJK font screenshots show boxes and text metrics are wrong.
    if ! { command -v fc-list >/dev/null && [[ -n "$(fc-list :lang=ja 2>/dev/null)" ]]; }; then
        pkgs+=(fonts-noto-cjk)
    fi
    ((${#pkgs[@]})) || return 0
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
        log "warning: missing ${pkgs[*]} (install them as root); browser tests will be skipped"
        return 0
    fi
    log "apt-get install ${pkgs[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
}

export_env() {
    export VIRTUAL_ENV="$VENV"
    export PATH="$VENV/bin:$TOOLS/node_modules/.bin:$PATH"
    unset PYTHONHOME
    export REFLEX_BUN_PATH="$BUN"
    export BUN_INSTALL_CACHE_DIR="$ROOT/.cache/bun"
    export REFLEX_DIR="$ROOT/.cache/reflex"
    export REFLEX_TELEMETRY_ENABLED=false
    NPM_CONFIG_REGISTRY="$(npm_registry)"
    export NPM_CONFIG_REGISTRY
}

chiiki_cli() {
    python -m chiiki.cli "$@"
}

setup() {
    ensure_venv
    ensure_python_deps
    export_env
    ensure_bun
    ensure_chromium
    chiiki_cli migrate
}

cmd="${1:-help}"
(($#)) && shift
case "$cmd" in
    setup)
        setup
        ;;
    run)
        setup
        chiiki_cli seed-demo
        # Test runs write caches and screenshots: they must not restart the dev server.
        if [[ -z "${REFLEX_HOT_RELOAD_EXCLUDE_PATHS:-}" ]]; then
            excludes=()
            for d in tests test-artifacts var scripts; do
                [[ -d "$ROOT/$d" ]] && excludes+=("$ROOT/$d")
            done
            REFLEX_HOT_RELOAD_EXCLUDE_PATHS="$(IFS=:; echo "${excludes[*]}")"
            export REFLEX_HOT_RELOAD_EXCLUDE_PATHS
        fi
        exec reflex run "$@"
        ;;
    test)
        setup
        if [[ $# -eq 0 ]]; then
            # The whole suite on two processes: the browser tests in two groups, each on one process
            # with its apps started once, everything else wherever free (tests/conftest.py groups them).
            set -- -n 2 --dist loadgroup
        fi
        exec python -m pytest "$@"
        ;;
    env)
        export_env
        for v in VIRTUAL_ENV PATH REFLEX_BUN_PATH BUN_INSTALL_CACHE_DIR REFLEX_DIR REFLEX_TELEMETRY_ENABLED NPM_CONFIG_REGISTRY; do
            printf 'export %s=%q\n' "$v" "${!v}"
        done
        ;;
    help | -h | --help)
        sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
        ;;
    *)
        die "unknown command '$cmd' (use setup, run, test or env)"
        ;;
esac
