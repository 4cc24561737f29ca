/*
 * libFuzzer target: parse any bytes; on success walk every value (as
 * to_table does), then replace every string value, one at a time, and check
 * that the edit changed only that value's bytes and reads back (the first
 * 64 strings of an input).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/toml.h"

/* Walk every node, touching what to_table would read. */
static size_t walk(const toml_node *x, size_t depth)
{
	size_t n = 1, len, s, e;
	toml_node_key(x, &len);
	toml_node_span(x, &s, &e);
	toml_node_key_span(x, &s, &e);
	switch (toml_node_type(x)) {
	case TOML_STRING:
		toml_node_string(x, &len);
		break;
	case TOML_INTEGER:
	case TOML_FLOAT:
	case TOML_BOOL:
	case TOML_DATETIME:
		toml_node_raw(x, &len);
		(void)toml_node_integer(x);
		(void)toml_node_float(x);
		break;
	case TOML_TABLE:
	case TOML_ARRAY:
		for (size_t i = 0; i < toml_node_count(x); i++) {
			const toml_node *kid = toml_node_at(x, i);
			if (toml_node_type(x) == TOML_TABLE) {
				const char *k = toml_node_key(kid, &len);
				if (toml_node_get(x, k, len) != kid)
					abort();
			}
			n += walk(kid, depth + 1);
		}
		break;
	}
	return n;
}

/* The index-th string value in document order, or NULL. */
static const toml_node *nth_string(const toml_node *x, size_t *index)
{
	if (toml_node_type(x) == TOML_STRING)
		return (*index)-- == 0 ? x : NULL;
	for (size_t i = 0; i < toml_node_count(x); i++) {
		const toml_node *found = nth_string(toml_node_at(x, i), index);
		if (found)
			return found;
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	toml_doc *doc;
	toml_error err;
	if (toml_doc_parse(&doc, (const char *)data, size, &err) != 0) {
		if (err.line == 0 || err.column == 0 || err.offset > size)
			abort();
		return 0;
	}
	walk(toml_doc_root(doc), 0);
	static const char *const values[] = {"1.2.3", "it's \"new\"\n\\", ""};
	/* Each edit reads the text again: a cap keeps big inputs fast enough to fuzz. */
	for (size_t i = 0; i < 64; i++) {
		size_t k = i;
		const toml_node *x = nth_string(toml_doc_root(doc), &k);
		if (!x)
			break;
		const char *value = values[i % 3];
		size_t vlen = strlen(value), start, end, old_len;
		toml_node_span(x, &start, &end);
		const char *old = toml_doc_text(doc, &old_len);
		char *before = malloc(old_len + 1);
		memcpy(before, old, old_len + 1);
		if (toml_doc_set_string(doc, x, value, vlen, &err) != 0)
			abort(); /* a string value of a valid document can always be set */
		size_t new_len;
		const char *now = toml_doc_text(doc, &new_len);
		size_t tail = old_len - end;
		if (new_len < start + tail || memcmp(now, before, start) != 0 ||
		    memcmp(now + new_len - tail, before + end, tail) != 0)
			abort(); /* bytes outside the value changed */
		free(before);
		k = i;
		x = nth_string(toml_doc_root(doc), &k);
		size_t got_len;
		const char *got = x ? toml_node_string(x, &got_len) : NULL;
		if (!got || got_len != vlen || memcmp(got, value, vlen) != 0)
			abort();
	}
	toml_doc_free(doc);
	return 0;
}
