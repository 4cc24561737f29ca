#!/usr/bin/env bash
# Build the TOML fuzz target with clang (libFuzzer + ASan + UBSan) in
# build-fuzz/ and run it for SECONDS (default 60) from a seed corpus of the
# shared Cargo manifests. Exit status is non-zero when it finds a crash; the
# input is left in build-fuzz/ as crash-*.
#   tests/fuzz/run.sh 60
set -euo pipefail
seconds=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build-fuzz
manifests=${CDP_CORPUS:-$root/../shared/corpus}/manifests
mkdir -p "$out/corpus" "$out/seeds"
clang -g -O1 -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-I "$root/src" "$root/tests/fuzz/fuzz_toml.c" "$root/src/core/toml.c" -o "$out/fuzz_toml"
# Seeds are copied at run time, never committed.
if [ -d "$manifests" ]; then
	find "$manifests" -type f -name '*Cargo.toml' | while read -r f; do
		rel=${f#"$manifests"/}
		cp "$f" "$out/seeds/${rel//\//_}"
	done
fi
cd "$out"
./fuzz_toml -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 corpus seeds
