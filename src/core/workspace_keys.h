#ifndef CDP_WORKSPACE_KEYS_H
#define CDP_WORKSPACE_KEYS_H
#include <stddef.h>

/*
 * What a crate inherits from its workspace, as comparable text: the entries
 * of [workspace.dependencies] and [workspace.package] in a root manifest.
 *
 * KEYS are paths under [workspace], "dependencies.serde" or
 * "package.edition" (the first '.' splits the table from the entry). For
 * each, OUT[i] gets a canonical text of its value (NULL when the manifest
 * has no such entry): the same for the same TOML value however it is
 * written (quotes, spacing, key order, inline or dotted tables, comments),
 * different for different values; a dependency given as a string is its
 * { version = ... } table, as cargo reads it. Returns 0; 1 when the text is not TOML
 * (every OUT[i] is then the same marker, so two broken manifests compare
 * equal and a broken one differs from any readable one); -1 when out of
 * memory (nothing allocated).
 */
int workspace_keys_read(const char *text, size_t len, const char *const *keys, size_t nkeys, char **out);

/* Free the NKEYS strings of OUT. */
void workspace_keys_free(char **out, size_t nkeys);

#endif
