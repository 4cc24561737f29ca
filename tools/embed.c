/*
 * cdp-embed OUT FILE... [--scripts FILE...] — compile Lua sources into C tables.
 *
 * Each FILE is a path relative to the source root (lua/cdp/plan.lua,
 * stdlib/cdp/stages/tag.lua). The module name drops the first directory and
 * the extension (cdp.plan, cdp.stages.tag), and the chunk name is "@" + the
 * path, so tracebacks name the real file. A top-level package's init.lua is
 * the package (lua/cdp/init.lua is cdp); deeper, init is a module's name like
 * any other (lua/cdp/commands/init.lua is cdp.commands.init, the `cdp init`
 * command), so cdp.commands names nothing.
 * Files after --scripts are scripts, not modules (pipelines/release.lua): they
 * go to a table of their own, named by their file name without .lua
 * ("release"), so `require` never finds them and `cdp run release` does.
 * A module is embedded twice: as its source bytes (what cdp.host.source
 * returns, and stage keys hash) and as Lua bytecode compiled here with the
 * liblua cdp links, debug information kept (lua_dump with strip = 0), so line
 * numbers and chunk names in tracebacks are those of the source. `require`
 * loads the bytecode: parsing 130 kB of source is 3.5 ms of every start of
 * cdp, loading its bytecode 0.4 ms. A module that does not compile fails the
 * build, naming file and line. Scripts stay source only: they are what a
 * user reads and copies, and are loaded once.
 */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *module_name(const char *path)
{
	const char *p = strchr(path, '/');
	p = p ? p + 1 : path;
	char *name = strdup(p);
	if (!name)
		return NULL;
	size_t n = strlen(name);
	if (n > 4 && strcmp(name + n - 4, ".lua") == 0)
		name[n -= 4] = '\0';
	if (n > 5 && strcmp(name + n - 5, "/init") == 0 && memchr(name, '/', n - 5) == NULL)
		name[n -= 5] = '\0';
	for (char *c = name; *c; c++)
		if (*c == '/')
			*c = '.';
	return name;
}

/* A script's name: its file name without the directory and .lua. */
static char *script_name(const char *path)
{
	const char *p = strrchr(path, '/');
	char *name = strdup(p ? p + 1 : path);
	if (!name)
		return NULL;
	size_t n = strlen(name);
	if (n > 4 && strcmp(name + n - 4, ".lua") == 0)
		name[n - 4] = '\0';
	return name;
}

struct buffer {
	unsigned char *data;
	size_t size, cap;
};

static int buffer_add(struct buffer *b, const void *p, size_t n)
{
	if (b->size + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->size + n)
			cap *= 2;
		unsigned char *grown = realloc(b->data, cap);
		if (!grown)
			return -1;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->size, p, n);
	b->size += n;
	return 0;
}

static int dump_writer(lua_State *L, const void *p, size_t n, void *ud)
{
	(void)L;
	return buffer_add(ud, p, n);
}

/* "static const TYPE NAMEINDEX[] = {...}", with a NUL after the bytes when NUL is set. */
static void emit_bytes(FILE *out, const char *type, const char *name, int index, const struct buffer *b, int nul)
{
	fprintf(out, "static const %s %s%d[] = {", type, name, index);
	for (size_t n = 0; n < b->size; n++)
		fprintf(out, "%s%d,", n % 24 ? "" : "\n", b->data[n]);
	fprintf(out, "%s};\n", nul ? "0" : "");
}

static int read_file(const char *path, struct buffer *b)
{
	FILE *in = fopen(path, "rb");
	if (!in) {
		perror(path);
		return -1;
	}
	char chunk[8192];
	size_t n;
	int failed = 0;
	while (!failed && (n = fread(chunk, 1, sizeof chunk, in)) > 0)
		failed = buffer_add(b, chunk, n) != 0;
	failed = failed || ferror(in);
	fclose(in);
	if (failed)
		fprintf(stderr, "%s: cannot read it\n", path);
	return failed ? -1 : 0;
}

/* The source of file INDEX as srcINDEX and, for a module (L not NULL), its
 * bytecode as bcINDEX. */
static int emit_file(FILE *out, lua_State *L, const char *path, int index)
{
	struct buffer src = {0}, bc = {0};
	int failed = read_file(path, &src);
	if (!failed)
		emit_bytes(out, "char", "src", index, &src, 1);
	if (!failed && L) {
		const char *chunkname = lua_pushfstring(L, "@%s", path);
		if (luaL_loadbufferx(L, (const char *)src.data, src.size, chunkname, "t") != LUA_OK) {
			fprintf(stderr, "%s\n", lua_tostring(L, -1));
			failed = 1;
		} else if (lua_dump(L, dump_writer, &bc, 0) != 0) {
			fprintf(stderr, "%s: cannot dump its bytecode\n", path);
			failed = 1;
		} else {
			emit_bytes(out, "unsigned char", "bc", index, &bc, 0);
		}
		lua_settop(L, 0);
	}
	free(src.data);
	free(bc.data);
	return failed ? -1 : 0;
}

/* The table NAME of files FIRST..LAST-1, named by NAMING. */
static int emit_table(FILE *out, const char *table, char **argv, int first, int last,
                      char *(*naming)(const char *))
{
	fprintf(out, "const struct cdp_embedded %s[] = {\n", table);
	for (int i = first; i < last; i++) {
		char *name = naming(argv[i]);
		if (!name)
			return -1;
		if (naming == module_name)
			fprintf(out, "\t{\"%s\", \"%s\", src%d, sizeof src%d - 1, bc%d, sizeof bc%d},\n", name, argv[i], i,
			        i, i, i);
		else
			fprintf(out, "\t{\"%s\", \"%s\", src%d, sizeof src%d - 1, 0, 0},\n", name, argv[i], i, i);
		free(name);
	}
	fprintf(out, "\t{0, 0, 0, 0, 0, 0}\n};\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: cdp-embed OUT [FILE.lua...] [--scripts FILE.lua...]\n");
		return 2;
	}
	int sep = argc; /* the index of --scripts, or argc: no scripts */
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "--scripts") == 0) {
			sep = i;
			break;
		}
	FILE *out = fopen(argv[1], "w");
	if (!out) {
		perror(argv[1]);
		return 1;
	}
	lua_State *L = luaL_newstate();
	if (!L) {
		fprintf(stderr, "cdp-embed: not enough memory\n");
		return 1;
	}
	fprintf(out, "/* Generated by tools/embed.c; do not edit. */\n#include \"embedded.h\"\n");
	int failed = 0;
	for (int i = 2; i < argc && !failed; i++)
		if (i != sep)
			failed = emit_file(out, i < sep ? L : NULL, argv[i], i) != 0;
	lua_close(L);
	if (failed) {
		fclose(out);
		remove(argv[1]);
		return 1;
	}
	if (emit_table(out, "cdp_embedded", argv, 2, sep, module_name) != 0 ||
	    emit_table(out, "cdp_scripts", argv, sep + 1, argc, script_name) != 0)
		return 1;
	if (fclose(out) != 0) {
		perror(argv[1]);
		return 1;
	}
	return 0;
}
