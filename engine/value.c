/* value.c - run-time values: types, parsing, constraints, comparison, formatting.
 *
 * Values are json-c objects (see value.h). Floats are created with value_new_double so that
 * they print as the shortest text that reads back as the same double ("0.1", not
 * "0.10000000000000001"), with ".0" kept on integral floats ("2.0") so a float stays a float
 * when a step reads it back. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "value.h"

static int is_word(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && !memcmp(s, w, n);
}

/* Kind of the type text S[N]; sets elem for list/map. */
static int kind_of(const char *s, size_t n, const char **elem, size_t *elemlen)
{
	size_t i;

	if (is_word(s, n, "string"))
		return VT_STRING;
	if (is_word(s, n, "int"))
		return VT_INT;
	if (is_word(s, n, "float"))
		return VT_FLOAT;
	if (is_word(s, n, "bool"))
		return VT_BOOL;
	if ((n > 6 && !memcmp(s, "list<", 5) && s[n - 1] == '>') ||
	    (n > 5 && !memcmp(s, "map<", 4) && s[n - 1] == '>')) {
		size_t off = s[0] == 'l' ? 5 : 4;
		if (elem) {
			*elem = s + off;
			*elemlen = n - off - 1;
		}
		return s[0] == 'l' ? VT_LIST : VT_MAP;
	}
	if (!n || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return -1;
	for (i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == '.'))
			return -1;
	return VT_ARTIFACT;
}

int value_type_kind(const char *type, const char **elem, size_t *elemlen)
{
	if (!type)
		return -1;
	return kind_of(type, strlen(type), elem, elemlen);
}

static int valid_n(const char *s, size_t n, int depth)
{
	const char *e;
	size_t el;
	int k;

	if (depth > 32)
		return 0;
	k = kind_of(s, n, &e, &el);
	if (k < 0)
		return 0;
	if (k == VT_LIST || k == VT_MAP)
		return valid_n(e, el, depth + 1);
	return 1;
}

int value_type_valid(const char *type)
{
	return type && valid_n(type, strlen(type), 0);
}

static int conforms_n(json_object *v, const char *t, size_t n, int depth)
{
	const char *e;
	size_t el, i;
	int k = kind_of(t, n, &e, &el);

	if (depth > 64)
		return 0;
	switch (k) {
	case VT_STRING:
		return json_object_is_type(v, json_type_string);
	case VT_INT:
		return json_object_is_type(v, json_type_int);
	case VT_FLOAT:
		return json_object_is_type(v, json_type_int) ||
		       json_object_is_type(v, json_type_double);
	case VT_BOOL:
		return json_object_is_type(v, json_type_boolean);
	case VT_LIST:
		if (!json_object_is_type(v, json_type_array))
			return 0;
		for (i = 0; i < json_object_array_length(v); i++)
			if (!conforms_n(json_object_array_get_idx(v, i), e, el, depth + 1))
				return 0;
		return 1;
	case VT_MAP:
		if (!json_object_is_type(v, json_type_object))
			return 0;
		{
			json_object_object_foreach(v, key, val) {
				(void)key;
				if (!conforms_n(val, e, el, depth + 1))
					return 0;
			}
		}
		return 1;
	case VT_ARTIFACT:
		return value_artifact_digest(v, NULL) != NULL;
	}
	return 0;
}

int value_conforms(json_object *v, const char *type)
{
	return type && conforms_n(v, type, strlen(type), 0);
}

char *value_fmt_double(double d, char *buf, size_t len)
{
	int prec;

	if (!isfinite(d)) {
		snprintf(buf, len, "%s", isnan(d) ? "nan" : d > 0 ? "inf" : "-inf");
		return buf;
	}
	for (prec = 15; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	if (!strpbrk(buf, ".eEn") && strlen(buf) + 3 <= len)
		strcat(buf, ".0");
	return buf;
}

json_object *value_new_double(double d)
{
	char buf[64];

	return json_object_new_double_s(d, value_fmt_double(d, buf, sizeof buf));
}

json_object *value_new_artifact(const char *digest, const char *kind, const char *type)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	if (json_object_object_add(o, "artifact", json_object_new_string(digest)) ||
	    json_object_object_add(o, "kind", json_object_new_string(kind ? kind : "file")) ||
	    json_object_object_add(o, "type", json_object_new_string(type ? type : "Artifact"))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

const char *value_artifact_digest(json_object *v, const char **kind)
{
	json_object *d, *k;

	if (!json_object_is_type(v, json_type_object) ||
	    !json_object_object_get_ex(v, "artifact", &d) ||
	    !json_object_is_type(d, json_type_string))
		return NULL;
	if (kind) {
		*kind = "file";
		if (json_object_object_get_ex(v, "kind", &k) && json_object_is_type(k, json_type_string))
			*kind = json_object_get_string(k);
	}
	return json_object_get_string(d);
}

/* A short printable excerpt of TEXT for messages. */
static void excerpt(const char *text, size_t len, char *buf, size_t n)
{
	size_t i, j = 0;

	for (i = 0; i < len && j + 5 < n && i < 40; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == '\n') {
			buf[j++] = '\\';
			buf[j++] = 'n';
		} else if (c < 0x20 || c == 0x7f) {
			buf[j++] = '?';
		} else {
			buf[j++] = (char)c;
		}
	}
	if (i < len && j + 4 < n) {
		memcpy(buf + j, "...", 3);
		j += 3;
	}
	buf[j] = 0;
}

static json_object *parse_json_value(const char *text, size_t len, char *err, size_t errlen)
{
	struct json_tokener *tok = json_tokener_new_ex(64);
	json_object *v;
	size_t end, i;

	if (!tok) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (len > INT32_MAX) {
		json_tokener_free(tok);
		snprintf(err, errlen, "value too large");
		return NULL;
	}
	v = json_tokener_parse_ex(tok, text, (int)len);
	if (!v && json_tokener_get_error(tok) == json_tokener_continue)
		v = json_tokener_parse_ex(tok, "", 1); /* flush a trailing number */
	end = json_tokener_get_parse_end(tok);
	if (!v || json_tokener_get_error(tok) != json_tokener_success) {
		snprintf(err, errlen, "invalid JSON: %s",
			 json_tokener_error_desc(json_tokener_get_error(tok)));
		json_object_put(v);
		json_tokener_free(tok);
		return NULL;
	}
	for (i = end; i < len; i++)
		if (!isspace((unsigned char)text[i])) {
			snprintf(err, errlen, "invalid JSON: trailing data");
			json_object_put(v);
			json_tokener_free(tok);
			return NULL;
		}
	json_tokener_free(tok);
	return v;
}

json_object *value_parse(const char *text, size_t len, const char *type, int trim_nl, char *err,
			 size_t errlen)
{
	char ex[64], *buf, *end;
	const char *s = text;
	size_t n = len;
	json_object *v = NULL;
	int k = value_type_kind(type, NULL, NULL);

	excerpt(text, len, ex, sizeof ex);
	if (k == VT_STRING) {
		if (trim_nl && n && s[n - 1] == '\n')
			n--;
		v = json_object_new_string_len(s, (int)n);
		if (!v)
			snprintf(err, errlen, "out of memory");
		return v;
	}
	if (k == VT_ARTIFACT || k < 0) {
		snprintf(err, errlen, "type %s cannot be given as a value", type ? type : "?");
		return NULL;
	}
	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (k == VT_LIST || k == VT_MAP) {
		char e2[160];
		v = parse_json_value(s, n, e2, sizeof e2);
		if (!v) {
			snprintf(err, errlen, "expected %s as JSON, got '%s' (%s)", type, ex, e2);
			return NULL;
		}
		if (!value_conforms(v, type)) {
			snprintf(err, errlen, "expected %s, got '%s'", type, ex);
			json_object_put(v);
			return NULL;
		}
		return v;
	}
	buf = malloc(n + 1);
	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(buf, s, n);
	buf[n] = 0;
	if (n == 0 || strlen(buf) != n) {
		snprintf(err, errlen, "expected %s, got '%s'", type, ex);
		goto out;
	}
	errno = 0;
	if (k == VT_INT) {
		long long x = strtoll(buf, &end, 10);
		if (*end || errno == ERANGE)
			snprintf(err, errlen, errno == ERANGE ? "integer out of range: '%s'" :
								"expected int, got '%s'", ex);
		else
			v = json_object_new_int64(x);
	} else if (k == VT_FLOAT) {
		double d = strtod(buf, &end);
		if (*end || !isfinite(d) || !(isdigit((unsigned char)buf[0]) || buf[0] == '-' ||
					      buf[0] == '+' || buf[0] == '.'))
			snprintf(err, errlen, "expected float, got '%s'", ex);
		else
			v = value_new_double(d);
	} else if (k == VT_BOOL) {
		if (!strcmp(buf, "true"))
			v = json_object_new_boolean(1);
		else if (!strcmp(buf, "false"))
			v = json_object_new_boolean(0);
		else
			snprintf(err, errlen, "expected bool (true or false), got '%s'", ex);
	}
out:
	free(buf);
	return v;
}

static double num(json_object *v)
{
	return json_object_get_double(v);
}

int value_check_param(const struct ir_param *p, json_object *v, char *err, size_t errlen)
{
	char a[64], b[64];
	int k = value_type_kind(p->type, NULL, NULL);

	if (!value_conforms(v, p->type)) {
		snprintf(err, errlen, "expected %s", p->type);
		return -1;
	}
	if ((k == VT_INT || k == VT_FLOAT) && p->min && num(v) < num(p->min)) {
		char *t = value_to_text(v), *m = value_to_text(p->min);
		snprintf(err, errlen, "%s is below the minimum %s", t ? t : "?", m ? m : "?");
		free(t);
		free(m);
		return -1;
	}
	if ((k == VT_INT || k == VT_FLOAT) && p->max && num(v) > num(p->max)) {
		char *t = value_to_text(v), *m = value_to_text(p->max);
		snprintf(err, errlen, "%s is above the maximum %s", t ? t : "?", m ? m : "?");
		free(t);
		free(m);
		return -1;
	}
	if (p->one_of) {
		size_t i, n = json_object_array_length(p->one_of);
		for (i = 0; i < n; i++)
			if (value_equal(v, json_object_array_get_idx(p->one_of, i)))
				break;
		if (i == n) {
			const char *t = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
								       JSON_C_TO_STRING_NOSLASHESCAPE);
			const char *o = json_object_to_json_string_ext(
				p->one_of, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
			snprintf(a, sizeof a, "%s", t);
			snprintf(err, errlen, "%s is not one of %s", a, o);
			return -1;
		}
	}
	if (p->re && json_object_is_type(v, json_type_string)) {
		pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re, NULL);
		int rc;
		if (!md) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		rc = pcre2_match(p->re, (PCRE2_SPTR)json_object_get_string(v),
				 json_object_get_string_len(v), 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED,
				 md, NULL);
		pcre2_match_data_free(md);
		if (rc < 0) {
			excerpt(json_object_get_string(v), json_object_get_string_len(v), b, sizeof b);
			if (rc == PCRE2_ERROR_NOMATCH)
				snprintf(err, errlen, "'%s' does not match the pattern \"%s\"", b,
					 p->regex);
			else
				snprintf(err, errlen, "matching '%s' against \"%s\" failed (PCRE2 "
					 "error %d)", b, p->regex, rc);
			return -1;
		}
	}
	return 0;
}

char *value_to_text(json_object *v)
{
	char buf[64];

	switch (json_object_get_type(v)) {
	case json_type_null:
		return strdup("");
	case json_type_string:
		return strndup(json_object_get_string(v), json_object_get_string_len(v));
	case json_type_int:
		snprintf(buf, sizeof buf, "%lld", (long long)json_object_get_int64(v));
		return strdup(buf);
	case json_type_double:
		return strdup(value_fmt_double(json_object_get_double(v), buf, sizeof buf));
	case json_type_boolean:
		return strdup(json_object_get_boolean(v) ? "true" : "false");
	case json_type_array:
	case json_type_object:
		return strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
								JSON_C_TO_STRING_NOSLASHESCAPE));
	}
	return NULL;
}

static int is_num(json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

int value_compare(json_object *a, json_object *b, int *cmp)
{
	if (is_num(a) && is_num(b)) {
		if (json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int)) {
			int64_t x = json_object_get_int64(a), y = json_object_get_int64(b);
			*cmp = x < y ? -1 : x > y;
		} else {
			double x = num(a), y = num(b);
			*cmp = x < y ? -1 : x > y;
		}
		return 0;
	}
	if (json_object_is_type(a, json_type_string) && json_object_is_type(b, json_type_string)) {
		size_t la = json_object_get_string_len(a), lb = json_object_get_string_len(b);
		int c = memcmp(json_object_get_string(a), json_object_get_string(b),
			       la < lb ? la : lb);
		*cmp = c ? (c < 0 ? -1 : 1) : (la < lb ? -1 : la > lb);
		return 0;
	}
	if (json_object_is_type(a, json_type_boolean) && json_object_is_type(b, json_type_boolean)) {
		*cmp = json_object_get_boolean(a) != json_object_get_boolean(b);
		return 0;
	}
	if (json_object_get_type(a) == json_object_get_type(b)) {
		*cmp = !value_equal(a, b);
		return 0;
	}
	return -1;
}

int value_equal(json_object *a, json_object *b)
{
	int c;
	size_t i, n;

	if (is_num(a) && is_num(b))
		return value_compare(a, b, &c) == 0 && c == 0;
	if (json_object_get_type(a) != json_object_get_type(b))
		return 0;
	switch (json_object_get_type(a)) {
	case json_type_null:
		return 1;
	case json_type_string:
	case json_type_boolean:
		return value_compare(a, b, &c) == 0 && c == 0;
	case json_type_array:
		n = json_object_array_length(a);
		if (n != json_object_array_length(b))
			return 0;
		for (i = 0; i < n; i++)
			if (!value_equal(json_object_array_get_idx(a, i),
					 json_object_array_get_idx(b, i)))
				return 0;
		return 1;
	case json_type_object: {
		if (json_object_object_length(a) != json_object_object_length(b))
			return 0;
		json_object_object_foreach(a, key, val) {
			json_object *o;
			if (!json_object_object_get_ex(b, key, &o) || !value_equal(val, o))
				return 0;
		}
		return 1;
	}
	default:
		return 0;
	}
}
