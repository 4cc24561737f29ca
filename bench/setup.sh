#!/usr/bin/env bash
# What bench/plan_bench.sh needs beyond cdp's own build, installed for the
# bench only (CI and `make test` never need it): GNU time, for peak RSS, and
# git-cliff at the version bench/package-lock.json pins, in bench/node_modules.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
if [ ! -x /usr/bin/time ]; then
	sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get install -y --no-install-recommends time
fi
# `npm install`, not `npm ci`: npm 11's ci refuses this lock because it lists git-cliff's
# binary package for linux-x64 only, not its other optional platform packages; install
# takes the same pinned versions from the lock and leaves the lock as it is.
[ -x "$HERE/node_modules/.bin/git-cliff" ] || npm install --prefix "$HERE" --no-audit --no-fund
echo "GNU time: $(/usr/bin/time --version 2>&1 | head -n 1); git-cliff: $("$HERE/node_modules/.bin/git-cliff" --version)"
