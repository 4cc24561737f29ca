#!/usr/bin/env python3
"""Build a large synthetic Cargo workspace history for the planning benchmark.

    bench/make_workspace.py [--commits N] [--out bench/work/ws]

What it makes (deterministic: same arguments, same repository):
  * 160 crates under crates/NAME (Cargo.toml + src/lib.rs), created in the
    first commit, plus 5 never-released crates (late-0..late-4) added in the
    last 2,000 commits;
  * N commits (default 100,000) on main, each touching 1-3 crates (a few
    hot crates take most changes) with Conventional Commit messages; every
    40th commit is the merge of a two-commit topic branch;
  * release tags {crate}-v{version} every 3,000 commits for one of four
    groups of crates, so each crate's newest release lies 0-12,000 commits
    back;
  * committer times one minute apart; then a repack and a commit-graph, as
    `git gc` leaves a real repository.

It writes OUT/../crates.tsv: name, directory, newest tag ("-" when never
released), which plan_bench.sh reads.
"""
import argparse
import os
import random
import subprocess
import sys

PREFIXES = ["core", "net", "io", "http", "json", "sql", "cli", "log", "fmt", "time",
            "sync", "fs", "cache", "auth", "codec", "proto", "rpc", "metrics", "trace", "test"]
SUFFIXES = ["", "-util", "-derive", "-macros", "-types", "-impl", "-sys", "-async"]
TYPES = ["feat", "fix", "fix", "chore", "docs", "refactor", "perf", "test", "feat", "fix"]
AUTHORS = [("Ada Lovelace", "ada@example.invalid"), ("Grace Hopper", "grace@example.invalid"),
           ("Ken Thompson", "ken@example.invalid"), ("Barbara Liskov", "barbara@example.invalid"),
           ("Edsger Dijkstra", "edsger@example.invalid")]
RELEASE_EVERY = 3000
GROUPS = 4
MERGE_EVERY = 40
LATE = 5
LATE_WINDOW = 2000
T0 = 1600000000


class Stream:
    def __init__(self, out):
        self.out = out
        self.mark = 0

    def w(self, s):
        self.out.write(s.encode())

    def data(self, s):
        b = s.encode()
        self.out.write(b"data %d\n" % len(b))
        self.out.write(b)
        self.out.write(b"\n")

    def commit(self, ref, when, author, message, parents, files):
        self.mark += 1
        name, email = author
        self.w(f"commit {ref}\nmark :{self.mark}\n")
        self.w(f"author {name} <{email}> {when} +0000\n")
        self.w(f"committer {name} <{email}> {when} +0000\n")
        self.data(message)
        if parents:
            self.w(f"from :{parents[0]}\n")
            for p in parents[1:]:
                self.w(f"merge :{p}\n")
        for path, content in sorted(files.items()):
            self.w(f"M 100644 inline {path}\n")
            self.data(content)
        self.w("\n")
        return self.mark

    def tag(self, name, mark):
        self.w(f"reset refs/tags/{name}\nfrom :{mark}\n\n")


def cargo_toml(name, version):
    return f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n'


def lib_rs(name, n):
    return (f"//! {name}\n\n/// Revision {n}.\npub fn revision() -> u64 {{\n    {n}\n}}\n\n"
            f"#[cfg(test)]\nmod tests {{\n    #[test]\n    fn it_works() {{\n"
            f"        assert_eq!(super::revision(), {n});\n    }}\n}}\n")


def generate(out, n_commits, seed):
    rng = random.Random(seed)
    s = Stream(out)
    crates = [p + x for p in PREFIXES for x in SUFFIXES]
    versions = {c: [0, 1, 0] for c in crates}
    newest = {}
    # Zipf-like heat: a handful of crates take most of the changes.
    weights = [1.0 / (i + 8) for i in range(len(crates))]
    live = list(crates)
    live_weights = list(weights)
    late_at = {n_commits - LATE_WINDOW + i * (LATE_WINDOW // (LATE + 1)): f"late-{i}" for i in range(LATE)}

    files = {"Cargo.toml": '[workspace]\nmembers = ["crates/*"]\nresolver = "2"\n'}
    for c in crates:
        files[f"crates/{c}/Cargo.toml"] = cargo_toml(c, "0.1.0")
        files[f"crates/{c}/src/lib.rs"] = lib_rs(c, 0)
    tip = s.commit("refs/heads/main", T0, AUTHORS[0], "chore: initial workspace\n", [], files)
    count = 1
    clock = T0

    def change(n, avoid=()):
        k = rng.choices([1, 2, 3], [0.6, 0.3, 0.1])[0]
        picked = []
        while len(picked) < k:
            c = rng.choices(live, live_weights)[0]
            if c not in picked and c not in avoid:
                picked.append(c)
        f = {}
        for c in picked:
            if rng.random() < 0.1:
                f[f"crates/{c}/src/m{n}.rs"] = f"pub const N: u64 = {n};\n"
            else:
                f[f"crates/{c}/src/lib.rs"] = lib_rs(c, n)
        t = rng.choice(TYPES)
        scope = f"({picked[0]})" if len(picked) == 1 else ""
        bang = "!" if rng.random() < 0.01 else ""
        msg = f"{t}{scope}{bang}: change {n} in {', '.join(picked)}\n"
        if rng.random() < 0.3:
            msg += f"\nLonger explanation of change {n}.\n"
        return picked, f, msg

    release_no = 0
    pending = sorted(late_at.items())
    while count < n_commits:
        if pending and count >= pending[0][0]:
            _, name = pending.pop(0)
            clock += 60
            tip = s.commit("refs/heads/main", clock, rng.choice(AUTHORS), f"feat({name}): new crate\n", [tip],
                           {f"crates/{name}/Cargo.toml": cargo_toml(name, "0.1.0"),
                            f"crates/{name}/src/lib.rs": lib_rs(name, count)})
            live.append(name)
            live_weights.append(0.2)
            count += 1
            continue
        if count % MERGE_EVERY == 0 and count + 4 <= n_commits:
            # A topic branch of two commits, one commit on main, then the merge.
            topic = tip
            topic_files = {}
            topic_crates = set()
            for _ in range(2):
                clock += 60
                picked, f, msg = change(count)
                topic_crates.update(picked)
                topic_files.update(f)
                topic = s.commit("refs/heads/topic", clock, rng.choice(AUTHORS), msg, [topic], f)
                count += 1
            clock += 60
            _, f, msg = change(count, avoid=topic_crates)
            tip = s.commit("refs/heads/main", clock, rng.choice(AUTHORS), msg, [tip], f)
            count += 1
            clock += 60
            tip = s.commit("refs/heads/main", clock, rng.choice(AUTHORS), f"Merge branch 'topic-{count}'\n",
                           [tip, topic], topic_files)
            count += 1
        else:
            clock += 60
            _, f, msg = change(count)
            tip = s.commit("refs/heads/main", clock, rng.choice(AUTHORS), msg, [tip], f)
            count += 1
        if count % RELEASE_EVERY == 0:
            release_no += 1
            group = release_no % GROUPS
            for i, c in enumerate(crates):
                if i % GROUPS == group:
                    v = versions[c]
                    v[2] += 1
                    name = f"{c}-v{v[0]}.{v[1]}.{v[2]}"
                    s.tag(name, tip)
                    newest[c] = name
    return crates + [late_at[a] for a in sorted(late_at)], newest, count


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=100000)
    ap.add_argument("--out", default=os.path.join(here, "work", "ws"))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if os.path.exists(args.out):
        sys.exit(f"{args.out} exists; remove it first")
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1")
    subprocess.run(["git", "init", "-q", "-b", "main", args.out], check=True, env=env)
    fi = subprocess.Popen(["git", "-C", args.out, "fast-import", "--quiet"], stdin=subprocess.PIPE, env=env)
    crates, newest, count = generate(fi.stdin, args.commits, args.seed)
    fi.stdin.close()
    if fi.wait() != 0:
        sys.exit("git fast-import failed")
    for cmd in (["branch", "-q", "-D", "topic"], ["repack", "-adq"], ["commit-graph", "write", "--reachable"], ["reset", "-q", "--hard"]):
        subprocess.run(["git", "-C", args.out] + cmd, check=True, env=env)
    with open(os.path.join(os.path.dirname(args.out), "crates.tsv"), "w") as f:
        for c in crates:
            f.write(f"{c}\tcrates/{c}\t{newest.get(c, '-')}\n")
    print(f"{args.out}: {count} commits, {len(crates)} crates, {len(newest)} released")


if __name__ == "__main__":
    main()
