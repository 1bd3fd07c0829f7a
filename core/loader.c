/* loader.c: find, open and check plugin shared objects. */
#include "loader.h"
#include "config.h"
#include "util.h"

#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PARLEY_PLUGIN_DIR
#define PARLEY_PLUGIN_DIR "/usr/local/lib/parley/plugins"
#endif
#ifndef PARLEY_PLUGIN_RELDIR
#define PARLEY_PLUGIN_RELDIR "../lib/parley/plugins"
#endif

const char *loader_kind_name(int kind)
{
	switch (kind) {
	case PARLEY_KIND_CHANNEL:
		return "channel";
	case PARLEY_KIND_STEP:
		return "step";
	case PARLEY_KIND_ROUTER:
		return "router";
	case PARLEY_KIND_STORE:
		return "store";
	case PARLEY_KIND_BUS:
		return "bus";
	default:
		return "unknown";
	}
}

int loader_kind_from_name(const char *name)
{
	for (int k = PARLEY_KIND_CHANNEL; k <= PARLEY_KIND_BUS; k++)
		if (strcmp(loader_kind_name(k), name) == 0)
			return k;
	return 0;
}

size_t loader_default_dirs(char ***dirs)
{
	char **d = calloc(3, sizeof(char *));
	size_t n = 0;
	char *self = path_self_dir();
	if (self) {
		/* The build tree keeps plugins in plugins/ next to the binary. */
		d[n++] = str_printf("%s/plugins", self);
		d[n++] = str_printf("%s/" PARLEY_PLUGIN_RELDIR, self);
		free(self);
	}
	d[n++] = strdup(PARLEY_PLUGIN_DIR);
	*dirs = d;
	return n;
}

static void refuse(struct plugin_registry *reg, const char *path, char *reason)
{
	struct plugin_refusal *nr = realloc(reg->refused, (reg->n_refused + 1) * sizeof(*nr));
	if (!nr) {
		free(reason);
		return;
	}
	reg->refused = nr;
	reg->refused[reg->n_refused].path = strdup(path);
	reg->refused[reg->n_refused].reason = reason;
	reg->n_refused++;
}

/*
 * The last slot this host knows of its descriptor and of its host table:
 * a plugin built for a newer ABI minor is told apart by what lies past
 * them.  The assertions make appending a slot without naming it here a
 * build error.
 */
#define LAST_PLUGIN_SLOT "offer"
#define LAST_HOST_SLOT   "health"
_Static_assert(offsetof(struct parley_plugin, offer) + sizeof(void (*)(void)) == sizeof(struct parley_plugin),
               "name the descriptor's new last slot in LAST_PLUGIN_SLOT");
_Static_assert(offsetof(struct parley_host, health) + sizeof(void (*)(void)) == sizeof(struct parley_host),
               "name the host table's new last slot in LAST_HOST_SLOT");

/*
 * A plugin built for a newer minor than this host loads (minors only add
 * optional slots), but it should know, and its operator too, what it will
 * not get: the descriptor slots past ours are never read, and the host
 * functions past ours are absent (PARLEY_HOST_HAS says so to the plugin).
 */
static char *newer_minor_notice(const struct parley_plugin *d)
{
	char ignored[96] = "";
	if (d->struct_size > sizeof(struct parley_plugin))
		snprintf(ignored, sizeof(ignored),
		         "its descriptor's %zu bytes past '" LAST_PLUGIN_SLOT "' are ignored, ",
		         (size_t)d->struct_size - sizeof(struct parley_plugin));
	return str_printf("was built for plugin ABI %u.%u, newer than this host's %d.%d: loaded without the optional "
	                  "slots ABI %d.%d and later added: %sand the host functions after '" LAST_HOST_SLOT
	                  "' are absent (the plugin sees it with PARLEY_HOST_HAS); upgrade parley to give it them",
	                  d->abi_major, d->abi_minor, PARLEY_ABI_MAJOR, PARLEY_ABI_MINOR, PARLEY_ABI_MAJOR,
	                  PARLEY_ABI_MINOR + 1, ignored);
}

static int valid_name(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

int loader_open(struct plugin_registry *reg, const char *path)
{
	for (size_t i = 0; i < reg->n; i++)
		if (strcmp(reg->items[i].path, path) == 0)
			return 0;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		refuse(reg, path, str_printf("cannot be loaded: %s", dlerror()));
		return -1;
	}
	union {
		void *obj;
		parley_plugin_entry_fn fn;
	} sym;
	sym.obj = dlsym(h, PARLEY_PLUGIN_ENTRY_SYMBOL);
	if (!sym.obj) {
		refuse(reg, path,
		       str_printf(
		               "has no entry symbol '%s': is it a Parley plugin? Define it with PARLEY_PLUGIN_DEFINE()",
		               PARLEY_PLUGIN_ENTRY_SYMBOL));
		dlclose(h);
		return -1;
	}
	const struct parley_plugin *d = sym.fn((uint32_t)PARLEY_ABI_MAJOR << 16 | PARLEY_ABI_MINOR);
	char *why = NULL;
	if (!d)
		why = str_printf(
		        "refused this host's ABI %d.%d (its entry returned no descriptor): rebuild it against ABI %d",
		        PARLEY_ABI_MAJOR, PARLEY_ABI_MINOR, PARLEY_ABI_MAJOR);
	else if (d->magic != PARLEY_PLUGIN_MAGIC)
		why = str_printf("is not a Parley plugin descriptor (magic 0x%08x, expected 0x%08x)", d->magic,
		                 PARLEY_PLUGIN_MAGIC);
	else if (d->abi_major != PARLEY_ABI_MAJOR)
		why = str_printf("was built for plugin ABI %u.%u but this host speaks ABI %d.%d: rebuild it against "
		                 "this parley.h",
		                 d->abi_major, d->abi_minor, PARLEY_ABI_MAJOR, PARLEY_ABI_MINOR);
	else if (d->struct_size < PARLEY_PLUGIN_MIN_SIZE_V1)
		why = str_printf("has a descriptor of %u bytes, smaller than the %zu bytes of ABI %d.0 (plugin ABI "
		                 "%u.%u, host ABI %d.%d): rebuild it",
		                 d->struct_size, (size_t)PARLEY_PLUGIN_MIN_SIZE_V1, PARLEY_ABI_MAJOR, d->abi_major,
		                 d->abi_minor, PARLEY_ABI_MAJOR, PARLEY_ABI_MINOR);
	else if (d->kind < PARLEY_KIND_CHANNEL || d->kind > PARLEY_KIND_BUS)
		why = str_printf("declares an unknown plugin kind %d", d->kind);
	else if (!valid_name(d->name))
		why = str_printf("has an invalid name '%s' (use lower-case letters, digits, '-' and '_')",
		                 d->name ? d->name : "");
	else if (!d->instance_create)
		why = str_printf("plugin '%s' has no instance_create()", d->name);
	else if (d->kind == PARLEY_KIND_STORE && (!d->store || !d->store->commit || !d->store->query))
		why = str_printf("store plugin '%s' has no store operations", d->name);
	else if (d->kind == PARLEY_KIND_BUS &&
	         (d->struct_size < offsetof(struct parley_plugin, bus) + sizeof(d->bus) || !d->bus || !d->bus->publish))
		why = str_printf("bus plugin '%s' has no bus operations (ABI 1.2 `bus` with publish())", d->name);
	else if ((d->kind == PARLEY_KIND_STEP || d->kind == PARLEY_KIND_ROUTER) && !d->process)
		why = str_printf("%s plugin '%s' has no process()", loader_kind_name(d->kind), d->name);
	else {
		const struct plugin_entry *dup = loader_find(reg, d->kind, d->name);
		if (dup)
			why = str_printf("is a second %s plugin named '%s' (the first is %s): rename or remove one",
			                 loader_kind_name(d->kind), d->name, dup->path);
	}
	if (why) {
		refuse(reg, path, why);
		dlclose(h);
		return -1;
	}
	struct plugin_entry *ni = realloc(reg->items, (reg->n + 1) * sizeof(*ni));
	if (!ni) {
		dlclose(h);
		return -1;
	}
	reg->items = ni;
	memset(&reg->items[reg->n], 0, sizeof(reg->items[reg->n]));
	reg->items[reg->n].path = strdup(path);
	reg->items[reg->n].handle = h;
	reg->items[reg->n].desc = d;
	if (d->abi_minor > PARLEY_ABI_MINOR)
		reg->items[reg->n].notice = newer_minor_notice(d);
	reg->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void loader_scan(struct plugin_registry *reg, char *const *dirs, size_t ndirs)
{
	for (size_t i = 0; i < ndirs; i++) {
		DIR *d = opendir(dirs[i]);
		if (!d)
			continue;
		char **names = NULL;
		size_t nn = 0;
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			size_t l = strlen(de->d_name);
			if (l < 4 || strcmp(de->d_name + l - 3, ".so") != 0)
				continue;
			char **g = realloc(names, (nn + 1) * sizeof(*g));
			if (!g)
				break;
			names = g;
			names[nn++] = str_printf("%s/%s", dirs[i], de->d_name);
		}
		closedir(d);
		/* A stable order makes "the first" of two duplicates predictable. */
		qsort(names, nn, sizeof(*names), cmp_str);
		for (size_t j = 0; j < nn; j++) {
			char *real = realpath(names[j], NULL);
			loader_open(reg, real ? real : names[j]);
			free(real);
			free(names[j]);
		}
		free(names);
	}
}

const struct plugin_entry *loader_find(const struct plugin_registry *reg, int kind, const char *name)
{
	for (size_t i = 0; i < reg->n; i++)
		if (reg->items[i].desc->kind == kind && strcmp(reg->items[i].desc->name, name) == 0)
			return &reg->items[i];
	return NULL;
}

int loader_init_plugin(const struct plugin_registry *reg, const struct plugin_entry *ce, const struct parley_host *host,
                       char **errmsg)
{
	if (ce->initialized) /* also an isolated instance's proxy entry, which is not in reg (isolate.h) */
		return 0;
	struct plugin_entry *e = &reg->items[ce - reg->items];
	if (e->desc->init) {
		int rv = e->desc->init(host, &e->plugin_data, errmsg);
		if (rv != 0)
			return -1;
	}
	e->initialized = 1;
	return 0;
}

void loader_free(struct plugin_registry *reg)
{
	for (size_t i = 0; i < reg->n; i++) {
		struct plugin_entry *e = &reg->items[i];
		if (e->initialized && e->desc->fini)
			e->desc->fini(e->plugin_data);
			/*
			 * dlclose is safe here because every instance has been stopped
			 * and destroyed.  Under AddressSanitizer objects stay mapped until
			 * exit: the leak checker would lose their symbols, and report what
			 * the client libraries they pulled in keep in their own statics.
			 */
#if defined(__SANITIZE_ADDRESS__)
		(void)e->handle;
#else
		dlclose(e->handle);
#endif
		free(e->path);
		free(e->notice);
	}
	free(reg->items);
	for (size_t i = 0; i < reg->n_refused; i++) {
		free(reg->refused[i].path);
		free(reg->refused[i].reason);
	}
	free(reg->refused);
	memset(reg, 0, sizeof(*reg));
}

static const char *type_name(int t)
{
	switch (t) {
	case PARLEY_CFG_STRING:
		return "a string";
	case PARLEY_CFG_INT:
		return "an integer";
	case PARLEY_CFG_BOOL:
		return "true or false";
	case PARLEY_CFG_SIZE:
		return "a size";
	case PARLEY_CFG_DURATION:
		return "a duration";
	case PARLEY_CFG_LIST:
		return "a list";
	case PARLEY_CFG_MAP:
		return "a mapping";
	default:
		return "a value";
	}
}

/* The type as `parley plugins NAME` prints it: the word a config author writes the value as. */
static const char *type_word(int t)
{
	static const char *const words[] = {"?", "string", "int", "bool", "size", "duration", "list", "map", "any"};
	return t >= PARLEY_CFG_STRING && t <= PARLEY_CFG_ANY ? words[t] : words[0];
}

static void default_text(const struct parley_config_key *k, char *out, size_t cap)
{
	if (!k->default_value)
		snprintf(out, cap, "-");
	else if (k->type == PARLEY_CFG_STRING)
		snprintf(out, cap, "\"%s\"", k->default_value);
	else
		snprintf(out, cap, "%s", k->default_value);
}

void loader_describe(const struct plugin_entry *e, FILE *out)
{
	const struct parley_plugin *d = e->desc;
	fprintf(out, "%s: %s plugin %s, ABI %u.%u, %s\n", d->name, loader_kind_name(d->kind),
	        d->version ? d->version : "-", d->abi_major, d->abi_minor, e->path);
	if (d->description)
		fprintf(out, "%s\n", d->description);
	if (e->notice)
		fprintf(out, "notice: %s\n", e->notice);
	const struct parley_config_key *map = d->config;
	if (!map || !map[0].name) {
		fprintf(out, "\nno config keys\n");
		return;
	}
	int wk = 3, wd = 7;
	char def[256];
	for (size_t i = 0; map[i].name; i++) {
		default_text(&map[i], def, sizeof(def));
		wk = strlen(map[i].name) > (size_t)wk ? (int)strlen(map[i].name) : wk;
		wd = strlen(def) > (size_t)wd ? (int)strlen(def) : wd;
	}
	fprintf(out, "\n  %-*s  %-8s  %-*s  %-15s  %s\n", wk, "KEY", "TYPE", wd, "DEFAULT", "FLAGS", "HELP");
	for (size_t i = 0; map[i].name; i++) {
		unsigned f = map[i].flags;
		default_text(&map[i], def, sizeof(def));
		const char *flags = (f & PARLEY_CFG_REQUIRED) && (f & PARLEY_CFG_SECRET) ? "required,secret"
		                    : (f & PARLEY_CFG_REQUIRED)                          ? "required"
		                    : (f & PARLEY_CFG_SECRET)                            ? "secret"
		                                                                         : "-";
		fprintf(out, "  %-*s  %-8s  %-*s  %-15s  %s\n", wk, map[i].name, type_word(map[i].type), wd, def, flags,
		        map[i].help ? map[i].help : "");
	}
}

void loader_check_config(const struct plugin_entry *e, const struct cfg_node *config, const struct cfg_node *at,
                         const char *file, const char *what, struct cfg_errors *errs)
{
	const struct parley_config_key *map = e->desc->config;
	size_t nk = 0;
	while (map && map[nk].name)
		nk++;
	const char **names = calloc(nk + 1, sizeof(char *));
	for (size_t i = 0; i < nk; i++)
		names[i] = map[i].name;
	char *label = str_printf("%s config (%s plugin '%s')", what, loader_kind_name(e->desc->kind), e->desc->name);
	cfg_check_keys(file, config, names, label, errs);
	free(label);
	free(names);
	for (size_t i = 0; i < nk; i++) {
		const struct cfg_node *v = cfg_map_get(config, map[i].name);
		if (!v) {
			if ((map[i].flags & PARLEY_CFG_REQUIRED) && !map[i].default_value)
				cfg_errors_add(errs, file, config ? config : at, "%s needs config key '%s' (%s): %s",
				               what, map[i].name, type_name(map[i].type),
				               map[i].help ? map[i].help : "");
			continue;
		}
		char err[128];
		int ok = 1;
		int64_t iv;
		uint64_t uv;
		int bv;
		switch (map[i].type) {
		case PARLEY_CFG_LIST:
			ok = v->type == CFG_SEQ;
			break;
		case PARLEY_CFG_MAP:
			ok = v->type == CFG_MAP;
			break;
		case PARLEY_CFG_ANY:
			break;
		default:
			if (v->type != CFG_SCALAR) {
				ok = 0;
				break;
			}
			if (map[i].type == PARLEY_CFG_INT && cfg_parse_int(v->value, &iv, err) != 0)
				ok = -1;
			if (map[i].type == PARLEY_CFG_BOOL && cfg_parse_bool(v->value, &bv, err) != 0)
				ok = -1;
			if (map[i].type == PARLEY_CFG_SIZE && cfg_parse_size(v->value, &uv, err) != 0)
				ok = -1;
			if (map[i].type == PARLEY_CFG_DURATION && cfg_parse_duration_ms(v->value, &iv, err) != 0)
				ok = -1;
			if (ok > 0 && (map[i].flags & PARLEY_CFG_REQUIRED) && v->value[0] == '\0') {
				cfg_errors_add(errs, file, v, "%s: '%s' is empty: %s", what, map[i].name,
				               map[i].help ? map[i].help : "give it a value");
			}
		}
		if (ok == 0)
			cfg_errors_add(errs, file, v, "%s: '%s' must be %s", what, map[i].name, type_name(map[i].type));
		else if (ok < 0)
			cfg_errors_add(errs, file, v, "%s: '%s': %s", what, map[i].name, err);
	}
}
