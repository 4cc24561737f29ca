#!/usr/bin/env python3
"""Checks of the harness on a scripted history whose releases are known.

    python3 bench/realworld/test_realworld.py      # needs git; the last test needs build/cdp and cargo

The fixture is built by script (never committed): a workspace with one crate
per tag convention, a shared version released by a merged release PR, a tag
set on a commit after the bump, a crate released by manifest bumps only, a
squash-merged release whose tag stays off main, a tag that disagrees with its
manifest, a publish = false crate that shares the version, and crates first
released some commits after they were created (or moved) at their version.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import events  # noqa: E402
import gitread  # noqa: E402
import measure  # noqa: E402
import realworld  # noqa: E402
import workspace  # noqa: E402

ROOT_MANIFEST = """[workspace]
members = ["crates/*"]
resolver = "2"

[workspace.package]
version = "%s"
"""


def manifest(name, version=None, publish=True, deps=""):
    v = 'version.workspace = true' if version is None else 'version = "%s"' % version
    return '[package]\nname = "%s"\n%s\nedition = "2021"\n%s%s' % (
        name, v, "" if publish else "publish = false\n", deps)


class Fixture:
    def __init__(self, dir):
        self.dir = dir
        self.t = 1700000000
        self.git("init", "-q", "-b", "main")

    def git(self, *args):
        env = dict(gitread.clean_env(), GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com",
                   GIT_AUTHOR_DATE="%d +0000" % self.t, GIT_COMMITTER_DATE="%d +0000" % self.t)
        out = subprocess.run(["git", "-C", self.dir, *args], capture_output=True, env=env, check=True)
        return out.stdout.decode().strip()

    def write(self, path, text):
        full = os.path.join(self.dir, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)

    def commit(self, message, files=None):
        for path, text in (files or {}).items():
            self.write(path, text)
        self.t += 60
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def crate(self, name, version=None, publish=True, deps=""):
        return {"crates/%s/Cargo.toml" % name: manifest(name, version, publish, deps),
                "crates/%s/src/lib.rs" % name: "//! %s\n" % name}


def build(dir):
    """The fixture; returns {label: commit} of the commits the tests name."""
    f = Fixture(dir)
    c = {}
    files = {"Cargo.toml": ROOT_MANIFEST % "0.1.0", ".gitignore": "target/\n"}
    files.update(f.crate("alpha", "0.1.0"))
    files.update(f.crate("beta"))
    files.update(f.crate("delta"))
    files.update(f.crate("zeta", publish=False))
    files.update(f.crate("gamma", "1.0.0"))
    files.update(f.crate("epsilon", "0.1.0"))
    c["init"] = f.commit("chore: initial workspace", files)
    for tag in ("alpha-v0.1.0", "v0.1.0", "gamma@1.0.0"):
        f.git("tag", tag)
    # alpha: a feature, then release-plz's release commit with its tag.
    c["alpha-feat"] = f.commit("feat: alpha learns a trick", {"crates/alpha/src/lib.rs": "//! alpha\npub fn t() {}\n"})
    c["alpha-rel"] = f.commit("chore: release", f.crate("alpha", "0.2.0"))
    f.git("tag", "alpha-v0.2.0")
    # beta + delta share the workspace version: a release PR merged with a merge commit.
    f.git("checkout", "-q", "-b", "release-pr")
    f.commit("fix: beta mends", {"crates/beta/src/lib.rs": "//! beta\n// fixed\n"})
    c["pr-bump"] = f.commit("chore: release v0.2.0", {"Cargo.toml": ROOT_MANIFEST % "0.2.0"})
    f.git("checkout", "-q", "main")
    c["main-before-merge"] = f.commit("docs: a note", {"NOTES.md": "note\n"})
    f.t += 60
    f.git("merge", "-q", "--no-ff", "-m", "Merge pull request #2 from release-pr", "release-pr")
    c["merge"] = f.git("rev-parse", "HEAD")
    f.git("tag", "-a", "-m", "v0.2.0", "v0.2.0")
    # gamma: bumped, then tagged on a later commit (smart-release's subject).
    c["gamma-fix"] = f.commit("fix: gamma", {"crates/gamma/src/lib.rs": "//! gamma\n// fix\n"})
    c["gamma-bump"] = f.commit("Release gamma v1.1.0", f.crate("gamma", "1.1.0"))
    c["gamma-later"] = f.commit("docs: after the bump", {"README.md": "readme\n"})
    f.git("tag", "gamma@1.1.0")
    # epsilon: never tagged, released by raising its manifest version.
    c["eps-fix"] = f.commit("fix: epsilon", {"crates/epsilon/src/lib.rs": "//! epsilon\n// fix\n"})
    c["eps-bump"] = f.commit("chore: bump epsilon", f.crate("epsilon", "0.1.1"))
    # alpha again, squash-merged: the tag stays on the branch's commit.
    c["alpha-fix"] = f.commit("fix: alpha", {"crates/alpha/src/lib.rs": "//! alpha\npub fn t() {}\n// fix\n"})
    f.git("checkout", "-q", "-b", "squash")
    c["squash-branch"] = f.commit("chore: release", f.crate("alpha", "0.2.1"))
    f.git("tag", "alpha-v0.2.1")
    f.git("checkout", "-q", "main")
    c["squashed"] = f.commit("chore: release (#3)", f.crate("alpha", "0.2.1"))
    # A tag whose version no manifest has is not a release.
    f.git("tag", "alpha-v9.9.9")
    # theta is created at 0.3.0 and first released two commits later, with no bump:
    # the plan point is the release's parent, where theta exists.
    c["theta-new"] = f.commit("feat: theta, split out of alpha", f.crate("theta", "0.3.0"))
    c["theta-fix"] = f.commit("fix: theta", {"crates/theta/src/lib.rs": "//! theta\n// fix\n"})
    c["theta-rel"] = f.commit("chore: Release", {"crates/theta/CHANGELOG.md": "# 0.3.0\n"})
    f.git("tag", "theta-v0.3.0")
    # kappa is created at 0.4.0, moved to another directory at that version, then
    # first released: no bump either, so the plan point is again the release's parent.
    f.commit("feat: kappa", {"crates/kappa-old/Cargo.toml": manifest("kappa", "0.4.0"),
                             "crates/kappa-old/src/lib.rs": "//! kappa\n"})
    f.git("mv", "crates/kappa-old", "crates/kappa")
    f.commit("refactor: kappa's directory is its name")
    c["kappa-fix"] = f.commit("fix: kappa", {"crates/kappa/src/lib.rs": "//! kappa\n// fix\n"})
    c["kappa-rel"] = f.commit("chore: Release", {"crates/kappa/CHANGELOG.md": "# 0.4.0\n"})
    f.git("tag", "kappa-v0.4.0")
    return c


class FixtureCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.dir = os.path.join(cls.tmp.name, "ws")
        os.makedirs(cls.dir)
        cls.c = build(cls.dir)
        cls.repo = gitread.Repo(os.path.join(cls.dir, ".git"))
        cls.events, cls.notes = events.derive(cls.repo)
        cls.by_commit = {e.commit.oid: e for e in cls.events}

    @classmethod
    def tearDownClass(cls):
        cls.repo.close()
        cls.tmp.cleanup()

    def released(self, label):
        ev = self.by_commit[self.c[label]]
        return {k: r.version for k, r in ev.releases.items()}, ev


class Events(FixtureCase):
    def test_first_tags_are_one_event(self):
        rel, ev = self.released("init")
        # v0.1.0 is the shared version's tag: beta and delta, not zeta (publish = false);
        # alpha and gamma have tags of their own.
        self.assertEqual(rel, {"alpha": "0.1.0", "beta": "0.1.0", "delta": "0.1.0", "gamma": "1.0.0"})
        self.assertIsNone(ev.plan_at)  # the first commit: nothing to plan from

    def test_release_commit_plans_at_its_parent(self):
        rel, ev = self.released("alpha-rel")
        self.assertEqual(rel, {"alpha": "0.2.0"})
        self.assertEqual(ev.plan_at, self.c["alpha-feat"])
        self.assertEqual(ev.tool, "release-plz")

    def test_merged_release_pr_plans_on_the_main_side(self):
        rel, ev = self.released("merge")
        self.assertEqual(rel, {"beta": "0.2.0", "delta": "0.2.0"})
        self.assertEqual(ev.bumped_at, self.c["merge"])
        self.assertEqual(ev.plan_at, self.c["main-before-merge"])

    def test_tag_after_the_bump_plans_before_the_bump(self):
        rel, ev = self.released("gamma-later")
        self.assertEqual(rel, {"gamma": "1.1.0"})
        self.assertEqual(ev.bumped_at, self.c["gamma-bump"])
        self.assertEqual(ev.plan_at, self.c["gamma-fix"])
        self.assertEqual(ev.tool, "manual")  # the tagged commit's subject is no tool's

    def test_untagged_crate_released_by_its_manifest_bump(self):
        rel, ev = self.released("eps-bump")
        self.assertEqual(rel, {"epsilon": "0.1.1"})
        self.assertEqual(ev.releases["epsilon"].source, "manifest bump")
        self.assertEqual(ev.plan_at, self.c["eps-fix"])
        self.assertIn("epsilon", self.notes["untagged_crates"])

    def test_squash_merged_release_is_its_tagged_commit(self):
        rel, ev = self.released("squash-branch")
        self.assertEqual(rel, {"alpha": "0.2.1"})
        self.assertEqual(ev.plan_at, self.c["alpha-fix"])
        self.assertNotIn(self.c["squashed"], self.by_commit)

    def test_tag_disagreeing_with_its_manifest_is_unread(self):
        self.assertTrue(any("alpha-v9.9.9" in why for why in self.notes["unread"]), self.notes["unread"])
        self.assertEqual(len(self.events), 8)

    def test_first_release_of_a_crate_born_at_its_version_plans_at_the_parent(self):
        rel, ev = self.released("theta-rel")
        self.assertEqual(rel, {"theta": "0.3.0"})
        self.assertEqual(ev.plan_at, self.c["theta-fix"])

    def test_first_release_of_a_crate_moved_at_its_version_plans_at_the_parent(self):
        rel, ev = self.released("kappa-rel")
        self.assertEqual(rel, {"kappa": "0.4.0"})
        self.assertEqual(ev.plan_at, self.c["kappa-fix"])

    def test_tags_before_a_release_leave_out_its_own_and_later_ones(self):
        ev = self.by_commit[self.c["merge"]]
        visible = set(measure.tags_before(self.repo.tags(), ev.time, self.repo))
        self.assertEqual(visible, {"alpha-v0.1.0", "v0.1.0", "gamma@1.0.0", "alpha-v0.2.0"})

    def test_sample_keeps_both_ends(self):
        self.assertEqual(events.sample(list(range(10)), 4), [0, 3, 6, 9])
        self.assertEqual(events.sample(list(range(3)), 4), [0, 1, 2])


class Tags(unittest.TestCase):
    def test_conventions(self):
        crates = {}
        for name, version in (("foo", "1.2.0"), ("foo-bar", "0.3.0"), ("foo_baz", "2.0.0+spec-1")):
            crates[name] = workspace.Crate(name, version, True, "crates/" + name, False, {})
        ws = workspace.Workspace(crates, None)
        self.assertEqual(events.read_tag("foo-v1.2.0", ws), ("crate", [("foo", "1.2.0")]))
        self.assertEqual(events.read_tag("foo-bar-0.3.0", ws), ("crate", [("foo-bar", "0.3.0")]))
        self.assertEqual(events.read_tag("foo-bar@0.3.0", ws), ("crate", [("foo-bar", "0.3.0")]))
        self.assertEqual(events.read_tag("foo/v1.2.0", ws), ("crate", [("foo", "1.2.0")]))
        self.assertEqual(events.read_tag("foo-baz-v2.0.0", ws), ("crate", [("foo_baz", "2.0.0+spec-1")]))
        self.assertEqual(events.read_tag("v1.2.0", ws), ("shared", [("foo", "1.2.0")]))
        self.assertEqual(events.read_tag("0.3.0", ws), ("shared", [("foo-bar", "0.3.0")]))
        self.assertEqual(events.read_tag("foo-v1.3.0", ws)[0], "unread")
        self.assertIsNone(events.read_tag("nightly", ws))

    def test_tool_subjects(self):
        self.assertTrue(events.SMART_RELEASE.match("Release gix-date v0.5.0, gix v0.60.0, safety bump 3 crates"))
        self.assertFalse(events.SMART_RELEASE.match("Release tokio v0.1.20, tokio-timer v0.2.21, and remove it"))
        self.assertTrue(events.RELEASE_PLZ.match("chore: release (#2897)"))
        self.assertTrue(events.RELEASE_PLZ.match("chore(release_plz_core): release v0.2.3 (#75)"))
        self.assertFalse(events.RELEASE_PLZ.match("chore: release tokio v1.0.2 (#3429)"))
        self.assertTrue(events.CARGO_RELEASE.match("(cargo-release) version 0.6.0"))


class Causes(FixtureCase):
    """classify() on plan entries of the shape `cdp plan --json` prints."""

    def cause(self, label, crate, **entry):
        ev = self.by_commit[self.c[label]]
        base = {"name": crate, "current": "0.1.0", "next": "0.1.0", "bump": "none", "publish": False,
                "publishable": True, "last_release": "0.1.0", "last_tag": "%s-v0.1.0" % crate, "commits": []}
        base.update(entry)
        plan = {"crates": [base], "tag_template": entry.pop("template", "{crate}-v{version}")}
        ws_p = workspace.at(self.repo, ev.plan_at)
        return measure.classify(measure.History(self.repo, self.events), ev, crate, ev.releases[crate].version,
                                base, plan, ws_p)[0]

    def test_unpublishable_crate_left_out_of_the_plan(self):
        # zeta is publish = false at P; were a release to publish it, cdp's plan has no entry for it
        ev = self.by_commit[self.c["theta-rel"]]
        ws_p = workspace.at(self.repo, ev.plan_at)
        cause = measure.classify(measure.History(self.repo, self.events), ev, "zeta", "0.1.0", None,
                                 {"crates": []}, ws_p)[0]
        self.assertEqual(cause, "publish = false at the plan commit")

    def test_last_release_behind_another_convention(self):
        self.assertEqual(self.cause("merge", "beta", last_release=None, last_tag=None, bump="initial",
                                    publish=True), "last release not found: tag convention v{version}")

    def test_last_release_lost_to_a_crate_less_template(self):
        self.assertEqual(self.cause("merge", "beta", last_release=None, last_tag=None, template="v{version}"),
                         "last release not found: a crate-less template gives the tag to another crate")

    def test_policy_levels(self):
        feat = [{"id": "1" * 40, "summary": "feat: a trick"}]
        self.assertEqual(self.cause("alpha-rel", "alpha", next="0.1.1", bump="patch", publish=True, commits=feat),
                         "policy: feat -> minor on 0.x")
        chore = [{"id": "2" * 40, "summary": "chore: tidy"}]
        self.assertEqual(self.cause("alpha-rel", "alpha", commits=chore), "policy: only non-releasing types")
        prose = [{"id": "3" * 40, "summary": "Tidy up"}]
        self.assertEqual(self.cause("alpha-rel", "alpha", commits=prose), "policy: non-conventional commits")

    def test_manifest_already_bumped(self):
        self.assertEqual(self.cause("alpha-rel", "alpha", current="0.2.0"), "manifest already bumped")

    def test_first_release(self):
        self.assertEqual(self.cause("eps-bump", "epsilon", last_release=None, last_tag=None, bump="initial",
                                    publish=True), "first tag: earlier versions released untagged")


@unittest.skipUnless(os.access(os.path.join(realworld.ROOT, "build", "cdp"), os.X_OK), "no build/cdp")
class Measure(FixtureCase):
    """The whole measure step on the fixture, with the real cdp and cargo. It
    checks the harness, not cdp's decisions, which other branches change."""

    def test_measure(self):
        out = os.path.join(self.tmp.name, "out")
        args = type("A", (), {"out": out, "fresh": True, "sample": 0})()
        cdp = os.path.join(realworld.ROOT, "build", "cdp")
        meta = realworld.measure_snapshot(args, self.dir, None, cdp, realworld.cdp_stamp(cdp), {})
        self.assertEqual((meta["events"], meta["sampled"]), (8, 7))  # the first commit has no P
        with open(os.path.join(out, "ws", "results.jsonl")) as f:
            rows = [json.loads(line) for line in f]
        # Only the third plan may be refused: a crate-less template on crates that
        # do not share a version, which cdp rejects by design.
        self.assertFalse([r for r in rows if "skipped" in r and not (
            r["policy"] == "template" and "has no {crate}" in r["skipped"])], rows)
        default = {(r["event"], r["crate"]): r for r in rows if r["policy"] == "default" and not r.get("extra")}
        for ev in self.events[1:]:
            for crate, rel in ev.releases.items():
                r = default[(ev.commit.oid, crate)]
                self.assertEqual(r["expected"], rel.version)
                self.assertEqual(r["same"], r["planned"] and r["next"] == rel.version)
                self.assertEqual("cause" in r, not r["same"], r)
        self.assertEqual(default[(self.c["alpha-rel"], "alpha")]["previous"], "0.1.0")
        self.assertEqual(default[(self.c["merge"], "beta")]["previous_tag"], "v0.1.0")
        self.assertIsNone(default[(self.c["eps-bump"], "epsilon")]["previous"])
        # theta, born at 0.3.0 before its release, is planned where it exists: a first release.
        theta = default[(self.c["theta-rel"], "theta")]
        self.assertEqual((theta["planned"], theta["next"]), (True, "0.3.0"), theta)
        # Alpha's commits since alpha-v0.1.0 are git log's.
        att = default[(self.c["alpha-rel"], "alpha")]["attribution"]
        self.assertEqual((att["git"], att["only_git"]), (1, 0))
        # beta's previous tag is v0.1.0: a third plan is given that template.
        templated = [r for r in rows if r["policy"] == "template" and r["event"] == self.c["merge"]]
        self.assertTrue(templated and all(r["template"] == "v{version}" for r in templated))
        for r in rows:
            if r.get("extra"):
                self.assertNotIn(r["crate"], self.by_commit[r["event"]].releases)
        self.assertIn("| **all** |", realworld.report.render(out))


if __name__ == "__main__":
    unittest.main()
