"""Semantic versions as Cargo reads them: parse, order, and the level between two."""
import re

_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                 r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")


class Version:
    __slots__ = ("major", "minor", "patch", "pre", "build", "text")

    def __init__(self, major, minor, patch, pre, build, text):
        self.major, self.minor, self.patch = major, minor, patch
        self.pre, self.build, self.text = pre, build, text

    def _key(self):
        # A pre-release sorts below its release; numeric identifiers below alphanumeric ones.
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other):
        return self._key() < other._key()

    def __eq__(self, other):
        return isinstance(other, Version) and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __str__(self):
        return self.text

    @property
    def release(self):
        """MAJOR.MINOR.PATCH without pre-release or build metadata."""
        return "%d.%d.%d" % (self.major, self.minor, self.patch)


def parse(text):
    m = _RE.match(text or "")
    if not m:
        return None
    pre = tuple(m.group(4).split(".")) if m.group(4) else ()
    build = m.group(5) or ""
    return Version(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre, build, text)


def level(old, new):
    """The bump from OLD to NEW as Cargo's compatibility sees it: "major" when
    the new version is incompatible (0.x: a minor step is incompatible),
    "minor" for a compatible feature step, "patch" otherwise; "none" when equal,
    "down" when NEW is lower."""
    if old is None or new is None:
        return "?"
    if new == old:
        return "none"
    if new < old:
        return "down"
    if new.major != old.major:
        return "major"
    if new.minor != old.minor:
        return "major" if old.major == 0 else "minor"
    if new.patch != old.patch:
        return "major" if old.major == 0 and old.minor == 0 else "patch"
    return "patch"  # pre-release steps and graduations

