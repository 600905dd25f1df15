/* builtins.h - the one table of built-in functions (SPEC §5) and of properties (SPEC §4.5). */
#ifndef KFPC_BUILTINS_H
#define KFPC_BUILTINS_H

enum builtin_id {
	BUILTIN_COLLECT, /* collect(step.output): fan-in over the loops between */
	BUILTIN_LEN,     /* len(list|map|string): int, conditions only */
	BUILTIN_SECRET,  /* secret("NAME"): env values only */
};

struct builtin {
	const char *name;
	enum builtin_id id;
	int nargs;
};

/* Returns the builtin NAME, or NULL. Static storage. */
const struct builtin *builtin_find(const char *name);

/* Where a property may be written (bits). */
enum {
	PROP_IN_STEP = 1 << 0,      /* inline step body */
	PROP_IN_OVERRIDE = 1 << 1,  /* override block of a component step */
	PROP_IN_COMPONENT = 1 << 2, /* component body */
	PROP_IN_DEFAULTS = 1 << 3,  /* pipeline defaults { } */
	PROP_IN_SUB = 1 << 4,       /* override block of a sub-pipeline step */
	PROP_IN_PIPELINE = 1 << 5,  /* pipeline body */
	PROP_REPEATABLE = 1 << 6,   /* may be written more than once at one level */
};

enum prop_id {
	PROP_IMAGE,
	PROP_RUN,
	PROP_SCRIPT,
	PROP_ENV,
	PROP_WORKDIR,
	PROP_RESOURCES,
	PROP_RETRY,
	PROP_TIMEOUT,
	PROP_CACHE,
	PROP_AFTER,
	PROP_NODE_SELECTOR,
	PROP_TOLERATION,
	PROP_LABELS,
	PROP_VOLUME,
	PROP_DEFAULTS,
	PROP_PARALLELISM,
	PROP_SCHEDULE,
	PROP_COUNT
};

struct propdef {
	const char *name;
	enum prop_id id;
	unsigned where; /* PROP_IN_* and PROP_REPEATABLE bits */
	const char *usage; /* shape, for E103 messages */
};

/* Returns the property NAME, or NULL. Static storage. */
const struct propdef *prop_find(const char *name);

/* Returns the property with id ID. Static storage. */
const struct propdef *prop_get(enum prop_id id);

#endif
