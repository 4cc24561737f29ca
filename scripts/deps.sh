#!/usr/bin/env bash
# Install the Debian packages cdp needs to build and test, when any is missing.
# Idempotent: a machine that has everything runs no apt-get at all.
# Works as root, or through sudo for anyone else.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  liblua5.4-dev lua5.4 lua-cjson-dev lua-busted
  libgit2-dev libcurl4-openssl-dev libedit-dev libcmocka-dev
  clang libclang-rt-14-dev
  python3 python3-yaml tmux
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
# node and npm: this image may carry NodeSource's node, which bundles npm and conflicts with
# Debian's npm package, so look for the commands rather than the packages.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# cargo: rustup's when the machine has it, Debian's otherwise.
command -v cargo >/dev/null 2>&1 || [[ -x $HOME/.cargo/bin/cargo ]] || missing+=(cargo)

if [[ ${#missing[@]} -gt 0 ]]; then
  if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# The test peers (MailDev, Prism, GitHub's OpenAPI description, git-cliff, action-validator), at the versions
# package-lock.json pins; reinstalled only when the lockfile changed. `npm install`, not
# `npm ci`: git-cliff lists a binary package per platform as optional dependencies, the
# registry this machine reaches serves only the linux-x64 one, so no lockfile can list the
# others and `npm ci` refuses any lockfile without them. `npm install` installs the pinned
# versions and skips optional packages it cannot have.
cd "$(dirname "$0")/.."
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "deps: npm install (test peers, as package-lock.json pins them)" >&2
  npm install --no-audit --no-fund --loglevel=error >&2
fi
