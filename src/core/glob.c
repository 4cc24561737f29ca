/*
 * Gitignore-style patterns, as cargo's include and exclude read them (see
 * glob.h). A pattern is kept as its path components; matching is a
 * backtracking walk over components, where a "**" component stands for any
 * number of path components and every other one is matched within a single
 * component (so '*' never crosses a '/').
 */
#include "core/glob.h"

#include <stdlib.h>
#include <string.h>

static char *dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static void pattern_free(struct glob_pattern *p)
{
	for (size_t i = 0; i < p->ncomps; i++)
		free(p->comps[i]);
	free(p->comps);
	p->comps = NULL;
	p->ncomps = 0;
}

/* Split TEXT at unescaped '/' into P's components. */
static int split(struct glob_pattern *p, const char *text, size_t len)
{
	size_t n = 1;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\\' && i + 1 < len)
			i++;
		else if (text[i] == '/')
			n++;
	}
	p->comps = calloc(n, sizeof *p->comps);
	if (!p->comps)
		return -1;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && text[i] == '\\' && i + 1 < len) {
			i++;
			continue;
		}
		if (i == len || text[i] == '/') {
			p->comps[p->ncomps] = dup_n(text + start, i - start);
			if (!p->comps[p->ncomps])
				return -1;
			p->ncomps++;
			start = i + 1;
		}
	}
	return 0;
}

static int add_pattern(struct glob_set *s, const char *text, size_t len, int whitelist, int dir_only)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct glob_pattern *pats = realloc(s->pats, cap * sizeof *pats);
		if (!pats)
			return -1;
		s->pats = pats;
		s->cap = cap;
	}
	struct glob_pattern *p = &s->pats[s->n];
	memset(p, 0, sizeof *p);
	p->whitelist = whitelist;
	p->dir_only = dir_only;
	if (split(p, text, len) < 0) {
		pattern_free(p);
		return -1;
	}
	s->n++;
	s->has_whitelist |= whitelist;
	return 0;
}

/* The first unescaped '{' and its matching '}' (no nesting, as globset). */
static int find_alternates(const char *t, size_t len, size_t *open, size_t *close)
{
	for (size_t i = 0; i < len; i++) {
		if (t[i] == '\\') {
			i++;
			continue;
		}
		if (t[i] == '[') { /* a class is not an alternation */
			size_t j = i + 1;
			if (j < len && (t[j] == '!' || t[j] == '^'))
				j++;
			if (j < len && t[j] == ']')
				j++;
			while (j < len && t[j] != ']')
				j++;
			i = j;
			continue;
		}
		if (t[i] == '{') {
			for (size_t j = i + 1; j < len; j++) {
				if (t[j] == '\\') {
					j++;
					continue;
				}
				if (t[j] == '}') {
					*open = i;
					*close = j;
					return 1;
				}
			}
			return 0;
		}
	}
	return 0;
}

/* Add TEXT with every {a,b} alternation expanded, in order. */
static int add_expanded(struct glob_set *s, const char *t, size_t len, int whitelist, int dir_only)
{
	size_t open, close;
	if (!find_alternates(t, len, &open, &close))
		return add_pattern(s, t, len, whitelist, dir_only);
	size_t start = open + 1;
	for (size_t i = open + 1; i <= close; i++) {
		if (i < close && t[i] == '\\') {
			i++;
			continue;
		}
		if (i == close || t[i] == ',') {
			size_t n = open + (i - start) + (len - close - 1);
			char *alt = malloc(n + 1);
			if (!alt)
				return -1;
			memcpy(alt, t, open);
			memcpy(alt + open, t + start, i - start);
			memcpy(alt + open + (i - start), t + close + 1, len - close - 1);
			int rc = add_expanded(s, alt, n, whitelist, dir_only);
			free(alt);
			if (rc < 0)
				return -1;
			start = i + 1;
		}
	}
	return 0;
}

int glob_set_add(struct glob_set *s, const char *line, size_t len)
{
	if (len > 0 && line[0] == '#')
		return 0;
	/* trailing spaces go, unless the line ends with an escaped one */
	if (!(len >= 2 && line[len - 1] == ' ' && line[len - 2] == '\\'))
		while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\n' ||
		                   line[len - 1] == '\r'))
			len--;
	if (len == 0)
		return 0;
	int whitelist = 0, dir_only = 0, anchored = 0;
	if (len >= 2 && line[0] == '\\' && (line[1] == '!' || line[1] == '#')) {
		line++, len--;
	} else {
		if (line[0] == '!')
			whitelist = 1, line++, len--;
		if (len > 0 && line[0] == '/')
			anchored = 1, line++, len--;
	}
	if (len > 0 && line[len - 1] == '/') {
		dir_only = 1;
		len--;
		if (len > 0 && line[len - 1] == '\\')
			len--;
	}
	int has_slash = memchr(line, '/', len) != NULL;
	int doublestar_prefix = len >= 3 && memcmp(line, "**/", 3) == 0;
	int doublestar_suffix = len >= 3 && memcmp(line + len - 3, "/**", 3) == 0;
	size_t n = len + (!anchored && !has_slash && !doublestar_prefix ? 3 : 0) + (doublestar_suffix ? 2 : 0);
	char *text = malloc(n + 1);
	if (!text)
		return -1;
	size_t o = 0;
	if (!anchored && !has_slash && !doublestar_prefix) {
		memcpy(text, "**/", 3);
		o = 3;
	}
	memcpy(text + o, line, len);
	o += len;
	if (doublestar_suffix) { /* everything inside, not the directory itself */
		memcpy(text + o, "/*", 2);
		o += 2;
	}
	int rc = add_expanded(s, text, o, whitelist, dir_only);
	free(text);
	return rc;
}

/* A class at P (just past '['): whether C is in it; *end is past its ']'. */
static int class_match(const char *p, const char **end, char c)
{
	int negate = 0, hit = 0;
	if (*p == '!' || *p == '^')
		negate = 1, p++;
	int first = 1;
	while (*p && (first || *p != ']')) {
		first = 0;
		char lo = *p;
		if (lo == '\\' && p[1])
			lo = *++p;
		p++;
		char hi = lo;
		if (*p == '-' && p[1] && p[1] != ']') {
			hi = p[1];
			if (hi == '\\' && p[2])
				hi = p[2], p++;
			p += 2;
		}
		if ((unsigned char)c >= (unsigned char)lo && (unsigned char)c <= (unsigned char)hi)
			hit = 1;
	}
	if (*p != ']') /* no closing bracket: not a class, '[' is itself */
		return -1;
	*end = p + 1;
	return hit != negate;
}

/* One pattern component against one path component (S, N bytes). */
static int comp_match(const char *p, const char *s, size_t n)
{
	while (*p) {
		if (*p == '*') {
			while (*p == '*')
				p++;
			if (!*p)
				return 1;
			for (size_t i = 0; i <= n; i++)
				if (comp_match(p, s + i, n - i))
					return 1;
			return 0;
		}
		if (n == 0)
			return 0;
		if (*p == '?') {
			p++;
		} else if (*p == '[') {
			const char *end;
			int r = class_match(p + 1, &end, *s);
			if (r < 0) {
				if (*s != '[')
					return 0;
				p++;
			} else if (!r) {
				return 0;
			} else {
				p = end;
			}
		} else {
			if (*p == '\\' && p[1])
				p++;
			if (*p != *s)
				return 0;
			p++;
		}
		s++;
		n--;
	}
	return n == 0;
}

struct comp {
	const char *s;
	size_t n;
};

static int match_comps(char *const *pc, size_t np, const struct comp *sc, size_t ns)
{
	if (np == 0)
		return ns == 0;
	if (strcmp(pc[0], "**") == 0) {
		for (size_t k = 0; k <= ns; k++)
			if (match_comps(pc + 1, np - 1, sc + k, ns - k))
				return 1;
		return 0;
	}
	return ns > 0 && comp_match(pc[0], sc[0].s, sc[0].n) && match_comps(pc + 1, np - 1, sc + 1, ns - 1);
}

enum glob_match glob_match_one(const struct glob_set *s, const char *path, size_t len, int is_dir)
{
	struct comp stack[64], *sc = stack;
	size_t ns = 1;
	for (size_t i = 0; i < len; i++)
		ns += path[i] == '/';
	if (ns > sizeof stack / sizeof *stack) {
		sc = malloc(ns * sizeof *sc);
		if (!sc)
			return GLOB_NONE;
	}
	size_t k = 0, start = 0;
	for (size_t i = 0; i <= len; i++)
		if (i == len || path[i] == '/') {
			sc[k].s = path + start;
			sc[k++].n = i - start;
			start = i + 1;
		}
	enum glob_match m = GLOB_NONE;
	for (size_t i = s->n; i-- > 0;) {
		const struct glob_pattern *p = &s->pats[i];
		if (p->dir_only && !is_dir)
			continue;
		if (match_comps(p->comps, p->ncomps, sc, ns)) {
			m = p->whitelist ? GLOB_WHITELIST : GLOB_IGNORE;
			break;
		}
	}
	if (sc != stack)
		free(sc);
	return m;
}

enum glob_match glob_match_path(const struct glob_set *s, const char *path, size_t len, int is_dir)
{
	enum glob_match m = glob_match_one(s, path, len, is_dir);
	while (m == GLOB_NONE) {
		while (len > 0 && path[len - 1] != '/')
			len--;
		if (len == 0)
			break;
		len--; /* the parent, without its '/' */
		m = glob_match_one(s, path, len, 1);
	}
	return m;
}

void glob_set_free(struct glob_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		pattern_free(&s->pats[i]);
	free(s->pats);
	memset(s, 0, sizeof *s);
}
