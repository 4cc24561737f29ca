"""Reading a snapshot with plain git: commits, trees, blobs and refs.

One long-lived `git cat-file --batch` process answers every object read, so
deriving the releases of a repository with thousands of tags costs a few
processes, not one per tag. Nothing here writes to the snapshot.
"""
import subprocess


class GitError(Exception):
    pass


def run(gitdir, *args, check=True):
    """Run `git --git-dir=GITDIR ARGS...`; return stdout as text."""
    # cwd: the harness's own directory may come and go (a rebase under a long run).
    proc = subprocess.run(["git", "--git-dir", gitdir, *args], capture_output=True,
                          env=clean_env(), check=False, cwd=gitdir)
    if check and proc.returncode != 0:
        raise GitError("git %s in %s failed: %s" % (" ".join(args[:3]), gitdir,
                                                    proc.stderr.decode(errors="replace").strip()))
    return proc.stdout.decode(errors="replace")


def clean_env():
    """The environment git and cdp run in: no user or system configuration
    (a snapshot is read as it is), and no CDP_* setting that would change the
    plan behind the harness's back. CDP_LUA_PATH stays: it is how a policy
    under work is measured without rebuilding cdp (and the report says so)."""
    import os
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CDP_", "GIT_")) or k == "CDP_LUA_PATH"}
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    env["GIT_CONFIG_GLOBAL"] = "/dev/null"
    env["LC_ALL"] = "C"
    return env


class Commit:
    __slots__ = ("oid", "parents", "time", "message")

    def __init__(self, oid, parents, time, message):
        self.oid, self.parents, self.time, self.message = oid, parents, time, message

    @property
    def subject(self):
        return self.message.split("\n", 1)[0].strip()


class Repo:
    """A git directory read through one cat-file process (and a few others)."""

    def __init__(self, gitdir):
        self.gitdir = gitdir
        self._batch = subprocess.Popen(
            ["git", "--git-dir", gitdir, "cat-file", "--batch"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, env=clean_env(), cwd=gitdir)
        self._commits = {}
        self._trees = {}

    def close(self):
        if self._batch:
            self._batch.stdin.close()
            self._batch.wait()
            self._batch.stdout.close()
            self._batch = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def read(self, spec):
        """(type, bytes) of the object SPEC names (an oid or REV:PATH), or (None, None)."""
        self._batch.stdin.write(spec.encode() + b"\n")
        self._batch.stdin.flush()
        header = self._batch.stdout.readline().decode()
        parts = header.split()
        if len(parts) != 3:  # "<spec> missing" or "ambiguous"
            return None, None
        size = int(parts[2])
        data = self._batch.stdout.read(size)
        self._batch.stdout.read(1)  # the newline after the object
        return parts[1], data

    def blob(self, spec):
        kind, data = self.read(spec)
        return data if kind == "blob" else None

    def commit(self, oid):
        c = self._commits.get(oid)
        if c is not None:
            return c
        kind, data = self.read(oid)
        if kind != "commit":
            return None
        head, _, message = data.partition(b"\n\n")
        parents, time = [], 0
        for line in head.split(b"\n"):
            if line.startswith(b"parent "):
                parents.append(line[7:].decode())
            elif line.startswith(b"committer "):
                time = int(line.rsplit(b" ", 2)[1])
        c = Commit(oid, parents, time, message.decode(errors="replace"))
        self._commits[oid] = c
        return c

    def files(self, oid, name):
        """{path: blob oid} of every file called NAME in commit OID's tree."""
        key = (oid, name)
        if key not in self._trees:
            out = run(self.gitdir, "ls-tree", "-r", "--full-tree", oid)
            found = {}
            for line in out.splitlines():
                meta, _, path = line.partition("\t")
                fields = meta.split()
                if len(fields) == 3 and fields[1] == "blob" and (path == name or path.endswith("/" + name)):
                    found[path] = fields[2]
            self._trees[key] = found
        return self._trees[key]

    def has_path(self, oid, path):
        kind, _ = self.read("%s:%s" % (oid, path))
        return kind is not None

    def tags(self):
        """[(name, ref oid, commit oid)] of the tags that point at commits."""
        out = run(self.gitdir, "for-each-ref", "refs/tags",
                  "--format=%(refname:strip=2)%09%(objectname)%09%(objecttype)%09%(*objectname)%09%(*objecttype)")
        tags = []
        for line in out.splitlines():
            name, oid, kind, peeled, peeled_kind = (line.split("\t") + [""] * 5)[:5]
            if kind == "commit":
                tags.append((name, oid, oid))
            elif kind == "tag" and peeled_kind == "commit":
                tags.append((name, oid, peeled))
        return tags

    def head(self):
        return run(self.gitdir, "rev-parse", "--verify", "HEAD^{commit}").strip()

    def is_ancestor(self, ancestor, descendant):
        proc = subprocess.run(["git", "--git-dir", self.gitdir, "merge-base", "--is-ancestor",
                               ancestor, descendant], capture_output=True, env=clean_env(), cwd=self.gitdir)
        return proc.returncode == 0
