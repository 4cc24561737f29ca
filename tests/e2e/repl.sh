#!/usr/bin/env bash
# `cdp repl` as a user meets it: in a real terminal (tmux), through libedit,
# with help, Tab completion, Ctrl-C, Ctrl-D and history kept across sessions;
# and scripted, with stdin not a terminal, using plan(), explain(), changelog(),
# runs() and diff() on a real workspace.
set -euo pipefail

CDP=$(realpath "${CDP:-build/cdp}")
tmp=$(mktemp -d /tmp/cdp-repl-e2e.XXXXXX)
sock="cdp-repl-$$-$RANDOM"
export CDP_HISTORY="$tmp/history"

cleanup() {
	tmux -L "$sock" kill-server 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

target=""

screen() { tmux -L "$sock" capture-pane -p -J -S - -t "$target"; }

fail() {
	echo "FAIL: $*" >&2
	echo "--- screen of $target ---" >&2
	screen >&2 || true
	exit 1
}

# until COMMAND succeeds, for at most 10 seconds
wait_until() {
	local deadline=$((SECONDS + 10))
	until eval "$1"; do
		((SECONDS < deadline)) || fail "timed out waiting for: $1"
		sleep 0.05
	done
}

# Prompt lines so far (cdp> and cdp>>): a new one means the REPL is waiting.
prompts() { screen | grep -c '^cdp>' || true; }

# What the last command printed: the lines between the last two prompts.
last_output() {
	screen | awk '/^cdp>/ { prev = cur; cur = ""; next } { cur = cur $0 "\n" } END { printf "%s", prev }' |
		sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'
}

# start NAME COMMAND...: a new tmux session running COMMAND; when it exits
# the pane stays and shows "exited with N".
start() {
	target=$1
	shift
	local cmd
	cmd=$(printf '%q ' "$@")
	tmux -L "$sock" new-session -d -s "$target" -x 120 -y 40 -c "$PWD" \
		"$cmd; echo \"exited with \$?\"; sleep 600"
	wait_until '[ "$(prompts)" -ge 1 ]'
}

keys() { tmux -L "$sock" send-keys -t "$target" "$@"; }

# send LINE: type LINE, press Enter, and wait for the next prompt.
send() {
	local before
	before=$(prompts)
	keys -l -- "$1"
	keys Enter
	wait_until "[ \"\$(prompts)\" -gt $before ]"
}

# expect LINE OUTPUT: send LINE; what it printed must be exactly OUTPUT.
expect() {
	send "$1"
	local got
	got=$(last_output)
	[ "$got" = "$2" ] || fail "'$1' printed '$got', expected '$2'"
}

# expect_match LINE TEXT: send LINE; what it printed must contain TEXT.
expect_match() {
	send "$1"
	last_output | grep -qF -- "$2" || fail "'$1' printed '$(last_output)', expected it to contain '$2'"
}

# The current prompt line, as shown.
current_line() { screen | grep '^cdp>' | tail -n 1; }

echo "== terminal: expressions, statements, errors, Ctrl-C"
start main "$CDP" repl
screen | grep -q "Ctrl-D" || fail "no banner on a terminal"
expect '=1+1' '2'
expect '1+2' '3'
expect '={3, x = true, "two"}' '{ 3, "two", x = true }'

send 'function double(n)'
[ "$(current_line)" = "cdp>> " ] || [ "$(current_line)" = "cdp>>" ] || fail "no continuation prompt"
send '  return n * 2'
send 'end'
expect '=double(21)' '42'

expect_match '=nil+1' 'stdin:1: attempt to perform arithmetic on a nil value'
expect '=6*7' '42'

# A runaway chunk: no prompt comes back until Ctrl-C stops it.
before=$(prompts)
keys -l -- 'while true do end'
keys Enter
sleep 0.5
[ "$(prompts)" -eq "$before" ] || fail "the runaway loop did not run"
keys C-c
wait_until "[ \"\$(prompts)\" -gt $before ]"
last_output | grep -qF 'interrupted!' || fail "Ctrl-C did not say the chunk was interrupted"
expect '=2+2' '4'

# Ctrl-C at the prompt drops what was typed, and the REPL stays.
before=$(prompts)
keys -l -- 'this is not lua'
keys C-c
wait_until "[ \"\$(prompts)\" -gt $before ]"
expect '=3+3' '6'

# Ctrl-C at a continuation prompt drops the whole statement.
send 'if true then'
before=$(prompts)
keys C-c
wait_until "[ \"\$(prompts)\" -gt $before ]"
[ "$(current_line)" = "cdp> " ] || [ "$(current_line)" = "cdp>" ] || fail "Ctrl-C did not return to the first prompt"

expect 'answer = 6*7' ''
keys C-d
wait_until 'screen | grep -qx "exited with 0"'

echo "== help lists what the REPL offers; Tab completes names of cdp.* tables"
start help env CDP_HISTORY="$tmp/history-help" "$CDP" repl
send 'help'
for offer in 'plan()' 'explain("crate")' 'changelog()' 'runs()' 'diff(policy_a, policy_b)' 'Tab completes'; do
	last_output | grep -qF -- "$offer" || fail "help does not mention $offer"
done
# One match: the word is completed in place.
keys -l -- 'cdp.pl'
keys Tab
wait_until '[ "$(current_line)" = "cdp> cdp.plan" ]'
keys -l -- '.ma'
keys Tab
wait_until '[ "$(current_line)" = "cdp> cdp.plan.make" ]'
keys C-u
keys -l -- '=type(cdp.stages.ta'
keys Tab
wait_until '[ "$(current_line)" = "cdp> =type(cdp.stages.tag" ]'
keys -l -- '.ru'
keys Tab
wait_until '[ "$(current_line)" = "cdp> =type(cdp.stages.tag.run" ]'
keys -l -- ')'
before=$(prompts)
keys Enter
wait_until "[ \"\$(prompts)\" -gt $before ]"
[ "$(last_output)" = '"function"' ] || fail "the completed name does not evaluate: $(last_output)"
# Several matches: a second Tab lists them, and the line keeps what was typed.
keys -l -- 'cdp.se'
keys Tab
keys Tab
wait_until 'screen | grep -q "cdp.semver"'
screen | grep -q "cdp.settings" || fail "the matches of cdp.se are not listed"
wait_until '[ "$(current_line)" = "cdp> cdp.se" ]'
keys C-u
# The REPL's own names and the script's globals complete too.
keys -l -- 'expl'
keys Tab
wait_until '[ "$(current_line)" = "cdp> explain" ]'
keys C-u
expect '=1+1' '2'
keys C-d
wait_until 'screen | grep -qx "exited with 0"'

echo "== history: kept in CDP_HISTORY, recalled with Up in the next session"
[ -f "$CDP_HISTORY" ] || fail "no history file at $CDP_HISTORY"
grep -qxF '=1+1' "$CDP_HISTORY" || fail "history file lacks '=1+1': $(cat "$CDP_HISTORY")"
grep -qF 'answer' "$CDP_HISTORY" || fail "history file lacks the last line: $(cat "$CDP_HISTORY")"
[ "$(stat -c %a "$CDP_HISTORY")" = 600 ] || fail "history file is not private"
start again "$CDP" repl
keys Up
wait_until '[ "$(current_line)" = "cdp> answer = 6*7" ]'
keys Enter
wait_until '[ "$(prompts)" -ge 2 ]'
expect '=answer' '42'
keys C-d
wait_until 'screen | grep -qx "exited with 0"'

echo "== history: default file under XDG_STATE_HOME"
start xdg env -u CDP_HISTORY XDG_STATE_HOME="$tmp/state" "$CDP" repl
expect '=5' '5'
keys C-d
wait_until 'screen | grep -qx "exited with 0"'
grep -qxF '=5' "$tmp/state/cdp/history" || fail "no history under XDG_STATE_HOME"

echo "== cdp repl FILE: what FILE returns is there to inspect"
cat >"$tmp/pipeline.lua" <<'EOF'
helper = "set by the script"
return { name = "release", stages = { "activate", "validate" } }
EOF
start file "$CDP" repl "$tmp/pipeline.lua"
expect '=pipeline.name' '"release"'
expect '=result.stages' '{ "activate", "validate" }'
expect '=helper' '"set by the script"'
expect '=type(cdp) .. type(pretty.format) .. type(require)' '"tablefunctionfunction"'
keys C-d
wait_until 'screen | grep -qx "exited with 0"'

echo "== stdin not a terminal: no prompts, no banner"
out=$(printf '=1+1\n' | "$CDP" repl)
[ "$out" = 2 ] || { echo "FAIL: piped =1+1 printed '$out'" >&2; exit 1; }
out=$(printf '=1, "two", {3}\n' | "$CDP" repl)
[ "$out" = $'1\t"two"\t{ 3 }' ] || { echo "FAIL: piped results printed '$out'" >&2; exit 1; }

out=$(printf 'x = 20\nfunction f(a)\n  return a + x\nend\n=nil+1\n=f(22)\n' | "$CDP" repl 2>"$tmp/err")
[ "$out" = 42 ] || { echo "FAIL: piped session printed '$out'" >&2; exit 1; }
grep -qF 'stdin:1: attempt to perform arithmetic on a nil value' "$tmp/err" ||
	{ echo "FAIL: piped error not reported: $(cat "$tmp/err")" >&2; exit 1; }

out=$(printf '=pipeline.name\n' | "$CDP" repl "$tmp/pipeline.lua")
[ "$out" = '"release"' ] || { echo "FAIL: piped FILE session printed '$out'" >&2; exit 1; }

# A statement cut short by the end of input is reported, and the exit is still 0.
printf 'for i = 1, 2 do\n' | "$CDP" repl 2>"$tmp/err" >/dev/null ||
	{ echo "FAIL: end of input inside a statement is not exit 0" >&2; exit 1; }
grep -qF "'end' expected" "$tmp/err" || { echo "FAIL: no syntax error at end of input" >&2; exit 1; }

echo "== plan, explain, changelog, runs and diff of policies, in a workspace"
bash "$(dirname "$0")/../fixtures/workspace_demo.sh" "$tmp/ws" >/dev/null
out=$(cd "$tmp/ws/work" && printf '%s\n' '=plan()' '=explain("demo-util")' '=changelog("demo-core")' '=runs()' \
	'=diff(conventional {}, conventional { zero_major = false })' | SOURCE_DATE_EPOCH=1767225600 "$CDP" repl 2>&1)
for want in 'demo-cli   0.1.0 → 0.2.0  minor' 'demo-util 1.0.0 → 1.0.1 (patch)' \
	'  last release: 1.0.0 (tag demo-util-v1.0.0)' '## [0.1.1] - 2026-01-01' '- **core:** greet with a capital letter' \
	'{}' 'demo-cli: next 0.2.0 → 1.0.0' 'demo-core: bump patch → minor'; do
	grep -qF -- "$want" <<<"$out" || { echo "FAIL: the REPL's helpers did not print '$want':" >&2; echo "$out" >&2; exit 1; }
done
out=$(cd "$tmp/ws/work" && printf '=explain("nope")\n' | "$CDP" repl 2>&1)
grep -qF "no crate 'nope' in the plan" <<<"$out" || { echo "FAIL: explain of an unknown crate: $out" >&2; exit 1; }

echo "== cdp.repl.run options: env, print"
out=$(printf '=x\ny = 1\n=y, nil\n' | "$CDP" -e '
  local env = { x = 5 }
  require("cdp.repl").run { env = env, history = false,
    print = function(...) print("n=" .. select("#", ...), ...) end }
  print("y in env:", env.y, "y global:", y)')
expected=$'n=1\t5\nn=2\t1\tnil\ny in env:\t1\ty global:\tnil'
[ "$out" = "$expected" ] || { echo "FAIL: run{env, print} printed '$out'" >&2; exit 1; }

if "$CDP" -e 'require("cdp.repl").run { env = 1 }' </dev/null 2>"$tmp/err"; then
	echo "FAIL: run{env = 1} did not raise" >&2
	exit 1
fi
grep -qF "bad option 'env'" "$tmp/err" || { echo "FAIL: bad env not named: $(cat "$tmp/err")" >&2; exit 1; }
if "$CDP" -e 'require("cdp.repl").run { complete = 1 }' </dev/null 2>"$tmp/err"; then
	echo "FAIL: run{complete = 1} did not raise" >&2
	exit 1
fi
grep -qF "bad option 'complete'" "$tmp/err" || { echo "FAIL: bad complete not named: $(cat "$tmp/err")" >&2; exit 1; }

echo "PASS"
