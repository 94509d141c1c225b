#!/usr/bin/env bash
# Attach the ADMP bridge to a mailcow-dockerized installation, or take it out again.
#
#   ./install.sh --mailcow-dir DIR --domain agents.example.com [--mode postfilter|lmtp|both]
#                [--api-key KEY] [--dry-run] [--yes] [--no-docker] [more: ./install.sh --help]
#   ./install.sh uninstall --mailcow-dir DIR [--api-key KEY] [--dry-run] [--yes] [--no-docker]
#
# This script only checks prerequisites; the TypeScript installer (`admp install`, see
# docs/install.md) does the work.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command=install
if [[ "${1:-}" == uninstall || "${1:-}" == install ]]; then
  command="$1"
  shift
fi

mailcow_dir=""
need_docker=yes
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --mailcow-dir) mailcow_dir="${args[i + 1]:-}" ;;
    --mailcow-dir=*) mailcow_dir="${args[i]#*=}" ;;
    --no-docker | --dry-run) need_docker=no ;;
    -h | --help) need_docker=no ;;
  esac
done

missing=0
fail() { echo "install.sh: $*" >&2; missing=1; }

# Node runs the installer; 22.13 is the floor its dependencies declare (package.json engines).
if ! command -v node >/dev/null 2>&1; then
  fail "node is missing: install Node.js 22.13 or newer (a current LTS is best)"
elif ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=13)?0:1)'; then
  fail "node $(node --version) is too old: 22.13 or newer is needed"
fi

if [[ "$need_docker" == yes ]]; then
  if ! command -v docker >/dev/null 2>&1; then
    fail "docker is missing (or pass --no-docker to change only files and run the container steps yourself)"
  elif ! docker info >/dev/null 2>&1; then
    fail "cannot reach the Docker engine (are you root or in the docker group? is DOCKER_HOST right?)"
  fi
  # Mailcow says which Compose it uses: DOCKER_COMPOSE_VERSION=native|standalone in mailcow.conf.
  compose_version=native
  if [[ -n "$mailcow_dir" && -r "$mailcow_dir/mailcow.conf" ]]; then
    compose_version="$(sed -n 's/^DOCKER_COMPOSE_VERSION=//p' "$mailcow_dir/mailcow.conf" | tail -n 1)"
  fi
  if [[ "$compose_version" == standalone ]]; then
    docker-compose version >/dev/null 2>&1 || fail "docker-compose (standalone, as mailcow.conf says) is missing"
  else
    docker compose version >/dev/null 2>&1 || fail "the docker compose plugin is missing"
  fi
fi

[[ "$missing" == 0 ]] || exit 1

# Runtime dependencies of the installer, once per checkout.
if [[ ! -d "$here/node_modules" ]]; then
  echo "install.sh: installing the installer's dependencies (npm ci --omit=dev)"
  (cd "$here" && npm ci --omit=dev --no-audit --no-fund)
fi

exec node "$here/bin/admp.js" "$command" "${args[@]}"
