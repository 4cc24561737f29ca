/*
 * Canonical text of inherited [workspace.*] entries, on the TOML reader.
 * Strings are length-prefixed, integers in decimal, floats in %.17g, tables
 * with their keys sorted, so formatting never makes two equal values differ.
 */
#include "core/workspace_keys.h"
#include "core/toml.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BROKEN "\001not TOML"

struct buf {
	char *p;
	size_t n, cap;
	int failed;
};

static void put(struct buf *b, const char *s, size_t len)
{
	if (b->failed)
		return;
	if (b->n + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->n + len + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, len);
	b->n += len;
	b->p[b->n] = '\0';
}

static void put_str(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static void put_counted(struct buf *b, const char *s, size_t len)
{
	char head[32];
	snprintf(head, sizeof head, "%zu:", len);
	put_str(b, head);
	put(b, s, len);
}

struct member {
	const char *key;
	size_t len;
	const toml_node *node;
};

static int member_cmp(const void *pa, const void *pb)
{
	const struct member *a = pa, *b = pb;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->key, b->key, n);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

static void canon(struct buf *b, const toml_node *n)
{
	char num[64];
	size_t len, count;
	const char *s;
	switch (toml_node_type(n)) {
	case TOML_STRING:
		s = toml_node_string(n, &len);
		put_str(b, "s");
		put_counted(b, s, len);
		return;
	case TOML_INTEGER:
		snprintf(num, sizeof num, "i%lld", (long long)toml_node_integer(n));
		put_str(b, num);
		return;
	case TOML_FLOAT:
		snprintf(num, sizeof num, "f%.17g", toml_node_float(n));
		put_str(b, num);
		return;
	case TOML_BOOL:
		put_str(b, toml_node_bool(n) ? "t" : "F");
		return;
	case TOML_DATETIME:
		s = toml_node_raw(n, &len);
		put_str(b, "d");
		put_counted(b, s, len);
		return;
	case TOML_ARRAY:
		count = toml_node_count(n);
		put_str(b, "[");
		for (size_t i = 0; i < count; i++) {
			canon(b, toml_node_at(n, i));
			put_str(b, ",");
		}
		put_str(b, "]");
		return;
	case TOML_TABLE:
		count = toml_node_count(n);
		struct member *m = calloc(count ? count : 1, sizeof *m);
		if (!m) {
			b->failed = 1;
			return;
		}
		for (size_t i = 0; i < count; i++) {
			m[i].node = toml_node_at(n, i);
			m[i].key = toml_node_key(m[i].node, &m[i].len);
		}
		qsort(m, count, sizeof *m, member_cmp);
		put_str(b, "{");
		for (size_t i = 0; i < count; i++) {
			put_counted(b, m[i].key, m[i].len);
			put_str(b, "=");
			canon(b, m[i].node);
			put_str(b, ",");
		}
		put_str(b, "}");
		free(m);
		return;
	}
}

void workspace_keys_free(char **out, size_t nkeys)
{
	for (size_t i = 0; i < nkeys; i++) {
		free(out[i]);
		out[i] = NULL;
	}
}

int workspace_keys_read(const char *text, size_t len, const char *const *keys, size_t nkeys, char **out)
{
	for (size_t i = 0; i < nkeys; i++)
		out[i] = NULL;
	toml_doc *doc = NULL;
	if (toml_doc_parse(&doc, text, len, NULL) != 0) {
		for (size_t i = 0; i < nkeys; i++) {
			out[i] = malloc(sizeof BROKEN);
			if (!out[i]) {
				workspace_keys_free(out, nkeys);
				return -1;
			}
			memcpy(out[i], BROKEN, sizeof BROKEN);
		}
		return 1;
	}
	const toml_node *ws = toml_node_get(toml_doc_root(doc), "workspace", 9);
	int rc = 0;
	for (size_t i = 0; i < nkeys && rc == 0; i++) {
		const char *dot = strchr(keys[i], '.');
		if (!dot)
			continue;
		const toml_node *table = toml_node_get(ws, keys[i], (size_t)(dot - keys[i]));
		const toml_node *value = toml_node_get(table, dot + 1, strlen(dot + 1));
		if (!value)
			continue;
		struct buf b = {0};
		if (toml_node_type(value) == TOML_STRING && dot - keys[i] == 12 &&
		    memcmp(keys[i], "dependencies", 12) == 0) {
			/* serde = "1" is serde = { version = "1" }: write it as the table */
			put_str(&b, "{");
			put_counted(&b, "version", 7);
			put_str(&b, "=");
			canon(&b, value);
			put_str(&b, ",}");
		} else {
			canon(&b, value);
		}
		if (b.failed) {
			free(b.p);
			rc = -1;
			break;
		}
		out[i] = b.p;
	}
	toml_doc_free(doc);
	if (rc < 0)
		workspace_keys_free(out, nkeys);
	return rc;
}
