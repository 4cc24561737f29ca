#ifndef CDP_CONVENTIONAL_H
#define CDP_CONVENTIONAL_H
#include <stddef.h>

/*
 * Conventional Commits 1.0 messages, read exactly as commits.reference_parse
 * (lua/cdp/commits.lua) reads them: the same header, type, scope, breaking
 * note, description, body, footers and revert target for every message, odd
 * ones included (leading blank lines, CRLF, footers that run on, parentheses
 * in scopes). That Lua function is the definition; this is its fast twin, for
 * reading thousands of messages in one walk.
 *
 *   struct cc_message m = {0};
 *   if (cc_parse(&m, text, len, 1) == 0) { ... cc_text(&m, m.description) ... }
 *   cc_message_free(&m);
 *
 * A message can be reused for many parses (buffers are kept). Strings are
 * spans: those of the text (header, scope, description, revert header, footer
 * tokens) index TEXT; those the parser had to build (type in lower case, body,
 * footer values, revert id) index the message's own buffer. cc_text and
 * cc_built turn each kind into a pointer, valid until the next parse.
 */

struct cc_span {
	size_t off, len;
};

struct cc_footer {
	struct cc_span token; /* in the text */
	struct cc_span value; /* built, trimmed */
};

enum {
	CC_NOTE_NONE = -2,
	CC_NOTE_DESCRIPTION = -1, /* '!' in the header; >= 0: that footer's value */
};

struct cc_message {
	const char *text;
	int conventional; /* type(scope)!: description */
	int breaking;
	int has_scope;
	int is_revert;     /* Revert "..." or type revert */
	int has_revert_id; /* "This reverts commit <hex>", or a Refs/Reverts footer */
	int note;          /* CC_NOTE_NONE, CC_NOTE_DESCRIPTION or a footer index */
	int has_body;      /* the body was built (cc_parse with BODY) */

	struct cc_span header;        /* text: the first line, trimmed */
	struct cc_span scope;         /* text: inside the parentheses, trimmed */
	struct cc_span description;   /* text */
	struct cc_span revert_header; /* text */
	struct cc_span type;          /* built: lower case, "other" when not conventional */
	struct cc_span revert_id;     /* built: lower case */
	struct cc_span body;          /* built */

	struct cc_footer *footers;
	size_t nfooters, footers_cap;

	/* scratch */
	struct cc_span *lines;
	size_t nlines, lines_cap;
	char *buf;
	size_t buf_len, buf_cap;
};

/* Parse TEXT (LEN bytes, NULs allowed). BODY: build the body too. 0, or -1 when out of memory. */
int cc_parse(struct cc_message *m, const char *text, size_t len, int body);

/* Release a message's buffers; it may be parsed into again. */
void cc_message_free(struct cc_message *m);

static inline const char *cc_text(const struct cc_message *m, struct cc_span s)
{
	return m->text + s.off;
}

static inline const char *cc_built(const struct cc_message *m, struct cc_span s)
{
	return m->buf + s.off;
}

#endif
