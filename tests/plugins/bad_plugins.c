/*
 * bad_plugins.c: one source, several deliberately broken plugins, chosen by
 * BAD_KIND at compile time.  Each is built as a real .so and must be refused
 * by the real loader with a message that says why.
 */
#include <parley/parley.h>

__attribute__((unused)) static int create(const struct parley_host *h, parley_instance *i, void *pd, void **data,
                                          char **err)
{
	(void)h;
	(void)i;
	(void)pd;
	(void)err;
	*data = 0;
	return 0;
}

#if BAD_KIND == 1 /* wrong magic */
static const struct parley_plugin desc = {
        .magic = 0xdeadbeefu,
        .abi_major = PARLEY_ABI_MAJOR,
        .abi_minor = PARLEY_ABI_MINOR,
        .struct_size = sizeof(struct parley_plugin),
        .kind = PARLEY_KIND_CHANNEL,
        .name = "badmagic",
        .version = "0.0.1",
        .instance_create = create,
};
PARLEY_PLUGIN_DEFINE(desc)
#elif BAD_KIND == 2 /* built for a future ABI major; its entry answers anyway */
static const struct parley_plugin desc = {
        .magic = PARLEY_PLUGIN_MAGIC,
        .abi_major = 2,
        .abi_minor = 3,
        .struct_size = sizeof(struct parley_plugin),
        .kind = PARLEY_KIND_CHANNEL,
        .name = "future",
        .version = "9.0.0",
        .instance_create = create,
};
PARLEY_EXPORT const struct parley_plugin *parley_plugin_entry(uint32_t host_abi);
PARLEY_EXPORT const struct parley_plugin *parley_plugin_entry(uint32_t host_abi)
{
	(void)host_abi;
	return &desc;
}
#elif BAD_KIND == 3 /* descriptor smaller than ABI 1.0's */
static const struct parley_plugin desc = {
        .magic = PARLEY_PLUGIN_MAGIC,
        .abi_major = PARLEY_ABI_MAJOR,
        .abi_minor = 0,
        .struct_size = 24,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "tiny",
        .version = "0.0.1",
        .instance_create = create,
};
PARLEY_PLUGIN_DEFINE(desc)
#elif BAD_KIND == 4 /* no entry symbol at all */
PARLEY_EXPORT int not_a_parley_plugin(void);
PARLEY_EXPORT int not_a_parley_plugin(void)
{
	return 42;
}
#elif BAD_KIND == 5 /* a second channel type named "webhook" */
static const struct parley_plugin desc = {
        .magic = PARLEY_PLUGIN_MAGIC,
        .abi_major = PARLEY_ABI_MAJOR,
        .abi_minor = PARLEY_ABI_MINOR,
        .struct_size = sizeof(struct parley_plugin),
        .kind = PARLEY_KIND_CHANNEL,
        .name = "webhook",
        .version = "0.0.1",
        .instance_create = create,
};
PARLEY_PLUGIN_DEFINE(desc)
#elif BAD_KIND == 6 /* a good third-party plugin next to the bad ones */
static const struct parley_config_key keys[] = {
        {"greeting", PARLEY_CFG_STRING, "hi", 0, "a word"},
        {NULL, 0, NULL, 0, NULL},
};
static const struct parley_plugin desc = {
        .magic = PARLEY_PLUGIN_MAGIC,
        .abi_major = PARLEY_ABI_MAJOR,
        .abi_minor = PARLEY_ABI_MINOR,
        .struct_size = sizeof(struct parley_plugin),
        .kind = PARLEY_KIND_CHANNEL,
        .name = "thirdparty",
        .version = "2.1.0",
        .config = keys,
        .instance_create = create,
};
PARLEY_PLUGIN_DEFINE(desc)
#elif BAD_KIND == 7 /* not bad: built for the next ABI minor, with a descriptor slot this host does not know */
struct newer_plugin {
	struct parley_plugin base;
	int (*future_slot)(void *data);
};
static const struct newer_plugin desc = {
        .base =
                {
                        .magic = PARLEY_PLUGIN_MAGIC,
                        .abi_major = PARLEY_ABI_MAJOR,
                        .abi_minor = PARLEY_ABI_MINOR + 1,
                        .struct_size = sizeof(struct newer_plugin),
                        .kind = PARLEY_KIND_CHANNEL,
                        .name = "newer",
                        .version = "3.0.0",
                        .instance_create = create,
                },
};
PARLEY_PLUGIN_DEFINE(desc.base)
#endif
