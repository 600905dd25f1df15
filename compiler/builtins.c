/* builtins.c - the tables of built-in functions and properties. */
#include "builtins.h"

#include <string.h>

static const struct builtin builtins[] = {
	{"collect", BUILTIN_COLLECT, 1},
	{"len", BUILTIN_LEN, 1},
	{"secret", BUILTIN_SECRET, 1},
};

const struct builtin *builtin_find(const char *name)
{
	for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
		if (!strcmp(builtins[i].name, name))
			return &builtins[i];
	return NULL;
}

#define STEPLIKE (PROP_IN_STEP | PROP_IN_OVERRIDE | PROP_IN_COMPONENT)

/* In the order of enum prop_id. */
static const struct propdef props[] = {
	{"image", PROP_IMAGE, STEPLIKE | PROP_IN_DEFAULTS, "image \"NAME[:TAG]\""},
	{"run", PROP_RUN, STEPLIKE, "run [\"ARG\", ...]"},
	{"script", PROP_SCRIPT, STEPLIKE, "script sh|bash|python|python3|\"ARGV PREFIX\" \"TEXT\""},
	{"env", PROP_ENV, STEPLIKE | PROP_IN_DEFAULTS,
	 "env { NAME = \"VALUE\"  NAME = secret(\"SECRET\") }"},
	{"workdir", PROP_WORKDIR, STEPLIKE | PROP_IN_DEFAULTS, "workdir \"PATH\""},
	{"resources", PROP_RESOURCES, STEPLIKE | PROP_IN_DEFAULTS,
	 "resources { cpu \"500m\"  memory \"512Mi\"  gpu 1 }"},
	{"retry", PROP_RETRY, STEPLIKE | PROP_IN_DEFAULTS,
	 "retry N [backoff DURATION] [factor NUMBER] [max DURATION] [on [error, timeout, oom, infra]]"},
	{"timeout", PROP_TIMEOUT, STEPLIKE | PROP_IN_DEFAULTS | PROP_IN_PIPELINE, "timeout DURATION"},
	{"cache", PROP_CACHE, STEPLIKE | PROP_IN_DEFAULTS, "cache on [max_age DURATION] | cache off"},
	{"after", PROP_AFTER, PROP_IN_STEP | PROP_IN_OVERRIDE | PROP_IN_SUB | PROP_REPEATABLE,
	 "after STEP, STEP ..."},
	{"node_selector", PROP_NODE_SELECTOR, STEPLIKE, "node_selector { \"KEY\" = \"VALUE\" }"},
	{"toleration", PROP_TOLERATION, STEPLIKE | PROP_REPEATABLE,
	 "toleration \"KEY\" [operator \"Equal|Exists\"] [value \"V\"] [effect \"EFFECT\"]"},
	{"labels", PROP_LABELS, STEPLIKE, "labels { KEY = \"VALUE\" }"},
	{"volume", PROP_VOLUME, STEPLIKE | PROP_REPEATABLE,
	 "volume \"NAME\" mount \"/PATH\" [readonly]"},
	{"defaults", PROP_DEFAULTS, PROP_IN_PIPELINE, "defaults { PROPERTY ... }"},
	{"parallelism", PROP_PARALLELISM, PROP_IN_PIPELINE, "parallelism N"},
	{"schedule", PROP_SCHEDULE, PROP_IN_PIPELINE | PROP_REPEATABLE,
	 "schedule \"CRON\" [tz \"ZONE\"]"},
};

const struct propdef *prop_find(const char *name)
{
	for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
		if (!strcmp(props[i].name, name))
			return &props[i];
	return NULL;
}

const struct propdef *prop_get(enum prop_id id)
{
	return &props[id];
}
