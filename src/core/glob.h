#ifndef CDP_GLOB_H
#define CDP_GLOB_H
#include <stddef.h>

/*
 * Gitignore-style patterns, as cargo reads a manifest's `include` and
 * `exclude` (through the ignore crate's GitignoreBuilder, rooted at the
 * package directory):
 *
 *   - a line starting with '#' is a comment; trailing spaces are dropped
 *     unless escaped ("\ "); empty lines are nothing;
 *   - '!' makes a pattern a whitelist (it un-ignores), "\!" and "\#" are
 *     literal;
 *   - a leading '/' anchors the pattern at the package root; a pattern with
 *     no '/' at all matches a name at any depth (it gets a "** /" prefix);
 *   - a trailing '/' matches directories only;
 *   - "x/ **" matches everything inside x but not x itself;
 *   - '*' and '?' match within one path component, "**" as a whole component
 *     matches any number of them, [abc], [a-z], [!a-z] and [^a-z] are
 *     classes, {a,b} alternatives, and '\' escapes the next character.
 *
 * glob_match_path decides a path the way cargo's
 * matched_path_or_any_parents does: the path itself first (the last
 * matching pattern wins), then each parent directory, nearest first; the
 * first level where some pattern matches decides.
 */

enum glob_match {
	GLOB_NONE = 0,
	GLOB_IGNORE,    /* matched by a pattern */
	GLOB_WHITELIST, /* matched by a '!' pattern */
};

struct glob_pattern {
	char **comps; /* path components of the pattern, unescaped later */
	size_t ncomps;
	int whitelist, dir_only;
};

struct glob_set {
	struct glob_pattern *pats;
	size_t n, cap;
	int has_whitelist;
};

/* Add one line (LEN bytes) to S. 0, or -1 when out of memory. */
int glob_set_add(struct glob_set *s, const char *line, size_t len);

/* The decision for PATH (relative, '/'-separated, LEN bytes) itself. */
enum glob_match glob_match_one(const struct glob_set *s, const char *path, size_t len, int is_dir);

/* The decision for PATH or, when nothing matches it, its nearest matching parent. */
enum glob_match glob_match_path(const struct glob_set *s, const char *path, size_t len, int is_dir);

void glob_set_free(struct glob_set *s);

#endif
