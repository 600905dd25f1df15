/* subst.c - placeholder substitution: `{{ ns.field }}` -> text, `\{` -> `{`, `\\` -> `\`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subst.h"

struct buf {
	char *p;
	size_t n, cap;
	int oom;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->cap - b->n < n + 1) {
		size_t nc = b->cap ? b->cap : 64;
		char *np;
		while (nc - b->n < n + 1)
			nc *= 2;
		np = realloc(b->p, nc);
		if (!np) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

static int is_name(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

int subst_has_placeholder(const char *tmpl)
{
	return strstr(tmpl, "{{") != NULL || strchr(tmpl, '\\') != NULL;
}

char *subst_expand(const char *tmpl, subst_fn fn, void *u, char *err, size_t errlen)
{
	struct buf b = {0};
	const char *s = tmpl, *p;

	put(&b, "", 0);
	while (*s) {
		if (s[0] == '\\' && (s[1] == '{' || s[1] == '\\')) {
			put(&b, s + 1, 1);
			s += 2;
			continue;
		}
		if (s[0] != '{' || s[1] != '{') {
			p = s + 1;
			while (*p && *p != '{' && *p != '\\')
				p++;
			put(&b, s, (size_t)(p - s));
			s = p;
			continue;
		}
		{
			const char *q = s + 2, *ns, *field, *end;
			size_t nsl, fl;
			char *rep;

			while (*q == ' ')
				q++;
			ns = q;
			while (is_name(*q))
				q++;
			nsl = (size_t)(q - ns);
			if (*q != '.' || !nsl)
				goto bad;
			field = ++q;
			while (is_name(*q))
				q++;
			fl = (size_t)(q - field);
			if (!fl)
				goto bad;
			while (*q == ' ')
				q++;
			if (q[0] != '}' || q[1] != '}')
				goto bad;
			end = q + 2;
			rep = fn(u, ns, nsl, field, fl, err, errlen);
			if (!rep) {
				free(b.p);
				return NULL;
			}
			put(&b, rep, strlen(rep));
			free(rep);
			s = end;
			continue;
bad:
			end = strstr(s, "}}");
			snprintf(err, errlen, "malformed placeholder '%.*s'",
				 end ? (int)(end + 2 - s > 60 ? 60 : end + 2 - s) : 20, s);
			free(b.p);
			return NULL;
		}
	}
	if (b.oom) {
		snprintf(err, errlen, "out of memory");
		free(b.p);
		return NULL;
	}
	return b.p;
}
