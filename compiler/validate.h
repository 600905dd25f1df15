/* validate.h - pure validators for the literal values the language checks at compile time.
 *
 * Every validator returns NULL when the value is valid, or an error message. Messages are either
 * static strings or written into a caller-supplied buffer (BUF of N bytes); the caller never frees
 * them. None of these functions keeps state between calls (regexes are compiled and freed per call),
 * so they are safe to use from the daemon as well. */
#ifndef KFPC_VALIDATE_H
#define KFPC_VALIDATE_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Returns NULL if PAT (LEN bytes) compiles as a PCRE2 pattern (UTF mode), else PCRE2's message in
 * BUF and the byte offset of the error inside the pattern in *OFF. */
const char *validate_regex(const char *pat, size_t len, size_t *off, char *buf, size_t n);

/* Returns 1 if SUBJECT matches PAT (whole subject when WHOLE, else an unanchored search), 0 if not,
 * -1 if PAT does not compile or matching fails. */
int validate_regex_match(const char *pat, const char *subject, int whole);

/* A parsed cron expression: bit i set = value i allowed. Fields are 0-based as written
 * (seconds 0-59, minutes 0-59, hours 0-23, day of month 1-31, month 1-12, day of week 0-6 with
 * 0 = Sunday; 7 is folded into 0). dom_any/dow_any: the field was "*" (cron's rule: when both are
 * restricted, a day matches if EITHER matches). */
struct cron_spec {
	uint64_t sec, min;
	uint32_t hour, dom;
	uint16_t mon;
	uint8_t dow;
	unsigned char has_sec, dom_any, dow_any;
};

/* Returns NULL if EXPR is a valid cron expression (SPEC §7: 5 or 6 fields; each field a number, a-b, a list, a step "* / n" or "a-b / n",
 * month and day names, @yearly @annually @monthly @weekly @daily @midnight @hourly) and fills *OUT
 * (may be NULL), else a message in BUF. */
const char *validate_cron(const char *expr, struct cron_spec *out, char *buf, size_t n);

/* Returns the first fire time strictly after AFTER for SPEC evaluated in TZ (an IANA name, NULL or
 * "UTC" for UTC), or (time_t)-1 when none exists within 5 years. Changes the process TZ temporarily
 * when TZ is not UTC: not thread-safe. */
time_t validate_cron_next(const struct cron_spec *spec, const char *tz, time_t after);

/* Returns NULL if NAME is "UTC" or an IANA zone found under /usr/share/zoneinfo (a file starting
 * with "TZif"; names with "..", a leading "/" or odd characters are refused), else a message. */
const char *validate_tz(const char *name);

/* Kinds of Kubernetes resource quantities. */
enum quantity_kind {
	QUANTITY_CPU,    /* result in millicores, rounded up */
	QUANTITY_MEMORY, /* result in bytes, rounded up */
};

/* Returns NULL if S is a Kubernetes quantity ("500m", "2", "0.5", "512Mi", "1G", "1e3") that is
 * non-negative and fits, storing millicores or bytes in *OUT; else a message in BUF. */
const char *validate_quantity(const char *s, enum quantity_kind kind, int64_t *out, char *buf,
			      size_t n);

/* A parsed image reference; offsets/lengths index the validated string. tag_len 0: no tag;
 * digest_len 0: no digest. */
struct image_ref {
	size_t name_len;
	size_t tag_off, tag_len;
	size_t digest_off, digest_len;
};

/* Returns NULL if REF matches the distribution reference grammar
 * ([host[:port]/]path[:tag][@sha256:64hex], lowercase path components) and fills *OUT (may be
 * NULL), else a message in BUF. */
const char *validate_image(const char *ref, struct image_ref *out, char *buf, size_t n);

/* Returns NULL if S is a duration ("500ms", "30s", "1h30m", "7d": an integer followed by unit
 * groups ms s m h d) and stores it in milliseconds in *MS, else a message. */
const char *validate_duration(const char *s, int64_t *ms);

#endif
