#ifndef CDP_TOML_H
#define CDP_TOML_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A lossless TOML reader and span editor.
 *
 * toml_doc_parse reads a whole document, validating it as TOML does
 * (duplicate keys, tables defined twice, extending inline tables or static
 * arrays, malformed values and UTF-8 are errors), and keeps its text
 * unchanged. Every value records the byte span of its token in that text, so
 * an edit can replace exactly those bytes and nothing else.
 *
 * The grammar is TOML 1.0 plus what TOML 1.1 relaxed and cargo accepts:
 * newlines, comments and a trailing comma inside inline tables, the \e and
 * \xHH escapes, and times without seconds.
 *
 * Node pointers stay valid until the document is edited or freed.
 */

typedef struct toml_doc toml_doc;
typedef struct toml_node toml_node;

typedef enum {
	TOML_TABLE,
	TOML_ARRAY,
	TOML_STRING,
	TOML_INTEGER,
	TOML_FLOAT,
	TOML_BOOL,
	TOML_DATETIME, /* any of the four date/time kinds, kept as its raw token */
} toml_type;

/* How a string value was written; an edit keeps it where it can. */
typedef enum {
	TOML_STR_BASIC,      /* "..." */
	TOML_STR_LITERAL,    /* '...' */
	TOML_STR_ML_BASIC,   /* """...""" */
	TOML_STR_ML_LITERAL, /* '''...''' */
} toml_str_style;

/* How a table came to be. */
typedef enum {
	TOML_TABLE_ROOT,
	TOML_TABLE_HEADER,   /* [a.b] */
	TOML_TABLE_ARRAY,    /* an element of [[a.b]] */
	TOML_TABLE_INLINE,   /* { ... } */
	TOML_TABLE_DOTTED,   /* a.b = 1 made table a */
	TOML_TABLE_IMPLICIT, /* [a.b] made table a without defining it */
} toml_table_kind;

#define TOML_ERROR_MAX 160

typedef struct {
	unsigned line;   /* 1-based */
	unsigned column; /* 1-based, in characters */
	size_t offset;   /* 0-based byte offset */
	char message[TOML_ERROR_MAX];
} toml_error;

/*
 * Parse LEN bytes of TEXT (a copy is kept). On success *OUT is the document
 * and 0 is returned; on failure *OUT is NULL, ERR (if not NULL) says where
 * and why, and -1 is returned.
 */
int toml_doc_parse(toml_doc **out, const char *text, size_t len, toml_error *err);
void toml_doc_free(toml_doc *doc);

/* The current text of DOC (NUL-terminated; LEN may be NULL). */
const char *toml_doc_text(const toml_doc *doc, size_t *len);
const toml_node *toml_doc_root(const toml_doc *doc);

/* The value at PATH (N keys from the root, NUL-terminated), or NULL. */
const toml_node *toml_doc_lookup(const toml_doc *doc, const char *const *path, size_t n);

/* The child of TABLE called KEY, or NULL (also when TABLE is no table). */
const toml_node *toml_node_get(const toml_node *table, const char *key, size_t len);
/* Children of a table in the order they were defined, or elements of an array. */
size_t toml_node_count(const toml_node *node);
const toml_node *toml_node_at(const toml_node *node, size_t index);
/* The key of a table's child (decoded), or NULL for an array element or the root. */
const char *toml_node_key(const toml_node *node, size_t *len);

toml_type toml_node_type(const toml_node *node);
const char *toml_type_name(toml_type type);
toml_table_kind toml_node_table_kind(const toml_node *node);
toml_str_style toml_node_str_style(const toml_node *node);

/*
 * Byte span [*START, *END) of NODE's token in the text: a string with its
 * quotes, a number as written, an array or inline table from bracket to
 * bracket, a table from its header's '[' to its ']'. Returns false for
 * tables without one (the root, implicit and dotted tables).
 */
bool toml_node_span(const toml_node *node, size_t *start, size_t *end);
/* Span of the key that names NODE (the last part of a dotted key). */
bool toml_node_key_span(const toml_node *node, size_t *start, size_t *end);

/* The decoded string (NUL-terminated; it may hold NULs, see LEN). */
const char *toml_node_string(const toml_node *node, size_t *len);
/* The token as written: for numbers, booleans and dates. */
const char *toml_node_raw(const toml_node *node, size_t *len);
int64_t toml_node_integer(const toml_node *node);
double toml_node_float(const toml_node *node);
bool toml_node_bool(const toml_node *node);

/*
 * Replace the string value NODE of DOC with VALUE (LEN bytes of UTF-8),
 * keeping its quote style where VALUE can be written in it ('...' falls back
 * to "..." with escapes, '''...''' to """..."""). Every other byte of the
 * text stays as it was. All node pointers of DOC become invalid; on failure
 * (NODE not a string of DOC, VALUE not UTF-8) DOC is unchanged, ERR says why
 * and -1 is returned.
 */
int toml_doc_set_string(toml_doc *doc, const toml_node *node, const char *value, size_t len,
                        toml_error *err);

/*
 * Write VALUE as a TOML string token in STYLE (or the fallback) into OUT,
 * which holds CAP bytes. Returns the token's length, which may exceed CAP
 * (then call again with more room), or -1 when VALUE is not UTF-8.
 */
ptrdiff_t toml_string_encode(char *out, size_t cap, const char *value, size_t len,
                             toml_str_style style);

#endif
