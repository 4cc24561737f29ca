/*
 * Conventional Commits messages, as commits.reference_parse reads them. The
 * comments name the Lua pattern each step stands for; %s, %a, %w and %x are
 * the C locale's isspace, isalpha, isalnum and isxdigit, as in Lua.
 */
#include "core/conventional.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int is_space(char c) { return isspace((unsigned char)c) != 0; }
static int is_alpha(char c) { return isalpha((unsigned char)c) != 0; }
static int is_alnum(char c) { return isalnum((unsigned char)c) != 0; }
static int is_xdigit(char c) { return isxdigit((unsigned char)c) != 0; }

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * size);
	if (!q)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

/* Append LEN bytes to the built buffer, keeping it NUL-terminated. */
static int build(struct cc_message *m, const char *s, size_t len)
{
	if (grow((void **)&m->buf, &m->buf_cap, m->buf_len + len + 1, 1) < 0)
		return -1;
	if (len)
		memcpy(m->buf + m->buf_len, s, len);
	m->buf_len += len;
	m->buf[m->buf_len] = '\0';
	return 0;
}

/* trim(s): s:gsub("^%s+", ""):gsub("%s+$", "") */
static struct cc_span trim(const char *base, struct cc_span s)
{
	while (s.len > 0 && is_space(base[s.off])) {
		s.off++;
		s.len--;
	}
	while (s.len > 0 && is_space(base[s.off + s.len - 1]))
		s.len--;
	return s;
}

static int is_blank(const char *t, struct cc_span line)
{
	for (size_t i = 0; i < line.len; i++)
		if (!is_space(t[line.off + i]))
			return 0;
	return 1;
}

/* [%w][%w-]* at the start of S: its length, or 0. */
static size_t token_length(const char *s, size_t len)
{
	if (len == 0 || !is_alnum(s[0]))
		return 0;
	size_t i = 1;
	while (i < len && (is_alnum(s[i]) || s[i] == '-'))
		i++;
	return i;
}

/*
 * footer_start(line): "BREAKING CHANGE:[ \t]*(.*)", "token:[ \t]+(.*)" or
 * "token[ \t]+(#.*)". Returns 1 with the token and where the value starts.
 */
static int footer_start(const char *t, struct cc_span line, struct cc_span *token, size_t *value)
{
	const char *s = t + line.off;
	size_t len = line.len;
	static const char breaking[] = "BREAKING CHANGE:";
	if (len >= sizeof breaking - 1 && memcmp(s, breaking, sizeof breaking - 1) == 0) {
		size_t i = sizeof breaking - 1;
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		*token = (struct cc_span){line.off, sizeof breaking - 2};
		*value = line.off + i;
		return 1;
	}
	size_t n = token_length(s, len);
	if (n == 0)
		return 0;
	size_t i = n;
	if (i < len && s[i] == ':') {
		size_t j = i + 1;
		while (j < len && (s[j] == ' ' || s[j] == '\t'))
			j++;
		if (j > i + 1) {
			*token = (struct cc_span){line.off, n};
			*value = line.off + j;
			return 1;
		}
	}
	size_t j = i;
	while (j < len && (s[j] == ' ' || s[j] == '\t'))
		j++;
	if (j > i && j < len && s[j] == '#') {
		*token = (struct cc_span){line.off, n};
		*value = line.off + j;
		return 1;
	}
	return 0;
}

static int token_is(const char *t, struct cc_span token, const char *word, int fold)
{
	size_t n = strlen(word);
	if (token.len != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = t[token.off + i];
		if (fold)
			c = (char)tolower((unsigned char)c);
		if (c != word[i])
			return 0;
	}
	return 1;
}

/* Split into lines as (text .. "\n"):gmatch("([^\n]*)\n"), each without one trailing \r. */
static int split_lines(struct cc_message *m, const char *t, size_t start, size_t len)
{
	m->nlines = 0;
	size_t pos = start;
	for (;;) {
		const char *nl = memchr(t + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - t) : len;
		if (grow((void **)&m->lines, &m->lines_cap, m->nlines + 1, sizeof *m->lines) < 0)
			return -1;
		struct cc_span line = {pos, end - pos};
		if (line.len > 0 && t[end - 1] == '\r')
			line.len--;
		m->lines[m->nlines++] = line;
		if (!nl)
			return 0;
		pos = end + 1;
	}
}

/* Footers and, when asked, the body, from lines 1.. (body_and_footers). */
static int body_and_footers(struct cc_message *m, const char *t, int want_body)
{
	/* Paragraph starts: the first line of each run of non-blank lines. */
	size_t first_footer_line = m->nlines; /* the first line of the footer paragraphs */
	/* Walk back over paragraphs from the end while each starts with a footer token. */
	size_t i = m->nlines;
	while (i > 1) {
		/* find the paragraph ending at line i - 1 */
		size_t end = i;
		while (end > 1 && is_blank(t, m->lines[end - 1]))
			end--;
		if (end <= 1)
			break;
		size_t begin = end - 1;
		while (begin > 1 && !is_blank(t, m->lines[begin - 1]))
			begin--;
		struct cc_span token;
		size_t value;
		if (!footer_start(t, m->lines[begin], &token, &value))
			break;
		first_footer_line = begin;
		i = begin;
	}

	m->nfooters = 0;
	for (size_t k = first_footer_line; k < m->nlines; k++) {
		struct cc_span line = m->lines[k];
		if (is_blank(t, line))
			continue;
		struct cc_span token;
		size_t value;
		if (footer_start(t, line, &token, &value)) {
			if (grow((void **)&m->footers, &m->footers_cap, m->nfooters + 1, sizeof *m->footers) < 0)
				return -1;
			struct cc_footer *f = &m->footers[m->nfooters++];
			f->token = token;
			f->value.off = m->buf_len;
			if (build(m, t + value, line.off + line.len - value) < 0)
				return -1;
		} else {
			/* f.value = f.value .. "\n" .. line */
			if (build(m, "\n", 1) < 0 || build(m, t + line.off, line.len) < 0)
				return -1;
		}
		m->footers[m->nfooters - 1].value.len = m->buf_len - m->footers[m->nfooters - 1].value.off;
	}
	for (size_t k = 0; k < m->nfooters; k++)
		m->footers[k].value = trim(m->buf, m->footers[k].value);

	m->has_body = want_body;
	m->body = (struct cc_span){m->buf_len, 0};
	if (want_body) {
		/* paragraphs before the footers: lines joined by "\n", paragraphs by "\n\n" */
		int paragraphs = 0, inside = 0;
		for (size_t k = 1; k < first_footer_line; k++) {
			struct cc_span line = m->lines[k];
			if (is_blank(t, line)) {
				inside = 0;
				continue;
			}
			const char *sep = inside ? "\n" : paragraphs > 0 ? "\n\n" : "";
			if (!inside)
				paragraphs++;
			inside = 1;
			if (build(m, sep, strlen(sep)) < 0 || build(m, t + line.off, line.len) < 0)
				return -1;
		}
		m->body.len = m->buf_len - m->body.off;
	}
	return 0;
}

/* The lower-case copy of T[S] into the buffer. */
static int build_lower(struct cc_message *m, const char *t, struct cc_span s, struct cc_span *out)
{
	out->off = m->buf_len;
	out->len = s.len;
	if (build(m, t + s.off, s.len) < 0)
		return -1;
	for (size_t i = 0; i < s.len; i++)
		m->buf[out->off + i] = (char)tolower((unsigned char)m->buf[out->off + i]);
	return 0;
}

/* header:match(HEADER) or header:match(HEADER_NOSCOPE): 1 when conventional. */
static int match_header(struct cc_message *m, const char *t, struct cc_span *type, int *bang)
{
	const char *h = t + m->header.off;
	size_t len = m->header.len, i;
	if (len == 0 || !is_alpha(h[0]))
		return 0;
	for (i = 1; i < len && (is_alnum(h[i]) || h[i] == '_' || h[i] == '-'); i++)
		;
	*type = (struct cc_span){m->header.off, i};
	m->has_scope = 0;
	size_t j = i;
	if (j < len && h[j] == '(') {
		/* %b() */
		size_t depth = 1, k = j + 1;
		while (k < len && depth > 0) {
			if (h[k] == ')')
				depth--;
			else if (h[k] == '(')
				depth++;
			k++;
		}
		if (depth > 0)
			return 0;
		m->scope = trim(t, (struct cc_span){m->header.off + j + 1, k - j - 2});
		m->has_scope = m->scope.len > 0;
		j = k;
	}
	*bang = j < len && h[j] == '!' && j + 1 < len && h[j + 1] == ':';
	if (*bang)
		j++;
	if (j >= len || h[j] != ':') {
		m->has_scope = 0;
		return 0;
	}
	j++;
	size_t spaces = j;
	while (j < len && (h[j] == ' ' || h[j] == '\t'))
		j++;
	if (j == spaces) {
		m->has_scope = 0;
		return 0;
	}
	/* (.-)%s*$: the rest, without white space at its end */
	size_t end = len;
	while (end > j && is_space(h[end - 1]))
		end--;
	m->description = (struct cc_span){m->header.off + j, end - j};
	if (m->description.len == 0) {
		m->has_scope = 0;
		return 0;
	}
	return 1;
}

/* "[Tt]his reverts commit (%x%x%x%x%x%x%x+)" anywhere in the message. */
static int find_reverted(const char *s, size_t len, struct cc_span *id)
{
	static const char rest[] = "his reverts commit ";
	size_t n = sizeof rest - 1;
	for (size_t i = 0; i + 1 + n < len; i++) {
		if ((s[i] != 'T' && s[i] != 't') || memcmp(s + i + 1, rest, n) != 0)
			continue;
		size_t k = i + 1 + n, e = k;
		while (e < len && is_xdigit(s[e]))
			e++;
		if (e - k >= 7) {
			*id = (struct cc_span){k, e - k};
			return 1;
		}
	}
	return 0;
}

int cc_parse(struct cc_message *m, const char *text, size_t len, int want_body)
{
	m->text = text;
	m->buf_len = 0;
	m->nfooters = 0;
	m->conventional = m->breaking = m->has_scope = m->is_revert = m->has_revert_id = 0;
	m->note = CC_NOTE_NONE;
	m->scope = m->revert_header = m->revert_id = (struct cc_span){0, 0};

	/* message:gsub("^%s*\n", ""): up to the last newline of the leading white space */
	size_t start = 0, lead = 0;
	while (lead < len && is_space(text[lead])) {
		if (text[lead] == '\n')
			start = lead + 1;
		lead++;
	}
	if (split_lines(m, text, start, len) < 0)
		return -1;
	m->header = trim(text, m->lines[0]);
	if (body_and_footers(m, text, want_body) < 0)
		return -1;

	struct cc_span type;
	int bang = 0;
	if (match_header(m, text, &type, &bang)) {
		m->conventional = 1;
		if (build_lower(m, text, type, &m->type) < 0)
			return -1;
		if (bang) {
			m->breaking = 1;
			m->note = CC_NOTE_DESCRIPTION;
		}
	} else {
		m->description = m->header;
		m->type.off = m->buf_len;
		m->type.len = 5;
		if (build(m, "other", 5) < 0)
			return -1;
	}
	for (size_t k = 0; k < m->nfooters; k++)
		if (token_is(text, m->footers[k].token, "BREAKING CHANGE", 0) ||
		    token_is(text, m->footers[k].token, "BREAKING-CHANGE", 0)) {
			m->breaking = 1;
			m->note = (int)k;
		}

	/* Reverts: git's Revert "<header>" and the conventional revert: <header>. */
	const char *h = text + m->header.off;
	static const char quoted[] = "Revert \"";
	size_t q = sizeof quoted - 1;
	if (m->header.len >= q + 1 && memcmp(h, quoted, q) == 0 && h[m->header.len - 1] == '"') {
		m->is_revert = 1;
		m->revert_header = (struct cc_span){m->header.off + q, m->header.len - q - 1};
		m->type.off = m->buf_len;
		m->type.len = 6;
		if (build(m, "revert", 6) < 0)
			return -1;
	} else if (m->type.len == 6 && memcmp(cc_built(m, m->type), "revert", 6) == 0) {
		m->is_revert = 1;
		m->revert_header = m->description;
	}
	if (m->is_revert) {
		struct cc_span id;
		if (find_reverted(text, len, &id)) {
			m->has_revert_id = build_lower(m, text, id, &m->revert_id) == 0;
			if (!m->has_revert_id)
				return -1;
		} else {
			for (size_t k = 0; k < m->nfooters && !m->has_revert_id; k++) {
				struct cc_footer *f = &m->footers[k];
				if (!token_is(text, f->token, "refs", 1) && !token_is(text, f->token, "reverts", 1))
					continue;
				const char *v = cc_built(m, f->value);
				size_t e = 0;
				while (e < f->value.len && is_xdigit(v[e]))
					e++;
				if (e >= 7) {
					/* the value lives in the buffer, which may move: copy by offset */
					struct cc_span at = {f->value.off, e};
					m->revert_id.off = m->buf_len;
					m->revert_id.len = e;
					if (grow((void **)&m->buf, &m->buf_cap, m->buf_len + e + 1, 1) < 0)
						return -1;
					for (size_t c = 0; c < e; c++)
						m->buf[m->buf_len + c] = (char)tolower((unsigned char)m->buf[at.off + c]);
					m->buf_len += e;
					m->buf[m->buf_len] = '\0';
					m->has_revert_id = 1;
				}
			}
		}
	}
	return 0;
}

void cc_message_free(struct cc_message *m)
{
	free(m->footers);
	free(m->lines);
	free(m->buf);
	memset(m, 0, sizeof *m);
}
