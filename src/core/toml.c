/*
 * Lossless TOML: a recursive-descent reader written from the TOML 1.0
 * specification (plus the TOML 1.1 relaxations cargo accepts), which keeps
 * the text and the byte span of every value, and a span editor on top.
 *
 * Nodes live in one array and refer to each other by index, so the array can
 * grow while parsing; a hash on (parent, key) finds children in constant
 * time, so large tables cost no more than small ones.
 */
#include "core/toml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define MAX_DEPTH 128 /* arrays and inline tables nested deeper are refused */
#define MAX_NODES (UINT32_MAX - 1)

enum {
	F_IMPLICIT = 1 << 0, /* made by a header or dotted key, not defined by one */
	F_DOTTED = 1 << 1,   /* made or extended by dotted keys: no header may define it */
	F_HEADER = 1 << 2,   /* defined by [header] or [[header]] */
	F_AOT = 1 << 3,      /* an array made by [[header]] */
};

struct toml_node {
	const toml_doc *doc;
	uint32_t parent;
	uint32_t first, last, next; /* children while parsing */
	uint32_t count;
	uint32_t kids;  /* index into doc->kids of the first child, after parsing */
	uint32_t owner; /* the inline table this node was made in, or NONE */
	uint8_t type;
	uint8_t style; /* toml_str_style or toml_table_kind */
	uint8_t flags;
	size_t key, key_len; /* decoded key in the pool; key == SIZE_MAX for none */
	size_t str, str_len; /* decoded string in the pool */
	size_t start, end;   /* value token; start == end when there is none */
	size_t kstart, kend; /* key token */
	union {
		int64_t i;
		double f;
		bool b;
	} v;
};

struct toml_doc {
	char *text;
	size_t len;
	toml_node *nodes;
	size_t n_nodes, cap_nodes;
	uint32_t *kids;
	char *pool;
	size_t pool_len, pool_cap;
	uint32_t *hash; /* node indices of keyed children; NONE marks a free slot */
	size_t hash_cap, hash_used;
};

struct seg {
	size_t key, len;   /* decoded, in the pool */
	size_t start, end; /* in the text */
};

struct parser {
	toml_doc *doc;
	const char *s;
	size_t len, pos;
	toml_error *err;
	bool failed;
	int depth;
	uint32_t cur; /* the table key/value pairs go to */
	struct seg *segs;
	size_t n_segs, cap_segs;
};

#define NODE(p, i) (&(p)->doc->nodes[(i)])

/* ---- errors ---------------------------------------------------------- */

static void locate(const char *s, size_t len, size_t offset, unsigned *line, unsigned *col)
{
	unsigned l = 1, c = 1;
	if (offset > len)
		offset = len;
	for (size_t i = 0; i < offset; i++) {
		if (s[i] == '\n') {
			l++;
			c = 1;
		} else if (((unsigned char)s[i] & 0xC0) != 0x80) {
			c++;
		}
	}
	*line = l;
	*col = c;
}

static void set_error(toml_error *err, const char *s, size_t len, size_t at, const char *fmt,
                      va_list ap)
{
	if (!err)
		return;
	err->offset = at;
	locate(s, len, at, &err->line, &err->column);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
}

static int fail(struct parser *p, size_t at, const char *fmt, ...)
{
	if (p->failed)
		return -1;
	p->failed = true;
	va_list ap;
	va_start(ap, fmt);
	set_error(p->err, p->s, p->len, at, fmt, ap);
	va_end(ap);
	return -1;
}

static int oom(struct parser *p)
{
	return fail(p, p->pos, "out of memory");
}

/* A short printable rendering of text[start, end) for messages. */
static const char *excerpt(struct parser *p, size_t start, size_t end, char buf[64])
{
	size_t n = 0;
	for (size_t i = start; i < end && n < 60; i++) {
		unsigned char c = (unsigned char)p->s[i];
		buf[n++] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
	}
	if (end - start > 60 && n >= 3)
		memcpy(buf + n - 3, "...", 3);
	buf[n] = '\0';
	return buf;
}

/* ---- storage --------------------------------------------------------- */

static int pool_reserve(struct parser *p, size_t more)
{
	toml_doc *d = p->doc;
	if (d->pool_cap - d->pool_len >= more)
		return 0;
	size_t cap = d->pool_cap ? d->pool_cap : 256;
	while (cap - d->pool_len < more) {
		if (cap > SIZE_MAX / 2)
			return oom(p);
		cap *= 2;
	}
	char *pool = realloc(d->pool, cap);
	if (!pool)
		return oom(p);
	d->pool = pool;
	d->pool_cap = cap;
	return 0;
}

static int pool_put(struct parser *p, const char *b, size_t n)
{
	if (pool_reserve(p, n) < 0)
		return -1;
	memcpy(p->doc->pool + p->doc->pool_len, b, n);
	p->doc->pool_len += n;
	return 0;
}

static uint64_t hash_key(uint32_t parent, const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ULL ^ (parent * 0x9E3779B97F4A7C15ULL);
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

static uint32_t hash_find(const toml_doc *d, uint32_t parent, const char *key, size_t len)
{
	if (!d->hash_cap)
		return NONE;
	size_t mask = d->hash_cap - 1;
	for (size_t i = hash_key(parent, key, len) & mask;; i = (i + 1) & mask) {
		uint32_t n = d->hash[i];
		if (n == NONE)
			return NONE;
		const toml_node *x = &d->nodes[n];
		if (x->parent == parent && x->key_len == len && memcmp(d->pool + x->key, key, len) == 0)
			return n;
	}
}

static void hash_place(toml_doc *d, uint32_t n)
{
	const toml_node *x = &d->nodes[n];
	size_t mask = d->hash_cap - 1;
	size_t i = hash_key(x->parent, d->pool + x->key, x->key_len) & mask;
	while (d->hash[i] != NONE)
		i = (i + 1) & mask;
	d->hash[i] = n;
}

static int hash_insert(struct parser *p, uint32_t n)
{
	toml_doc *d = p->doc;
	if ((d->hash_used + 1) * 2 > d->hash_cap) {
		size_t cap = d->hash_cap ? d->hash_cap * 2 : 64;
		uint32_t *old = d->hash;
		size_t old_cap = d->hash_cap;
		d->hash = malloc(cap * sizeof *d->hash);
		if (!d->hash) {
			d->hash = old;
			return oom(p);
		}
		memset(d->hash, 0xFF, cap * sizeof *d->hash);
		d->hash_cap = cap;
		for (size_t i = 0; i < old_cap; i++)
			if (old[i] != NONE)
				hash_place(d, old[i]);
		free(old);
	}
	hash_place(d, n);
	d->hash_used++;
	return 0;
}

/* Append a node of TYPE under PARENT (NONE for the root); SEG names it, or NULL. */
static uint32_t new_node(struct parser *p, uint32_t parent, toml_type type, const struct seg *seg,
                         uint32_t owner)
{
	toml_doc *d = p->doc;
	if (d->n_nodes == d->cap_nodes) {
		size_t cap = d->cap_nodes ? d->cap_nodes * 2 : 64;
		if (cap > MAX_NODES) {
			fail(p, p->pos, "document too large");
			return NONE;
		}
		toml_node *nodes = realloc(d->nodes, cap * sizeof *nodes);
		if (!nodes) {
			oom(p);
			return NONE;
		}
		d->nodes = nodes;
		d->cap_nodes = cap;
	}
	uint32_t n = (uint32_t)d->n_nodes++;
	toml_node *x = &d->nodes[n];
	memset(x, 0, sizeof *x);
	x->doc = d;
	x->parent = parent;
	x->first = x->last = x->next = NONE;
	x->owner = owner;
	x->type = (uint8_t)type;
	x->key = SIZE_MAX;
	if (seg) {
		x->key = seg->key;
		x->key_len = seg->len;
		x->kstart = seg->start;
		x->kend = seg->end;
	}
	if (parent != NONE) {
		toml_node *up = &d->nodes[parent];
		if (up->last == NONE)
			up->first = n;
		else
			d->nodes[up->last].next = n;
		up->last = n;
		up->count++;
		if (seg && hash_insert(p, n) < 0)
			return NONE;
	}
	return n;
}

/* ---- characters ------------------------------------------------------ */

static int peek_at(const struct parser *p, size_t at)
{
	return at < p->len ? (unsigned char)p->s[at] : -1;
}

static int peek(const struct parser *p)
{
	return peek_at(p, p->pos);
}

static bool starts(const struct parser *p, const char *lit)
{
	size_t n = strlen(lit);
	return p->len - p->pos >= n && memcmp(p->s + p->pos, lit, n) == 0;
}

static bool is_bare(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of the well-formed UTF-8 sequence at S (N bytes available), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	if (n == 0)
		return 0;
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	uint32_t cp, min;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2, cp = c & 0x1F, min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3, cp = c & 0x0F, min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

static bool utf8_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq((const unsigned char *)s + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* Consume one non-ASCII character, checking it is UTF-8. */
static int take_utf8(struct parser *p, size_t *len)
{
	size_t k = utf8_seq((const unsigned char *)p->s + p->pos, p->len - p->pos);
	if (!k)
		return fail(p, p->pos, "invalid UTF-8");
	*len = k;
	return 0;
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t'))
		p->pos++;
}

/* At '#': consume the comment up to (not including) the newline. */
static int skip_comment(struct parser *p)
{
	p->pos++;
	while (p->pos < p->len) {
		int c = peek(p);
		if (c == '\n' || (c == '\r' && peek_at(p, p->pos + 1) == '\n'))
			return 0;
		if ((c < 0x20 && c != '\t') || c == 0x7F)
			return fail(p, p->pos, "control character in comment");
		if (c >= 0x80) {
			size_t k = 0;
			if (take_utf8(p, &k) < 0)
				return -1;
			p->pos += k;
		} else {
			p->pos++;
		}
	}
	return 0;
}

/* Consume a newline if there is one: 1 if consumed, 0 if none, -1 on a lone CR. */
static int take_newline(struct parser *p)
{
	if (peek(p) == '\n') {
		p->pos++;
		return 1;
	}
	if (peek(p) == '\r') {
		if (peek_at(p, p->pos + 1) == '\n') {
			p->pos += 2;
			return 1;
		}
		return fail(p, p->pos, "carriage return without a line feed");
	}
	return 0;
}

/* Whitespace, comments and newlines, as allowed inside arrays and inline tables. */
static int skip_blank(struct parser *p)
{
	for (;;) {
		skip_ws(p);
		if (peek(p) == '#' && skip_comment(p) < 0)
			return -1;
		int nl = take_newline(p);
		if (nl < 0)
			return -1;
		if (!nl)
			return 0;
	}
}

/* After a key/value pair or header: optional comment, then a newline or the end. */
static int end_of_line(struct parser *p, const char *what)
{
	skip_ws(p);
	if (peek(p) == '#' && skip_comment(p) < 0)
		return -1;
	if (p->pos >= p->len)
		return 0;
	int nl = take_newline(p);
	if (nl < 0)
		return -1;
	if (!nl)
		return fail(p, p->pos, "expected a newline after %s", what);
	return 0;
}

/* ---- strings --------------------------------------------------------- */

static int put_utf8(struct parser *p, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp, n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | (cp >> 6)), b[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | (cp >> 12)), b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
	} else {
		b[0] = (char)(0xF0 | (cp >> 18)), b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), b[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
	}
	return pool_put(p, b, n);
}

/* At '\\' in a basic string: decode one escape into the pool. */
static int take_escape(struct parser *p)
{
	size_t at = p->pos;
	int c = peek_at(p, p->pos + 1);
	const char *simple = NULL;
	switch (c) {
	case 'b': simple = "\b"; break;
	case 't': simple = "\t"; break;
	case 'n': simple = "\n"; break;
	case 'f': simple = "\f"; break;
	case 'r': simple = "\r"; break;
	case 'e': simple = "\x1B"; break;
	case '"': simple = "\""; break;
	case '\\': simple = "\\"; break;
	default: break;
	}
	if (simple) {
		p->pos += 2;
		return pool_put(p, simple, 1);
	}
	int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
	if (!digits)
		return fail(p, at, "invalid escape sequence in string");
	uint32_t cp = 0;
	for (int i = 0; i < digits; i++) {
		int h = peek_at(p, p->pos + 2 + (size_t)i);
		if (!is_hex(h))
			return fail(p, at, "escape \\%c needs %d hexadecimal digits", c, digits);
		cp = cp * 16 + (uint32_t)(is_digit(h) ? h - '0' : (h | 0x20) - 'a' + 10);
	}
	if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return fail(p, at, "escape is not a Unicode scalar value");
	p->pos += 2 + (size_t)digits;
	return put_utf8(p, cp);
}

/* Copy one character of string content, refusing control characters. */
static int take_char(struct parser *p, bool newlines)
{
	int c = peek(p);
	if (c == '\n' && newlines) {
		p->pos++;
		return pool_put(p, "\n", 1);
	}
	if (c == '\r' && newlines && peek_at(p, p->pos + 1) == '\n') {
		p->pos += 2; /* newlines read as "\n", whatever the file uses */
		return pool_put(p, "\n", 1);
	}
	if (c == '\r' && newlines)
		return fail(p, p->pos, "carriage return without a line feed");
	if (c == '\n' || c == '\r')
		return fail(p, p->pos, "newline in a single-line string");
	if ((c < 0x20 && c != '\t') || c == 0x7F)
		return fail(p, p->pos, "control character in string");
	size_t k = 1;
	if (c >= 0x80 && take_utf8(p, &k) < 0)
		return -1;
	p->pos += k;
	return pool_put(p, p->s + p->pos - k, k);
}

/*
 * At a quote: read a string of any kind, decoded into the pool (then a NUL).
 * KEY refuses multi-line strings.
 */
static int parse_string(struct parser *p, size_t *off, size_t *len, toml_str_style *style,
                        bool key)
{
	size_t start = p->pos;
	char q = p->s[p->pos];
	bool literal = q == '\'';
	bool multi = starts(p, literal ? "'''" : "\"\"\"");
	*off = p->doc->pool_len;
	if (multi && key)
		return fail(p, start, "a multi-line string cannot be a key");
	*style = literal ? (multi ? TOML_STR_ML_LITERAL : TOML_STR_LITERAL)
	                 : (multi ? TOML_STR_ML_BASIC : TOML_STR_BASIC);
	if (!multi) {
		p->pos++;
		for (;;) {
			int c = peek(p);
			if (c < 0)
				return fail(p, start, "unterminated string");
			if (c == q) {
				p->pos++;
				break;
			}
			if (c == '\\' && !literal) {
				if (take_escape(p) < 0)
					return -1;
			} else if (take_char(p, false) < 0) {
				return -1;
			}
		}
	} else {
		p->pos += 3;
		if (take_newline(p) < 0) /* a newline right after the opening is trimmed */
			return -1;
		for (;;) {
			int c = peek(p);
			if (c < 0)
				return fail(p, start, "unterminated multi-line string");
			if (c == q && peek_at(p, p->pos + 1) == q && peek_at(p, p->pos + 2) == q) {
				size_t run = 3;
				while (peek_at(p, p->pos + run) == q)
					run++;
				if (run > 5)
					return fail(p, p->pos, "too many quotes at the end of a string");
				if (pool_put(p, p->s + p->pos, run - 3) < 0)
					return -1;
				p->pos += run;
				break;
			}
			if (c == '\\' && !literal) {
				size_t at = p->pos, i = p->pos + 1;
				while (peek_at(p, i) == ' ' || peek_at(p, i) == '\t')
					i++;
				int e = peek_at(p, i);
				if (e == '\n' || (e == '\r' && peek_at(p, i + 1) == '\n')) {
					/* line-ending backslash: drop whitespace up to the next text */
					p->pos = i;
					for (;;) {
						skip_ws(p);
						int nl = take_newline(p);
						if (nl < 0)
							return -1;
						if (!nl)
							break;
					}
				} else if (i > at + 1) {
					return fail(p, at, "invalid escape sequence in string");
				} else if (take_escape(p) < 0) {
					return -1;
				}
			} else if (take_char(p, true) < 0) {
				return -1;
			}
		}
	}
	*len = p->doc->pool_len - *off;
	return pool_put(p, "", 1);
}

/* ---- keys ------------------------------------------------------------ */

/* Read a possibly dotted key into p->segs. */
static int parse_key(struct parser *p)
{
	p->n_segs = 0;
	for (;;) {
		skip_ws(p);
		if (p->n_segs == p->cap_segs) {
			size_t cap = p->cap_segs ? p->cap_segs * 2 : 8;
			struct seg *segs = realloc(p->segs, cap * sizeof *segs);
			if (!segs)
				return oom(p);
			p->segs = segs;
			p->cap_segs = cap;
		}
		struct seg *s = &p->segs[p->n_segs];
		s->start = p->pos;
		int c = peek(p);
		if (c == '"' || c == '\'') {
			toml_str_style style;
			if (parse_string(p, &s->key, &s->len, &style, true) < 0)
				return -1;
		} else if (is_bare(c)) {
			while (is_bare(peek(p)))
				p->pos++;
			s->key = p->doc->pool_len;
			s->len = p->pos - s->start;
			if (pool_put(p, p->s + s->start, s->len) < 0 || pool_put(p, "", 1) < 0)
				return -1;
		} else {
			return fail(p, p->pos, c < 0 ? "expected a key, found the end of the text"
			                             : "expected a key");
		}
		s->end = p->pos;
		p->n_segs++;
		skip_ws(p);
		if (peek(p) != '.')
			return 0;
		p->pos++;
	}
}

/* The key as written, from segment 0 to segment LAST, for messages. */
static const char *key_text(struct parser *p, size_t last, char buf[64])
{
	return excerpt(p, p->segs[0].start, p->segs[last].end, buf);
}

/* ---- values ---------------------------------------------------------- */

static bool digits_run(const char *s, size_t n, size_t *i, size_t count)
{
	for (size_t k = 0; k < count; k++, (*i)++)
		if (*i >= n || !is_digit(s[*i]))
			return false;
	return true;
}

static int num2(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

static bool parse_date(const char *s, size_t n, size_t *i)
{
	size_t b = *i;
	if (!digits_run(s, n, i, 4) || *i >= n || s[(*i)++] != '-' || !digits_run(s, n, i, 2) ||
	    *i >= n || s[(*i)++] != '-' || !digits_run(s, n, i, 2))
		return false;
	int year = num2(s + b) * 100 + num2(s + b + 2);
	int month = num2(s + b + 5), day = num2(s + b + 8);
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (month < 1 || month > 12 || day < 1 || day > mdays[month - 1])
		return false;
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return !(month == 2 && day == 29 && !leap);
}

static bool parse_time(const char *s, size_t n, size_t *i)
{
	size_t b = *i;
	if (!digits_run(s, n, i, 2) || *i >= n || s[(*i)++] != ':' || !digits_run(s, n, i, 2))
		return false;
	if (num2(s + b) > 23 || num2(s + b + 3) > 59)
		return false;
	if (*i < n && s[*i] == ':') { /* seconds are optional since TOML 1.1 */
		(*i)++;
		size_t sb = *i;
		if (!digits_run(s, n, i, 2) || num2(s + sb) > 60)
			return false;
		if (*i < n && s[*i] == '.') {
			(*i)++;
			if (*i >= n || !is_digit(s[*i]))
				return false;
			while (*i < n && is_digit(s[*i]))
				(*i)++;
		}
	}
	return true;
}

/* Is S[0, N) one of the four date/time kinds? */
static bool is_datetime(const char *s, size_t n)
{
	size_t i = 0;
	if (n >= 3 && s[2] == ':')
		return parse_time(s, n, &i) && i == n;
	if (!parse_date(s, n, &i))
		return false;
	if (i == n)
		return true;
	if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
		return false;
	i++;
	if (!parse_time(s, n, &i))
		return false;
	if (i == n)
		return true;
	if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == n)
		return true;
	if (s[i] != '+' && s[i] != '-')
		return false;
	size_t b = ++i;
	return digits_run(s, n, &i, 2) && i < n && s[i++] == ':' && digits_run(s, n, &i, 2) &&
	       i == n && num2(s + b) <= 23 && num2(s + b + 3) <= 59;
}

/* Digits of BASE separated by single underscores: "1_000", not "1__0" or "_1". */
static bool digit_groups(const char *s, size_t n, int base)
{
	if (n == 0)
		return false;
	bool prev_digit = false;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		bool ok = base == 16 ? is_hex(c) : base == 8 ? (c >= '0' && c <= '7')
		          : base == 2 ? (c == '0' || c == '1') : is_digit(c);
		if (ok) {
			prev_digit = true;
		} else if (c == '_' && prev_digit && i + 1 < n) {
			prev_digit = false;
		} else {
			return false;
		}
	}
	return prev_digit;
}

static int parse_integer(struct parser *p, toml_node *x, const char *s, size_t n)
{
	int base = 10;
	bool neg = false;
	size_t i = 0;
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b')) {
		base = s[1] == 'x' ? 16 : s[1] == 'o' ? 8 : 2;
		i = 2;
		if (!digit_groups(s + i, n - i, base))
			return fail(p, x->start, "invalid integer");
	} else {
		if (s[0] == '+' || s[0] == '-')
			neg = s[i++] == '-';
		if (!digit_groups(s + i, n - i, 10))
			return fail(p, x->start, "invalid number");
		if (s[i] == '0' && n - i > 1)
			return fail(p, x->start, "leading zeros are not allowed in a number");
	}
	uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < n; i++) {
		int c = s[i];
		if (c == '_')
			continue;
		uint64_t d = (uint64_t)(is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10);
		if (v > (limit - d) / (uint64_t)base)
			return fail(p, x->start, "integer does not fit in 64 bits");
		v = v * (uint64_t)base + d;
	}
	x->type = TOML_INTEGER;
	x->v.i = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

static int parse_float(struct parser *p, toml_node *x, const char *s, size_t n)
{
	size_t i = 0;
	if (s[0] == '+' || s[0] == '-')
		i++;
	const char *rest = s + i;
	size_t m = n - i;
	if ((m == 3 && memcmp(rest, "inf", 3) == 0) || (m == 3 && memcmp(rest, "nan", 3) == 0)) {
		x->type = TOML_FLOAT;
		x->v.f = rest[0] == 'i' ? (s[0] == '-' ? -INFINITY : INFINITY) : NAN;
		return 0;
	}
	/* integer part, then a fraction, an exponent, or both */
	size_t a = i;
	while (i < n && (is_digit(s[i]) || s[i] == '_'))
		i++;
	if (!digit_groups(s + a, i - a, 10))
		return fail(p, x->start, "invalid number");
	if (s[a] == '0' && i - a > 1)
		return fail(p, x->start, "leading zeros are not allowed in a number");
	bool frac = false, exp = false;
	if (i < n && s[i] == '.') {
		size_t b = ++i;
		while (i < n && (is_digit(s[i]) || s[i] == '_'))
			i++;
		if (!digit_groups(s + b, i - b, 10))
			return fail(p, x->start, "a decimal point needs digits on both sides");
		frac = true;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		size_t b = i;
		while (i < n && (is_digit(s[i]) || s[i] == '_'))
			i++;
		if (!digit_groups(s + b, i - b, 10))
			return fail(p, x->start, "invalid exponent");
		exp = true;
	}
	if (i != n || (!frac && !exp))
		return fail(p, x->start, "invalid number");
	char *buf = malloc(n + 1);
	if (!buf)
		return oom(p);
	size_t k = 0;
	for (size_t j = 0; j < n; j++)
		if (s[j] != '_')
			buf[k++] = s[j];
	buf[k] = '\0';
	x->type = TOML_FLOAT;
	x->v.f = strtod(buf, NULL);
	free(buf);
	return 0;
}

/* A bare token: boolean, number or date/time. */
static int parse_scalar(struct parser *p, toml_node *x)
{
	size_t start = p->pos;
	while (p->pos < p->len) {
		int c = peek(p);
		if (!(is_bare(c) || c == '+' || c == '.' || c == ':'))
			break;
		p->pos++;
	}
	/* "1979-05-27 07:32:00": a date, a space, then a time */
	if (p->pos - start == 10 && peek(p) == ' ' && is_digit(peek_at(p, p->pos + 1)) &&
	    is_digit(peek_at(p, p->pos + 2)) && peek_at(p, p->pos + 3) == ':') {
		size_t i = start;
		if (parse_date(p->s, p->len, &i) && i == p->pos) {
			p->pos++;
			while (p->pos < p->len) {
				int c = peek(p);
				if (!(is_bare(c) || c == '+' || c == '.' || c == ':'))
					break;
				p->pos++;
			}
		}
	}
	const char *s = p->s + start;
	size_t n = p->pos - start;
	x->start = start;
	x->end = p->pos;
	if (n == 0)
		return fail(p, start, peek(p) < 0 ? "expected a value, found the end of the text"
		                                  : "expected a value");
	if (n == 4 && memcmp(s, "true", 4) == 0) {
		x->type = TOML_BOOL;
		x->v.b = true;
		return 0;
	}
	if (n == 5 && memcmp(s, "false", 5) == 0) {
		x->type = TOML_BOOL;
		x->v.b = false;
		return 0;
	}
	bool time_like = n >= 3 && is_digit(s[0]) && is_digit(s[1]) && s[2] == ':';
	bool date_like = n >= 5 && is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) &&
	                 is_digit(s[3]) && s[4] == '-';
	if (time_like || date_like) {
		if (!is_datetime(s, n))
			return fail(p, start, "invalid date or time");
		x->type = TOML_DATETIME;
		return 0;
	}
	size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
	bool special = n - i == 3 && (memcmp(s + i, "inf", 3) == 0 || memcmp(s + i, "nan", 3) == 0);
	if (!special && (i == n || !is_digit(s[i]))) {
		char buf[64];
		return fail(p, start, "invalid value '%s' (strings need quotes)",
		            excerpt(p, start, p->pos, buf));
	}
	bool is_float = special;
	if (!(n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o' || s[1] == 'b')))
		for (size_t j = i; j < n; j++)
			if (s[j] == '.' || s[j] == 'e' || s[j] == 'E' || s[j] == 'i' || s[j] == 'n')
				is_float = true;
	return is_float ? parse_float(p, x, s, n) : parse_integer(p, x, s, n);
}

static const char *a_type(toml_type type)
{
	switch (type) {
	case TOML_TABLE: return "a table";
	case TOML_ARRAY: return "an array";
	case TOML_STRING: return "a string";
	case TOML_INTEGER: return "an integer";
	case TOML_FLOAT: return "a float";
	case TOML_BOOL: return "a boolean";
	case TOML_DATETIME: return "a date-time";
	}
	return "a value";
}

static int parse_value(struct parser *p, uint32_t n, uint32_t owner);
static int parse_keyval(struct parser *p, uint32_t table, uint32_t owner);

static int enter(struct parser *p)
{
	if (++p->depth > MAX_DEPTH)
		return fail(p, p->pos, "arrays or inline tables nested too deeply");
	return 0;
}

static int parse_array(struct parser *p, uint32_t n, uint32_t owner)
{
	if (enter(p) < 0)
		return -1;
	size_t start = p->pos++;
	for (;;) {
		if (skip_blank(p) < 0)
			return -1;
		if (peek(p) == ']')
			break;
		uint32_t e = new_node(p, n, TOML_STRING, NULL, owner);
		if (e == NONE || parse_value(p, e, owner) < 0)
			return -1;
		if (skip_blank(p) < 0)
			return -1;
		if (peek(p) == ',') {
			p->pos++;
			continue;
		}
		if (peek(p) == ']')
			break;
		return fail(p, p->pos, peek(p) < 0 ? "unterminated array" : "expected ',' or ']' in array");
	}
	p->pos++;
	toml_node *x = NODE(p, n);
	x->type = TOML_ARRAY;
	x->start = start;
	x->end = p->pos;
	p->depth--;
	return 0;
}

static int parse_inline_table(struct parser *p, uint32_t n)
{
	if (enter(p) < 0)
		return -1;
	toml_node *x = NODE(p, n);
	x->type = TOML_TABLE;
	x->style = TOML_TABLE_INLINE;
	x->owner = n; /* tables made inside are open only while this one is read */
	size_t start = p->pos++;
	for (;;) {
		if (skip_blank(p) < 0)
			return -1;
		if (peek(p) == '}')
			break;
		if (parse_keyval(p, n, n) < 0)
			return -1;
		if (skip_blank(p) < 0)
			return -1;
		if (peek(p) == ',') {
			p->pos++;
			continue;
		}
		if (peek(p) == '}')
			break;
		return fail(p, p->pos,
		            peek(p) < 0 ? "unterminated inline table" : "expected ',' or '}' in inline table");
	}
	p->pos++;
	x = NODE(p, n);
	x->start = start;
	x->end = p->pos;
	p->depth--;
	return 0;
}

/* Fill in node N from the value at p->pos. */
static int parse_value(struct parser *p, uint32_t n, uint32_t owner)
{
	int c = peek(p);
	if (c == '"' || c == '\'') {
		size_t start = p->pos, off, len;
		toml_str_style style;
		if (parse_string(p, &off, &len, &style, false) < 0)
			return -1;
		toml_node *x = NODE(p, n);
		x->type = TOML_STRING;
		x->style = (uint8_t)style;
		x->str = off;
		x->str_len = len;
		x->start = start;
		x->end = p->pos;
		return 0;
	}
	if (c == '[')
		return parse_array(p, n, owner);
	if (c == '{')
		return parse_inline_table(p, n);
	return parse_scalar(p, NODE(p, n));
}

/* Closed inline tables (and the tables dotted keys made in them) are frozen. */
static bool frozen(const toml_node *x, uint32_t owner)
{
	return x->owner != NONE && x->owner != owner;
}

/* key = value, into TABLE; OWNER is the inline table being read, or NONE. */
static int parse_keyval(struct parser *p, uint32_t table, uint32_t owner)
{
	if (parse_key(p) < 0)
		return -1;
	char buf[64];
	uint32_t t = table;
	for (size_t i = 0; i + 1 < p->n_segs; i++) {
		const struct seg *s = &p->segs[i];
		uint32_t e = hash_find(p->doc, t, p->doc->pool + s->key, s->len);
		if (e == NONE) {
			e = new_node(p, t, TOML_TABLE, s, owner);
			if (e == NONE)
				return -1;
			NODE(p, e)->style = TOML_TABLE_DOTTED;
			NODE(p, e)->flags = F_IMPLICIT | F_DOTTED;
		} else {
			toml_node *x = NODE(p, e);
			if (x->type != TOML_TABLE)
				return fail(p, s->start, "key '%s' is already %s, not a table",
				            key_text(p, i, buf), a_type(x->type));
			if (frozen(x, owner))
				return fail(p, s->start, "cannot add keys to inline table '%s'",
				            key_text(p, i, buf));
			if (x->flags & F_HEADER) {
				unsigned line, col;
				locate(p->s, p->len, x->start, &line, &col);
				return fail(p, s->start,
				            "table '%s' was defined by a header at line %u; dotted keys cannot add to it",
				            key_text(p, i, buf), line);
			}
			x->flags |= F_DOTTED;
		}
		t = e;
	}
	const struct seg *s = &p->segs[p->n_segs - 1];
	uint32_t dup = hash_find(p->doc, t, p->doc->pool + s->key, s->len);
	if (dup != NONE) {
		unsigned line, col;
		const toml_node *x = NODE(p, dup);
		locate(p->s, p->len, x->kend > x->kstart ? x->kstart : x->start, &line, &col);
		return fail(p, s->start, "duplicate key '%s' (first defined at line %u)",
		            key_text(p, p->n_segs - 1, buf), line);
	}
	uint32_t n = new_node(p, t, TOML_STRING, s, owner);
	if (n == NONE)
		return -1;
	skip_ws(p);
	if (peek(p) != '=')
		return fail(p, p->pos, "expected '=' after key");
	p->pos++;
	skip_ws(p);
	return parse_value(p, n, owner);
}

/* [a.b] or [[a.b]] */
static int parse_header(struct parser *p)
{
	size_t start = p->pos;
	bool aot = starts(p, "[[");
	p->pos += aot ? 2 : 1;
	if (parse_key(p) < 0)
		return -1;
	skip_ws(p);
	if (!starts(p, aot ? "]]" : "]"))
		return fail(p, p->pos, aot ? "expected ']]' after table name" : "expected ']' after table name");
	p->pos += aot ? 2 : 1;
	char buf[64];
	uint32_t t = 0;
	for (size_t i = 0; i + 1 < p->n_segs; i++) {
		const struct seg *s = &p->segs[i];
		uint32_t e = hash_find(p->doc, t, p->doc->pool + s->key, s->len);
		if (e == NONE) {
			e = new_node(p, t, TOML_TABLE, s, NONE);
			if (e == NONE)
				return -1;
			NODE(p, e)->style = TOML_TABLE_IMPLICIT;
			NODE(p, e)->flags = F_IMPLICIT;
		} else {
			toml_node *x = NODE(p, e);
			if (x->type == TOML_ARRAY && (x->flags & F_AOT)) {
				e = x->last;
			} else if (x->type != TOML_TABLE) {
				return fail(p, s->start, "key '%s' is already %s, not a table",
				            key_text(p, i, buf), a_type(x->type));
			} else if (frozen(x, NONE)) {
				return fail(p, s->start, "cannot add keys to inline table '%s'",
				            key_text(p, i, buf));
			}
		}
		t = e;
	}
	const struct seg *s = &p->segs[p->n_segs - 1];
	uint32_t e = hash_find(p->doc, t, p->doc->pool + s->key, s->len);
	uint32_t table;
	if (aot) {
		if (e == NONE) {
			e = new_node(p, t, TOML_ARRAY, s, NONE);
			if (e == NONE)
				return -1;
			NODE(p, e)->flags = F_AOT;
		} else if (NODE(p, e)->type != TOML_ARRAY || !(NODE(p, e)->flags & F_AOT)) {
			return fail(p, start, "'%s' is already defined and is not an array of tables",
			            key_text(p, p->n_segs - 1, buf));
		}
		table = new_node(p, e, TOML_TABLE, NULL, NONE);
		if (table == NONE)
			return -1;
		toml_node *x = NODE(p, table);
		x->style = TOML_TABLE_ARRAY;
		x->kstart = s->start;
		x->kend = s->end;
	} else {
		if (e == NONE) {
			e = new_node(p, t, TOML_TABLE, s, NONE);
			if (e == NONE)
				return -1;
		} else {
			toml_node *x = NODE(p, e);
			unsigned line, col;
			locate(p->s, p->len, x->kstart, &line, &col);
			if (x->type != TOML_TABLE || x->style == TOML_TABLE_INLINE)
				return fail(p, start, "'%s' is already defined at line %u",
				            key_text(p, p->n_segs - 1, buf), line);
			if (x->flags & F_DOTTED)
				return fail(p, start, "table '%s' was already defined by dotted keys at line %u",
				            key_text(p, p->n_segs - 1, buf), line);
			if (!(x->flags & F_IMPLICIT)) {
				locate(p->s, p->len, x->start, &line, &col);
				return fail(p, start, "table '%s' is defined twice (first at line %u)",
				            key_text(p, p->n_segs - 1, buf), line);
			}
			x->kstart = s->start; /* the header names it now */
			x->kend = s->end;
		}
		table = e;
		NODE(p, table)->style = TOML_TABLE_HEADER;
	}
	toml_node *x = NODE(p, table);
	x->flags = F_HEADER;
	x->start = start;
	x->end = p->pos;
	p->cur = table;
	return 0;
}

/* Lay every node's children out in doc->kids, so toml_node_at is O(1). */
static int index_children(struct parser *p)
{
	toml_doc *d = p->doc;
	d->kids = malloc((d->n_nodes ? d->n_nodes : 1) * sizeof *d->kids);
	if (!d->kids)
		return oom(p);
	uint32_t at = 0;
	for (size_t i = 0; i < d->n_nodes; i++) {
		toml_node *x = &d->nodes[i];
		x->kids = at;
		for (uint32_t k = x->first; k != NONE; k = d->nodes[k].next)
			d->kids[at++] = k;
	}
	return 0;
}

static void doc_clear(toml_doc *d)
{
	free(d->text);
	free(d->nodes);
	free(d->kids);
	free(d->pool);
	free(d->hash);
	memset(d, 0, sizeof *d);
}

static int parse_into(toml_doc *d, const char *text, size_t len, toml_error *err)
{
	memset(d, 0, sizeof *d);
	struct parser p = {.doc = d, .err = err};
	d->text = malloc(len + 1);
	if (!d->text) {
		p.s = "";
		return oom(&p);
	}
	if (len)
		memcpy(d->text, text, len);
	d->text[len] = '\0';
	d->len = len;
	p.s = d->text;
	p.len = len;
	/* A UTF-8 byte-order mark is not part of the document. */
	if (starts(&p, "\xEF\xBB\xBF"))
		p.pos = 3;
	uint32_t root = new_node(&p, NONE, TOML_TABLE, NULL, NONE);
	if (root == NONE)
		goto failed;
	d->nodes[root].style = TOML_TABLE_ROOT;
	p.cur = root;
	while (p.pos < p.len) {
		skip_ws(&p);
		int c = peek(&p);
		int rc = 0;
		if (c < 0) {
			break;
		} else if (c == '#' || c == '\n' || c == '\r') {
			rc = end_of_line(&p, "a comment");
		} else if (c == '[') {
			rc = parse_header(&p);
			if (rc == 0)
				rc = end_of_line(&p, "a table header");
		} else {
			rc = parse_keyval(&p, p.cur, NONE);
			if (rc == 0)
				rc = end_of_line(&p, "a value");
		}
		if (rc < 0)
			goto failed;
	}
	if (index_children(&p) < 0)
		goto failed;
	free(p.segs);
	return 0;
failed:
	free(p.segs);
	doc_clear(d);
	return -1;
}

/* ---- public ---------------------------------------------------------- */

int toml_doc_parse(toml_doc **out, const char *text, size_t len, toml_error *err)
{
	*out = NULL;
	toml_doc *d = malloc(sizeof *d);
	if (!d) {
		if (err) {
			memset(err, 0, sizeof *err);
			err->line = err->column = 1;
			snprintf(err->message, sizeof err->message, "out of memory");
		}
		return -1;
	}
	if (parse_into(d, text, len, err) < 0) {
		free(d);
		return -1;
	}
	for (size_t i = 0; i < d->n_nodes; i++)
		d->nodes[i].doc = d;
	*out = d;
	return 0;
}

void toml_doc_free(toml_doc *doc)
{
	if (!doc)
		return;
	doc_clear(doc);
	free(doc);
}

const char *toml_doc_text(const toml_doc *doc, size_t *len)
{
	if (len)
		*len = doc->len;
	return doc->text;
}

const toml_node *toml_doc_root(const toml_doc *doc)
{
	return &doc->nodes[0];
}

const toml_node *toml_doc_lookup(const toml_doc *doc, const char *const *path, size_t n)
{
	const toml_node *x = toml_doc_root(doc);
	for (size_t i = 0; i < n && x; i++)
		x = toml_node_get(x, path[i], strlen(path[i]));
	return x;
}

const toml_node *toml_node_get(const toml_node *table, const char *key, size_t len)
{
	if (!table || table->type != TOML_TABLE)
		return NULL;
	const toml_doc *d = table->doc;
	uint32_t n = hash_find(d, (uint32_t)(table - d->nodes), key, len);
	return n == NONE ? NULL : &d->nodes[n];
}

size_t toml_node_count(const toml_node *node)
{
	return node->type == TOML_TABLE || node->type == TOML_ARRAY ? node->count : 0;
}

const toml_node *toml_node_at(const toml_node *node, size_t index)
{
	if (index >= toml_node_count(node))
		return NULL;
	return &node->doc->nodes[node->doc->kids[node->kids + index]];
}

const char *toml_node_key(const toml_node *node, size_t *len)
{
	if (node->key == SIZE_MAX) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = node->key_len;
	return node->doc->pool + node->key;
}

toml_type toml_node_type(const toml_node *node)
{
	return (toml_type)node->type;
}

const char *toml_type_name(toml_type type)
{
	switch (type) {
	case TOML_TABLE: return "table";
	case TOML_ARRAY: return "array";
	case TOML_STRING: return "string";
	case TOML_INTEGER: return "integer";
	case TOML_FLOAT: return "float";
	case TOML_BOOL: return "boolean";
	case TOML_DATETIME: return "datetime";
	}
	return "?";
}

toml_table_kind toml_node_table_kind(const toml_node *node)
{
	return (toml_table_kind)node->style;
}

toml_str_style toml_node_str_style(const toml_node *node)
{
	return (toml_str_style)node->style;
}

bool toml_node_span(const toml_node *node, size_t *start, size_t *end)
{
	*start = node->start;
	*end = node->end;
	return node->end > node->start;
}

bool toml_node_key_span(const toml_node *node, size_t *start, size_t *end)
{
	*start = node->kstart;
	*end = node->kend;
	return node->kend > node->kstart;
}

const char *toml_node_string(const toml_node *node, size_t *len)
{
	if (node->type != TOML_STRING) {
		if (len)
			*len = 0;
		return NULL;
	}
	if (len)
		*len = node->str_len;
	return node->doc->pool + node->str;
}

const char *toml_node_raw(const toml_node *node, size_t *len)
{
	if (len)
		*len = node->end - node->start;
	return node->doc->text + node->start;
}

int64_t toml_node_integer(const toml_node *node)
{
	return node->type == TOML_INTEGER ? node->v.i : 0;
}

double toml_node_float(const toml_node *node)
{
	return node->type == TOML_FLOAT ? node->v.f : node->type == TOML_INTEGER ? (double)node->v.i : 0;
}

bool toml_node_bool(const toml_node *node)
{
	return node->type == TOML_BOOL && node->v.b;
}

/* ---- editing --------------------------------------------------------- */

static bool fits_literal(const char *v, size_t n, bool multi)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if ((c < 0x20 && c != '\t' && !(multi && c == '\n')) || c == 0x7F)
			return false;
		if (c == '\'' && (!multi || i + 1 == n || (i + 2 < n && v[i + 1] == '\'' && v[i + 2] == '\'')))
			return false;
	}
	return true;
}

struct out {
	char *b;
	size_t cap, n;
};

static void emit(struct out *o, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++, o->n++)
		if (o->n < o->cap)
			o->b[o->n] = s[i];
}

static void emit_escaped(struct out *o, const char *v, size_t n, bool multi)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		char esc[8];
		switch (c) {
		case '"': emit(o, "\\\"", 2); break;
		case '\\': emit(o, "\\\\", 2); break;
		case '\b': emit(o, "\\b", 2); break;
		case '\t': emit(o, "\t", 1); break;
		case '\f': emit(o, "\\f", 2); break;
		case '\r': emit(o, "\\r", 2); break;
		case '\n':
			/* a newline right after the opening quotes would be trimmed */
			if (multi && i > 0)
				emit(o, "\n", 1);
			else
				emit(o, "\\n", 2);
			break;
		default:
			if (c < 0x20 || c == 0x7F) {
				snprintf(esc, sizeof esc, "\\u%04X", c);
				emit(o, esc, 6);
			} else {
				emit(o, (const char *)&v[i], 1);
			}
		}
	}
}

ptrdiff_t toml_string_encode(char *out, size_t cap, const char *value, size_t len,
                             toml_str_style style)
{
	if (!utf8_valid(value, len))
		return -1;
	struct out o = {out, cap, 0};
	if (style == TOML_STR_LITERAL && fits_literal(value, len, false)) {
		emit(&o, "'", 1);
		emit(&o, value, len);
		emit(&o, "'", 1);
	} else if (style == TOML_STR_ML_LITERAL && fits_literal(value, len, true)) {
		emit(&o, "'''", 3);
		if (len && value[0] == '\n')
			emit(&o, "\n", 1); /* the first newline is trimmed, so give it one to trim */
		emit(&o, value, len);
		emit(&o, "'''", 3);
	} else if (style == TOML_STR_ML_BASIC || style == TOML_STR_ML_LITERAL) {
		emit(&o, "\"\"\"", 3);
		emit_escaped(&o, value, len, true);
		emit(&o, "\"\"\"", 3);
	} else {
		emit(&o, "\"", 1);
		emit_escaped(&o, value, len, false);
		emit(&o, "\"", 1);
	}
	return (ptrdiff_t)o.n;
}

static int edit_fail(toml_error *err, const char *msg)
{
	if (err) {
		memset(err, 0, sizeof *err);
		err->line = err->column = 1;
		snprintf(err->message, sizeof err->message, "%s", msg);
	}
	return -1;
}

int toml_doc_set_string(toml_doc *doc, const toml_node *node, const char *value, size_t len,
                        toml_error *err)
{
	if (node < doc->nodes || node >= doc->nodes + doc->n_nodes)
		return edit_fail(err, "the node is not part of this document");
	if (node->type != TOML_STRING)
		return edit_fail(err, "the value is not a string");
	size_t index = (size_t)(node - doc->nodes);
	ptrdiff_t tok = toml_string_encode(NULL, 0, value, len, (toml_str_style)node->style);
	if (tok < 0)
		return edit_fail(err, "the new value is not valid UTF-8");
	size_t before = node->start, after = doc->len - node->end;
	size_t n = before + (size_t)tok + after;
	char *text = malloc(n + 1);
	if (!text)
		return edit_fail(err, "out of memory");
	memcpy(text, doc->text, before);
	toml_string_encode(text + before, (size_t)tok, value, len, (toml_str_style)node->style);
	memcpy(text + before + tok, doc->text + node->end, after);
	text[n] = '\0';

	/* Read the new text back: the edit must leave the same tree with the new value. */
	toml_doc fresh;
	toml_error perr;
	int rc = parse_into(&fresh, text, n, &perr);
	free(text);
	if (rc < 0)
		return edit_fail(err, "out of memory");
	const toml_node *x = index < fresh.n_nodes ? &fresh.nodes[index] : NULL;
	if (fresh.n_nodes != doc->n_nodes || !x || x->type != TOML_STRING || x->str_len != len ||
	    memcmp(fresh.pool + x->str, value, len) != 0) {
		doc_clear(&fresh);
		return edit_fail(err, "internal error: the edited text does not read back");
	}
	doc_clear(doc);
	*doc = fresh;
	for (size_t i = 0; i < doc->n_nodes; i++)
		doc->nodes[i].doc = doc;
	return 0;
}
