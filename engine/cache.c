/* cache.c - cache keys (canonical JSON + SHA-256) and lookups with max_age and artifact checks. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cache.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Is V canonical already: every object's keys in strictly increasing order, all the way down? */
static int is_canonical(json_object *v)
{
	size_t i, n;

	switch (json_object_get_type(v)) {
	case json_type_object: {
		const char *prev = NULL;
		json_object_object_foreach(v, key, val) {
			if ((prev && strcmp(prev, key) >= 0) || !is_canonical(val))
				return 0;
			prev = key;
		}
		return 1;
	}
	case json_type_array:
		n = json_object_array_length(v);
		for (i = 0; i < n; i++)
			if (!is_canonical(json_object_array_get_idx(v, i)))
				return 0;
		return 1;
	default:
		return 1;
	}
}

json_object *cache_canonical(json_object *v)
{
	json_object *out;
	size_t i, n;

	if (is_canonical(v))
		return json_object_get(v); /* the common case: nothing to sort, nothing to copy */
	switch (json_object_get_type(v)) {
	case json_type_object: {
		const char **keys;
		n = (size_t)json_object_object_length(v);
		keys = malloc((n ? n : 1) * sizeof *keys);
		out = json_object_new_object();
		if (!keys || !out) {
			free(keys);
			json_object_put(out);
			return NULL;
		}
		i = 0;
		{
			json_object_object_foreach(v, key, val) {
				(void)val;
				keys[i++] = key;
			}
		}
		qsort(keys, n, sizeof *keys, cmp_str);
		for (i = 0; i < n; i++) {
			json_object *c = cache_canonical(json_object_object_get(v, keys[i]));
			if ((!c && json_object_object_get(v, keys[i])) ||
			    json_object_object_add(out, keys[i], c)) {
				json_object_put(c);
				json_object_put(out);
				free(keys);
				return NULL;
			}
		}
		free(keys);
		return out;
	}
	case json_type_array:
		n = json_object_array_length(v);
		out = json_object_new_array_ext((int)n);
		if (!out)
			return NULL;
		for (i = 0; i < n; i++) {
			json_object *e = json_object_array_get_idx(v, i);
			json_object *c = cache_canonical(e);
			if ((!c && e) || json_object_array_add(out, c)) {
				json_object_put(c);
				json_object_put(out);
				return NULL;
			}
		}
		return out;
	default:
		return json_object_get(v);
	}
}

/* SHA-256, fetched once: with OpenSSL 3, EVP_sha256() in EVP_Digest fetches the
 * implementation from the provider store on every call (locks, a hash lookup). The method is
 * kept for the life of the process (OpenSSL's own store holds it anyway). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int cache_key(json_object *view, char key[CACHE_KEY_SIZE])
{
	json_object *c = cache_canonical(view);
	const char *s;
	size_t len;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	static const char hex[] = "0123456789abcdef";

	if (!c)
		return -1;
	pthread_once(&sha256_once, sha256_fetch);
	s = json_object_to_json_string_length(c, JSON_C_TO_STRING_PLAIN |
						  JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!s || !EVP_Digest(s, len, md, &mdlen, sha256_md ? sha256_md : EVP_sha256(), NULL) || mdlen != 32) {
		json_object_put(c);
		return -1;
	}
	json_object_put(c);
	for (i = 0; i < 32; i++) {
		key[2 * i] = hex[md[i] >> 4];
		key[2 * i + 1] = hex[md[i] & 15];
	}
	key[64] = 0;
	return 0;
}

int cache_lookup(struct store *st, struct art *art, const char *key, double max_age, double now,
		 struct store_cache **hit)
{
	struct store_cache *c = NULL;
	int rc;
	size_t i;

	*hit = NULL;
	rc = store_cache_get(st, key, &c);
	if (rc == STORE_ENOENT)
		return CACHE_MISS_NONE;
	if (rc < 0)
		return rc;
	if (max_age > 0 && now - c->created > max_age) {
		store_cache_free(c);
		return CACHE_MISS_EXPIRED;
	}
	for (i = 0; i < c->narts; i++) {
		enum art_kind k;
		if (!c->arts[i].digest || art_kind_of(art, c->arts[i].digest, &k) != ART_OK ||
		    art_verify(art, c->arts[i].digest, k, 0) != ART_OK) {
			store_cache_free(c);
			return CACHE_MISS_ARTS;
		}
	}
	*hit = c;
	return CACHE_HIT;
}

const char *cache_miss_name(int miss)
{
	switch (miss) {
	case CACHE_HIT: return "cache hit";
	case CACHE_MISS_NONE: return "no cache entry";
	case CACHE_MISS_EXPIRED: return "cache entry expired (older than max_age)";
	case CACHE_MISS_ARTS: return "cached artifacts are no longer stored";
	}
	return "cache error";
}
