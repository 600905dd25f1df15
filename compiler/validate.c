/* validate.c - validators for regexes, cron expressions, time zones, Kubernetes quantities, image
 * references and durations (SPEC §4.5, §7).
 *
 * All of them are pure: input text in, NULL or a message out. Regular expressions are PCRE2's
 * (never hand-written matching); cron and quantity grammars are small enough to scan by hand. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "validate.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- regular expressions --------------------------------------------------------------------- */

const char *validate_regex(const char *pat, size_t len, size_t *off, char *buf, size_t n)
{
	int err = 0;
	PCRE2_SIZE eoff = 0;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF, &err, &eoff, NULL);

	if (re) {
		pcre2_code_free(re);
		return NULL;
	}
	if (pcre2_get_error_message(err, (PCRE2_UCHAR *)buf, n) < 0 && n)
		snprintf(buf, n, "PCRE2 error %d", err);
	if (off)
		*off = eoff;
	return buf;
}

int validate_regex_match(const char *pat, const char *subject, int whole)
{
	int err = 0, rc;
	PCRE2_SIZE eoff = 0;
	pcre2_code *re;
	pcre2_match_data *md;

	re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &eoff, NULL);
	if (!re)
		return -1;
	md = pcre2_match_data_create_from_pattern(re, NULL);
	if (!md) {
		pcre2_code_free(re);
		return -1;
	}
	rc = pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0,
			 whole ? PCRE2_ANCHORED | PCRE2_ENDANCHORED : 0, md, NULL);
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	if (rc >= 0)
		return 1;
	return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

/* ---- cron --------------------------------------------------------------------------------------- */

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
					  "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct cron_field {
	const char *what;
	int lo, hi;
	const char *const *names; /* value = lo + index */
	int nnames;
};

static const struct cron_field cron_fields[] = {
	{"second", 0, 59, NULL, 0},      {"minute", 0, 59, NULL, 0},
	{"hour", 0, 23, NULL, 0},        {"day of month", 1, 31, NULL, 0},
	{"month", 1, 12, month_names, 12}, {"day of week", 0, 7, dow_names, 7},
};

/* Parses a number or a name at *P; returns 0 and the value, or -1. */
static int cron_atom(const char **p, const char *end, const struct cron_field *f, int *v)
{
	const char *s = *p;

	if (s < end && isdigit((unsigned char)*s)) {
		long x = 0;
		while (s < end && isdigit((unsigned char)*s)) {
			x = x * 10 + (*s - '0');
			if (x > 1000)
				return -1;
			s++;
		}
		*v = (int)x;
		*p = s;
		return 0;
	}
	for (int i = 0; i < f->nnames; i++)
		if (end - s >= 3 && strncasecmp(s, f->names[i], 3) == 0 &&
		    (end - s == 3 || !isalpha((unsigned char)s[3]))) {
			*v = f->lo + i;
			*p = s + 3;
			return 0;
		}
	return -1;
}

/* Parses one field [S, END) into the bit set *BITS; returns NULL or a message in BUF. */
static const char *cron_field_parse(const char *s, const char *end, const struct cron_field *f,
				    uint64_t *bits, int *any, char *buf, size_t n)
{
	*bits = 0;
	*any = (end - s == 1 && *s == '*');
	while (s < end) {
		const char *item = s, *ie = memchr(s, ',', (size_t)(end - s));
		int a, b, step = 1, star = 0;
		if (!ie)
			ie = end;
		if (ie == item) {
			snprintf(buf, n, "empty list item in the %s field", f->what);
			return buf;
		}
		if (*s == '*') {
			star = 1;
			a = f->lo;
			b = f->hi == 7 ? 6 : f->hi;
			s++;
		} else {
			if (cron_atom(&s, ie, f, &a) < 0)
				goto bad;
			b = a;
			if (s < ie && *s == '-') {
				s++;
				if (cron_atom(&s, ie, f, &b) < 0)
					goto bad;
			}
		}
		if (s < ie && *s == '/') {
			const char *q;
			if (!star && b == a) {
				snprintf(buf, n, "a step in the %s field needs '*' or a range: '%.*s'",
					 f->what, (int)(ie - item), item);
				return buf;
			}
			s++;
			q = s;
			step = 0;
			while (s < ie && isdigit((unsigned char)*s) && step <= 1000)
				step = step * 10 + (*s++ - '0');
			if (q == s || step == 0) {
				snprintf(buf, n, "invalid step in the %s field: '%.*s'", f->what,
					 (int)(ie - item), item);
				return buf;
			}
		}
		if (s != ie)
			goto bad;
		if (a < f->lo || a > f->hi || b < f->lo || b > f->hi) {
			snprintf(buf, n, "%s value out of range %d-%d: '%.*s'", f->what, f->lo, f->hi,
				 (int)(ie - item), item);
			return buf;
		}
		if (b < a) {
			snprintf(buf, n, "empty range in the %s field: '%.*s'", f->what,
				 (int)(ie - item), item);
			return buf;
		}
		for (int v = a; v <= b; v += step)
			*bits |= 1ull << (f->hi == 7 && v == 7 ? 0 : v);
		s = ie < end ? ie + 1 : ie;
		if (ie < end && s == end) {
			snprintf(buf, n, "trailing ',' in the %s field", f->what);
			return buf;
		}
		continue;
	bad:
		snprintf(buf, n, "invalid %s: '%.*s'", f->what, (int)(ie - item), item);
		return buf;
	}
	return NULL;
}

static const struct {
	const char *name, *expr;
} cron_macros[] = {
	{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
	{"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
	{"@hourly", "0 * * * *"},
};

const char *validate_cron(const char *expr, struct cron_spec *out, char *buf, size_t n)
{
	const char *start[7], *end[7];
	int nf = 0;
	struct cron_spec spec;
	const char *p = expr;

	memset(&spec, 0, sizeof spec);
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '@') {
		size_t len = strcspn(p, " \t");
		const char *rest = p + len;
		while (*rest == ' ' || *rest == '\t')
			rest++;
		for (size_t i = 0; i < sizeof cron_macros / sizeof cron_macros[0]; i++)
			if (strlen(cron_macros[i].name) == len && !strncmp(p, cron_macros[i].name, len) &&
			    !*rest)
				return validate_cron(cron_macros[i].expr, out, buf, n);
		snprintf(buf, n, "unknown cron macro '%.*s' (expected @yearly, @monthly, @weekly, "
			 "@daily or @hourly)", (int)len, p);
		return buf;
	}
	while (*p) {
		if (nf == 7)
			break;
		start[nf] = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		end[nf++] = p;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	if (nf != 5 && nf != 6) {
		snprintf(buf, n, "expected 5 fields (minute hour day-of-month month day-of-week) or 6 "
			 "(seconds first), found %s%d", nf == 7 ? "more than " : "", nf == 7 ? 6 : nf);
		return buf;
	}
	spec.has_sec = nf == 6;
	for (int i = 0; i < nf; i++) {
		const struct cron_field *f = &cron_fields[i + (nf == 5)];
		uint64_t bits;
		int any;
		const char *e = cron_field_parse(start[i], end[i], f, &bits, &any, buf, n);
		if (e)
			return e;
		switch (i + (nf == 5)) {
		case 0: spec.sec = bits; break;
		case 1: spec.min = bits; break;
		case 2: spec.hour = (uint32_t)bits; break;
		case 3: spec.dom = (uint32_t)bits; spec.dom_any = (unsigned char)any; break;
		case 4: spec.mon = (uint16_t)bits; break;
		default: spec.dow = (uint8_t)bits; spec.dow_any = (unsigned char)any; break;
		}
	}
	if (!spec.has_sec)
		spec.sec = 1;
	if (out)
		*out = spec;
	return NULL;
}

static int cron_day_ok(const struct cron_spec *s, const struct tm *tm)
{
	int dom = (s->dom >> tm->tm_mday) & 1, dow = (s->dow >> tm->tm_wday) & 1;

	if (s->dom_any || s->dow_any)
		return dom && dow;
	return dom || dow;
}

time_t validate_cron_next(const struct cron_spec *spec, const char *tz, time_t after)
{
	int utc = !tz || !strcmp(tz, "UTC");
	char *saved = NULL;
	struct tm tm;
	time_t t = after + 1, res = (time_t)-1;
	int limit_year;

	if (!utc) {
		const char *old = getenv("TZ");
		char zone[512];
		if (old && !(saved = strdup(old)))
			return (time_t)-1;
		snprintf(zone, sizeof zone, ":%s", tz);
		setenv("TZ", zone, 1);
		tzset();
	}
	if (!(utc ? gmtime_r(&t, &tm) : localtime_r(&t, &tm)))
		goto out;
	limit_year = tm.tm_year + 5;
	if (!spec->has_sec && tm.tm_sec) {
		tm.tm_sec = 60; /* next minute, normalised below */
	}
	for (int guard = 0; guard < 1000000; guard++) {
		time_t cur;
		tm.tm_isdst = -1;
		cur = utc ? timegm(&tm) : mktime(&tm);
		if (cur == (time_t)-1 || !(utc ? gmtime_r(&cur, &tm) : localtime_r(&cur, &tm)))
			break;
		if (tm.tm_year > limit_year)
			break;
		if (!((spec->mon >> (tm.tm_mon + 1)) & 1)) {
			tm.tm_mon++;
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
			continue;
		}
		if (!cron_day_ok(spec, &tm)) {
			tm.tm_mday++;
			tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
			continue;
		}
		if (!((spec->hour >> tm.tm_hour) & 1)) {
			tm.tm_hour++;
			tm.tm_min = tm.tm_sec = 0;
			continue;
		}
		if (!((spec->min >> tm.tm_min) & 1)) {
			tm.tm_min++;
			tm.tm_sec = 0;
			continue;
		}
		if (!((spec->sec >> tm.tm_sec) & 1)) {
			tm.tm_sec++;
			continue;
		}
		if (cur > after) {
			res = cur;
			break;
		}
		tm.tm_sec++;
	}
out:
	if (!utc) {
		if (saved) {
			setenv("TZ", saved, 1);
			free(saved);
		} else {
			unsetenv("TZ");
		}
		tzset();
	}
	return res;
}

/* ---- time zones ------------------------------------------------------------------------------ */

const char *validate_tz(const char *name)
{
	char path[512];
	char magic[4];
	int fd;
	ssize_t got;

	if (!strcmp(name, "UTC"))
		return NULL;
	if (!*name || name[0] == '/' || strlen(name) > 255)
		return "not an IANA time zone name";
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("/_-+", *p))
			return "not an IANA time zone name";
	for (const char *p = name; *p; p++)
		if (p[0] == '.' || (p[0] == '/' && (p[1] == '/' || p[1] == 0)))
			return "not an IANA time zone name";
	snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 && errno == ELOOP)
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return "not found in the time zone database (/usr/share/zoneinfo)";
	got = read(fd, magic, sizeof magic);
	close(fd);
	if (got != 4 || memcmp(magic, "TZif", 4))
		return "not a time zone file in /usr/share/zoneinfo";
	return NULL;
}

/* ---- Kubernetes quantities ------------------------------------------------------------------ */

const char *validate_quantity(const char *s, enum quantity_kind kind, int64_t *out, char *buf,
			      size_t n)
{
	static const struct {
		const char *suf;
		int e10, e2;
	} sufs[] = {
		{"Ki", 0, 10}, {"Mi", 0, 20}, {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50},
		{"Ei", 0, 60}, {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"k", 3, 0},
		{"M", 6, 0},   {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},
	};
	const char *p = s;
	uint64_t mant = 0;
	int e10 = 0, e2 = 0, digits = 0, frac = 0, sig = 0;
	uint64_t v;

	if (*p == '+')
		p++;
	if (*p == '-') {
		snprintf(buf, n, "'%s' is negative", s);
		return buf;
	}
	for (; isdigit((unsigned char)*p) || (*p == '.' && !frac); p++) {
		if (*p == '.') {
			frac = 1;
			continue;
		}
		digits++;
		if (sig < 18) {
			if (mant || *p != '0')
				sig++;
			mant = mant * 10 + (uint64_t)(*p - '0');
			if (frac)
				e10--;
		} else if (!frac) {
			e10++; /* drop insignificant digits */
		}
	}
	if (!digits)
		goto bad;
	if ((*p == 'e' || *p == 'E') && strcmp(p, "Ei") != 0) { /* "Ei" is a suffix below */
		if (p[1] == 0) {
			e10 += 18; /* "E" = exa (cpu and memory alike, as Kubernetes) */
			p++;
		} else {
			int neg = 0, x = 0, nd = 0;
			p++;
			if (*p == '+' || *p == '-')
				neg = *p++ == '-';
			while (isdigit((unsigned char)*p)) {
				if (x < 1000)
					x = x * 10 + (*p - '0');
				p++;
				nd++;
			}
			if (!nd || *p)
				goto bad;
			e10 += neg ? -x : x;
		}
	} else if (*p) {
		size_t i;
		for (i = 0; i < sizeof sufs / sizeof sufs[0]; i++)
			if (!strcmp(p, sufs[i].suf))
				break;
		if (i == sizeof sufs / sizeof sufs[0])
			goto bad;
		e10 += sufs[i].e10;
		e2 = sufs[i].e2;
	}
	if (kind == QUANTITY_CPU)
		e10 += 3;
	v = mant;
	if (v) {
		if (e2 && __builtin_mul_overflow(v, (uint64_t)1 << e2, &v))
			goto big;
		for (; e10 > 0; e10--)
			if (__builtin_mul_overflow(v, (uint64_t)10, &v))
				goto big;
		for (; e10 < 0; e10++)
			v = v / 10 + (v % 10 != 0); /* round up, as Kubernetes does */
		if (v > INT64_MAX)
			goto big;
	}
	*out = (int64_t)v;
	return NULL;
big:
	snprintf(buf, n, "'%s' is too large", s);
	return buf;
bad:
	snprintf(buf, n, "'%s' is not a quantity (expected a number with an optional suffix: m, k, "
		 "M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei)", s);
	return buf;
}

/* ---- image references ----------------------------------------------------------------------- */

/* distribution/reference: [domain[:port]/]path-component[/path-component]*[:tag][@digest]. A first
 * component is a registry host only if it has a '.' or a ':' or is "localhost". */
#define DC "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
#define PC "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
static const char image_re[] =
	"^((?:(?:localhost(?::[0-9]+)?|" DC "(?:\\." DC ")+(?::[0-9]+)?|" DC ":[0-9]+)/)?"
	PC "(?:/" PC ")*)"
	"(?::([\\w][\\w.-]{0,127}))?"
	"(?:@(sha256:[a-f0-9]{64}))?$";

const char *validate_image(const char *ref, struct image_ref *out, char *buf, size_t n)
{
	int err = 0, rc;
	PCRE2_SIZE eoff = 0, *ov;
	pcre2_code *re;
	pcre2_match_data *md;
	const char *at, *slash, *colon;

	re = pcre2_compile((PCRE2_SPTR)image_re, PCRE2_ZERO_TERMINATED, 0, &err, &eoff, NULL);
	if (!re) {
		snprintf(buf, n, "internal error: image regex does not compile");
		return buf;
	}
	md = pcre2_match_data_create_from_pattern(re, NULL);
	if (!md) {
		pcre2_code_free(re);
		snprintf(buf, n, "out of memory");
		return buf;
	}
	rc = pcre2_match(re, (PCRE2_SPTR)ref, strlen(ref), 0, 0, md, NULL);
	if (rc > 0) {
		ov = pcre2_get_ovector_pointer(md);
		if (ov[3] - ov[2] > 255) {
			rc = -1000;
		} else if (out) {
			out->name_len = ov[3] - ov[2];
			out->tag_off = rc > 2 && ov[4] != PCRE2_UNSET ? ov[4] : 0;
			out->tag_len = rc > 2 && ov[4] != PCRE2_UNSET ? ov[5] - ov[4] : 0;
			out->digest_off = rc > 3 && ov[6] != PCRE2_UNSET ? ov[6] : 0;
			out->digest_len = rc > 3 && ov[6] != PCRE2_UNSET ? ov[7] - ov[6] : 0;
		}
	}
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	if (rc > 0)
		return NULL;
	/* Find the most useful explanation. */
	at = strchr(ref, '@');
	slash = strrchr(ref, '/');
	colon = strrchr(ref, ':');
	if (colon && slash && colon < slash)
		colon = NULL;
	if (colon && at && colon > at)
		colon = strchr(ref, ':') < at && (!slash || strchr(ref, ':') > slash) ?
			strchr(ref, ':') : NULL;
	if (rc == -1000)
		snprintf(buf, n, "repository name longer than 255 characters");
	else if (!*ref)
		snprintf(buf, n, "empty image reference");
	else if (at && (strncmp(at + 1, "sha256:", 7) || strlen(at + 8) != 64 ||
			strspn(at + 8, "0123456789abcdef") != 64))
		snprintf(buf, n, "digest must be 'sha256:' and 64 lowercase hex digits");
	else if (colon && (!colon[1] || colon[1] == '@' || colon[1] == '.' || colon[1] == '-'))
		snprintf(buf, n, "invalid tag (expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})");
	else {
		size_t len = at ? (size_t)(at - ref) : strlen(ref);
		int upper = 0;
		for (size_t i = 0; i < len; i++)
			if (isupper((unsigned char)ref[i]))
				upper = 1;
		if (upper && (!colon || colon > (slash ? slash : ref)))
			snprintf(buf, n, "repository name must be lowercase");
		else
			snprintf(buf, n, "expected [registry[:port]/]name[:tag][@sha256:HEX]");
	}
	return buf;
}

/* ---- durations ----------------------------------------------------------------------------- */

const char *validate_duration(const char *s, int64_t *ms)
{
	int64_t total = 0;
	const char *p = s;
	int groups = 0;

	while (*p) {
		int64_t x = 0, mult;
		const char *d = p;
		while (isdigit((unsigned char)*p)) {
			if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, *p - '0', &x))
				return "duration too large";
			p++;
		}
		if (p == d)
			return groups ? "expected a number after a unit" : "a duration starts with a number";
		if (p[0] == 'm' && p[1] == 's')
			mult = 1, p += 2;
		else if (*p == 's')
			mult = 1000, p++;
		else if (*p == 'm')
			mult = 60000, p++;
		else if (*p == 'h')
			mult = 3600000, p++;
		else if (*p == 'd')
			mult = 86400000, p++;
		else
			return "expected a unit (ms, s, m, h, d)";
		if (__builtin_mul_overflow(x, mult, &x) || __builtin_add_overflow(total, x, &total))
			return "duration too large";
		groups++;
	}
	if (!groups)
		return "empty duration";
	*ms = total;
	return NULL;
}
