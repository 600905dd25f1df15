/* cache.h - step result caching (SPEC §6.7).
 *
 * The key is SHA-256 (libcrypto EVP) over the canonical JSON serialisation (objects with
 * sorted keys, no white space) of a "cache view" of the step that the scheduler builds: the
 * image, the argv and script text with every value placeholder resolved but output paths and
 * artifact input paths kept as placeholders (they differ per attempt), the non-secret env
 * (secret entries by secret name only), the workdir, the output declarations, the input values
 * and the input artifacts' digests. A format version is part of the view.
 *
 * Lookups and records go through store.h; cache_lookup also checks max_age and that every
 * artifact of the entry is still in the CAS (art.h). */
#ifndef KFPC_CACHE_H
#define KFPC_CACHE_H

#include <stddef.h>

#include <json-c/json.h>

#include "art.h"
#include "store.h"

/* Size of a hex key buffer (64 hex digits and a NUL). */
#define CACHE_KEY_SIZE 65

/* Why a lookup did not hit. */
enum cache_miss {
	CACHE_HIT = 0,
	CACHE_MISS_NONE,     /* no entry for the key */
	CACHE_MISS_EXPIRED,  /* older than max_age */
	CACHE_MISS_ARTS,     /* an artifact of the entry is no longer stored */
};

/* Compute the key of VIEW (borrowed) into key[CACHE_KEY_SIZE]. Returns 0, or -1 when out of
 * memory or the digest fails. */
int cache_key(json_object *view, char key[CACHE_KEY_SIZE]);

/* A new object: V with every object's keys sorted (recursively); arrays keep their order.
 * Caller owns the reference. NULL when out of memory. */
json_object *cache_canonical(json_object *v);

/* Look KEY up. On a hit returns CACHE_HIT and sets *hit (caller frees with store_cache_free);
 * otherwise returns the miss reason (and *hit is NULL), or a negative store code on a store
 * error (store_errmsg). MAX_AGE: seconds, 0 none. NOW: current time. */
int cache_lookup(struct store *st, struct art *art, const char *key, double max_age, double now,
		 struct store_cache **hit);

/* A static description of a miss reason ("no cache entry", "expired", ...). */
const char *cache_miss_name(int miss);

#endif
