/* http.c - libmicrohttpd glue: the route table, request bodies, auth, replies, suspension.
 *
 * A request goes through three calls of the access handler: the first (headers read) matches a
 * route and checks the token, answering 401/403/404/405/413 at once without reading the body;
 * the next ones append body chunks (bounded); the last runs the route's handler. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "api.h"
#include "db.h"

/* The API, in one place: method, path pattern (":x" captures one segment), handler, who may call. */
static const struct route {
	const char *method;
	const char *pattern;
	http_handler fn;
	enum auth auth;
} routes[] = {
	{"GET", "/healthz", api_healthz, AUTH_NONE},
	{"GET", "/readyz", api_readyz, AUTH_NONE},
	{"GET", "/metrics", api_metrics, AUTH_NONE},
	{"GET", "/api/v1/whoami", api_whoami, AUTH_ANY},
	{"POST", "/api/v1/namespaces", api_ns_create, AUTH_ADMIN},
	{"GET", "/api/v1/namespaces", api_ns_list, AUTH_ADMIN},
	{"DELETE", "/api/v1/namespaces/:ns", api_ns_delete, AUTH_ADMIN},
	{"POST", "/api/v1/namespaces/:ns/tokens", api_token_create, AUTH_ADMIN},
	{"GET", "/api/v1/namespaces/:ns/tokens", api_token_list, AUTH_ADMIN},
	{"DELETE", "/api/v1/namespaces/:ns/tokens/:id", api_token_delete, AUTH_ADMIN},
	{"POST", "/api/v1/pipelines", api_pl_create, AUTH_WRITE},
	{"GET", "/api/v1/pipelines", api_pl_list, AUTH_READ},
	{"GET", "/api/v1/pipelines/:name", api_pl_get, AUTH_READ},
	{"DELETE", "/api/v1/pipelines/:name", api_pl_delete, AUTH_WRITE},
	{"GET", "/api/v1/pipelines/:name/ir", api_pl_ir, AUTH_READ},
	{"GET", "/api/v1/pipelines/:name/versions/:v", api_pl_version, AUTH_READ},
	{"GET", "/api/v1/pipelines/:name/versions/:v/ir", api_pl_ir, AUTH_READ},
	{"POST", "/api/v1/runs", api_run_create, AUTH_WRITE},
	{"GET", "/api/v1/runs", api_run_list, AUTH_READ},
	{"GET", "/api/v1/runs/:id", api_run_get, AUTH_READ},
	{"DELETE", "/api/v1/runs/:id", api_run_delete, AUTH_WRITE},
	{"POST", "/api/v1/runs/:id/cancel", api_run_cancel, AUTH_WRITE},
	{"POST", "/api/v1/runs/:id/retry", api_run_retry, AUTH_WRITE},
	{"GET", "/api/v1/runs/:id/steps/:step/logs", api_run_logs, AUTH_READ},
	{"GET", "/api/v1/runs/:id/artifacts", api_run_artifacts, AUTH_READ},
	{"GET", "/api/v1/artifacts/:digest", api_art_get, AUTH_READ},
	{"GET", "/api/v1/artifacts/:digest/content", api_art_content, AUTH_READ},
	{"GET", "/api/v1/artifacts/:digest/lineage", api_art_lineage, AUTH_READ},
	{"GET", "/api/v1/secrets", api_secret_list, AUTH_READ},
	{"PUT", "/api/v1/secrets/:name", api_secret_put, AUTH_WRITE},
	{"DELETE", "/api/v1/secrets/:name", api_secret_delete, AUTH_WRITE},
	{"POST", "/api/v1/schedules", api_sched_create, AUTH_WRITE},
	{"GET", "/api/v1/schedules", api_sched_list, AUTH_READ},
	{"GET", "/api/v1/schedules/:id", api_sched_get, AUTH_READ},
	{"PATCH", "/api/v1/schedules/:id", api_sched_update, AUTH_WRITE},
	{"DELETE", "/api/v1/schedules/:id", api_sched_delete, AUTH_WRITE},
	{"POST", "/api/v1/schedules/:id/pause", api_sched_pause, AUTH_WRITE},
	{"POST", "/api/v1/schedules/:id/resume", api_sched_resume, AUTH_WRITE},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* per-connection state: the request plus the matched route */
struct conn {
	struct req r;
	const struct route *route;
	int answered; /* a reply was queued on the first call */
};

static pthread_mutex_t susp_lock = PTHREAD_MUTEX_INITIALIZER;
static struct MHD_Connection **susp;
static size_t nsusp, capsusp;

const char *js_str(json_object *o, const char *k, const char *def)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return def;
	return json_object_get_string(v);
}

int64_t js_int(json_object *o, const char *k, int64_t def)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		return def;
	return json_object_get_int64(v);
}

/* Matches URL against PATTERN, capturing ":x" segments into R. Returns 1 on a match. One pass
 * over both strings: most routes fail at their first differing character. */
static int match(const char *pattern, const char *url, struct req *r)
{
	const char *p = pattern, *u = url;
	size_t used = 0;
	int na = 0;

	while (*p) {
		if (*p != ':') {
			if (*p++ != *u++)
				return 0;
			continue;
		}
		const char *s = u; /* p[-1] and u[-1] are '/': capture one segment */
		while (*u && *u != '/')
			u++;
		size_t ul = (size_t)(u - s);
		if (ul == 0 || na == 4 || used + ul + 1 > sizeof r->argbuf)
			return 0;
		memcpy(r->argbuf + used, s, ul);
		r->argbuf[used + ul] = 0;
		r->arg[na++] = r->argbuf + used;
		used += ul + 1;
		while (*p && *p != '/')
			p++;
	}
	return !*u || !strcmp(u, "/"); /* a trailing slash is tolerated */
}

int http_reply_response(struct req *r, unsigned status, struct MHD_Response *resp)
{
	int ret;

	if (!resp)
		return MHD_NO;
	r->status = status;
	if (!r->conn) { /* http_inproc(): nobody to send it to */
		MHD_destroy_response(resp);
		return MHD_YES;
	}
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	if (status == 401)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"kfpd\"");
	ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

struct MHD_Response *http_response_new(const char *ctype, const char *buf, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)buf, MHD_RESPMEM_MUST_COPY);

	if (resp) {
		MHD_add_response_header(resp, "Content-Type", ctype);
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	}
	return resp;
}

int http_reply_shared(struct req *r, unsigned status, struct MHD_Response *resp)
{
	r->status = status;
	if (!r->conn)
		return MHD_YES;
	return MHD_queue_response(r->conn, status, resp);
}

int http_reply_bytes(struct req *r, unsigned status, const char *ctype, const char *buf, size_t len)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)buf, MHD_RESPMEM_MUST_COPY);

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", ctype);
	return http_reply_response(r, status, resp);
}

int http_reply_json(struct req *r, unsigned status, json_object *o)
{
	size_t len;
	const char *s;
	int ret;

	if (!o)
		return http_reply_bytes(r, 500, "application/json",
					"{\"error\":{\"code\":500,\"message\":\"out of memory\"}}", 47);
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
					       &len);
	if (!s) {
		json_object_put(o);
		return MHD_NO;
	}
	/* a trailing newline makes curl output readable */
	char *buf = malloc(len + 1);
	if (!buf) {
		json_object_put(o);
		return MHD_NO;
	}
	memcpy(buf, s, len);
	buf[len] = '\n';
	json_object_put(o);
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len + 1, buf, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	ret = http_reply_response(r, status, resp);
	return ret;
}

int http_reply_error(struct req *r, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	json_object *o = json_object_new_object(), *e = json_object_new_object();

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_object_object_add(e, "code", json_object_new_int((int)status));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	return http_reply_json(r, status, o);
}

int http_done(struct req *r)
{
	return r->status ? MHD_YES : MHD_NO;
}

int http_body_object(struct req *r, json_object **out)
{
	json_tokener *tok;
	enum json_tokener_error jerr;

	*out = NULL;
	if (!r->len) {
		http_reply_error(r, 400, "request body: expected a JSON object, got nothing");
		return -1;
	}
	if (!(tok = json_tokener_new_ex(64))) {
		http_reply_error(r, 500, "out of memory");
		return -1;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	*out = json_tokener_parse_ex(tok, r->body, (int)r->len);
	jerr = json_tokener_get_error(tok);
	if (jerr == json_tokener_success && (size_t)json_tokener_get_parse_end(tok) < r->len) {
		/* trailing white space is fine, anything else is not */
		size_t i;
		for (i = json_tokener_get_parse_end(tok); i < r->len; i++)
			if (!strchr(" \t\r\n", r->body[i]))
				break;
		if (i < r->len) {
			http_reply_error(r, 400, "request body: trailing data at byte %zu",
					 (size_t)json_tokener_get_parse_end(tok));
			goto err;
		}
	}
	if (jerr != json_tokener_success || !*out) {
		http_reply_error(r, 400, "request body: malformed JSON at byte %zu: %s",
				 (size_t)json_tokener_get_parse_end(tok),
				 jerr == json_tokener_continue ? "unexpected end of input"
							       : json_tokener_error_desc(jerr));
		goto err;
	}
	if (!json_object_is_type(*out, json_type_object)) {
		http_reply_error(r, 400, "request body: expected a JSON object");
		goto err;
	}
	json_tokener_free(tok);
	return 0;
err:
	json_object_put(*out);
	*out = NULL;
	json_tokener_free(tok);
	return -1;
}

const char *http_query(struct req *r, const char *key)
{
	int i;

	if (!r->conn) {
		for (i = 0; i < r->nq; i++)
			if (!strcmp(r->qk[i], key))
				return r->qv[i];
		return NULL;
	}
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

void http_suspend(struct req *r)
{
	if (!r->conn)
		return;
	pthread_mutex_lock(&susp_lock);
	if (nsusp == capsusp) {
		size_t nc = capsusp ? capsusp * 2 : 16;
		struct MHD_Connection **n = realloc(susp, nc * sizeof *n);
		if (!n) {
			pthread_mutex_unlock(&susp_lock);
			return; /* not suspended: MHD calls again at once (busy, but correct) */
		}
		susp = n, capsusp = nc;
	}
	MHD_suspend_connection(r->conn);
	susp[nsusp++] = r->conn;
	pthread_mutex_unlock(&susp_lock);
}

int http_park(struct req *r, http_handler fn)
{
	if (!r->conn)
		return -1;
	r->resumed = fn;
	MHD_suspend_connection(r->conn);
	return 0;
}

void http_unpark(struct req *r)
{
	MHD_resume_connection(r->conn);
}

void http_resume_all(void)
{
	size_t i;

	pthread_mutex_lock(&susp_lock);
	for (i = 0; i < nsusp; i++)
		MHD_resume_connection(susp[i]);
	nsusp = 0;
	pthread_mutex_unlock(&susp_lock);
}

/* A cache of resolved tokens (hash -> namespace, role), so that a request costs no LMDB lookup
 * for its token. http_tokens_changed() (token or namespace deleted) empties it. */
#define TCACHE 1024
static struct tcache_entry {
	char hash[65];
	char ns[64];
	char role[16];
	unsigned gen;
} tcache[TCACHE];
static unsigned tcache_gen = 1;
static pthread_mutex_t tcache_lock = PTHREAD_MUTEX_INITIALIZER;

void http_tokens_changed(void)
{
	pthread_mutex_lock(&tcache_lock);
	__atomic_add_fetch(&tcache_gen, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&tcache_lock);
}

static unsigned tcache_slot(const char *hash)
{
	return (unsigned)strtoul((char[9]){hash[0], hash[1], hash[2], hash[3], hash[4], hash[5],
					   hash[6], hash[7], 0},
				 NULL, 16) % TCACHE;
}

/* Resolves the bearer token of R into r->ns / r->role. Returns 0, or -1 when missing or unknown. */
static int authenticate(struct req *r)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
	char hash[65];
	json_object *t;

	if (!h || strncasecmp(h, "Bearer ", 7))
		return -1;
	h += 7;
	while (*h == ' ')
		h++;
	size_t hl = strlen(h);
	if (!*h || hl > 256)
		return -1;
	/* a keep-alive client sends the same token again and again: each HTTP thread remembers
	 * the last one it resolved (compared in constant time), so it costs no SHA-256 and no lock */
	static __thread struct {
		char tok[257];
		size_t len;
		char ns[64];
		char role[16];
		unsigned gen;
	} last;
	if (last.len == hl && last.gen == __atomic_load_n(&tcache_gen, __ATOMIC_ACQUIRE) &&
	    !CRYPTO_memcmp(last.tok, h, hl)) {
		memcpy(r->ns, last.ns, sizeof r->ns);
		memcpy(r->role, last.role, sizeof r->role);
		return 0;
	}
	if (util_sha256_hex(h, hl, hash))
		return -1;
	if (r->k->admin_hash[0] && !CRYPTO_memcmp(hash, r->k->admin_hash, 64)) {
		strcpy(r->role, "admin");
		r->ns[0] = 0;
		goto remember;
	}
	unsigned slot = tcache_slot(hash), gen;
	pthread_mutex_lock(&tcache_lock);
	struct tcache_entry *e = &tcache[slot];
	gen = tcache_gen;
	if (e->gen == tcache_gen && !memcmp(e->hash, hash, 64)) {
		memcpy(r->ns, e->ns, sizeof r->ns);
		memcpy(r->role, e->role, sizeof r->role);
		pthread_mutex_unlock(&tcache_lock);
		goto remember_gen;
	}
	pthread_mutex_unlock(&tcache_lock);
	if (db_get(r->k->db, NULL, DB_TOKENS, hash, &t))
		return -1;
	snprintf(r->ns, sizeof r->ns, "%s", js_str(t, "ns", ""));
	snprintf(r->role, sizeof r->role, "%s", js_str(t, "role", "viewer"));
	json_object_put(t);
	pthread_mutex_lock(&tcache_lock);
	if (gen == tcache_gen) {
		memcpy(e->hash, hash, 65);
		memcpy(e->ns, r->ns, sizeof e->ns);
		memcpy(e->role, r->role, sizeof e->role);
		e->gen = gen;
	}
	pthread_mutex_unlock(&tcache_lock);
	goto remember_gen;
remember:
	gen = __atomic_load_n(&tcache_gen, __ATOMIC_ACQUIRE);
remember_gen:
	memcpy(last.tok, h, hl);
	last.len = hl;
	memcpy(last.ns, r->ns, sizeof last.ns);
	memcpy(last.role, r->role, sizeof last.role);
	last.gen = gen;
	return 0;
}

/* Routes and authorises R (first call). Returns 1 when a reply was queued, 0 to go on. */
static int route(struct conn *c)
{
	struct req *r = &c->r;
	const char *allow = NULL;
	size_t i;

	for (i = 0; i < NROUTES; i++) {
		if (!match(routes[i].pattern, r->url, r))
			continue;
		if (!strcmp(routes[i].method, r->method)) {
			c->route = &routes[i];
			break;
		}
		allow = routes[i].method;
	}
	if (!c->route) {
		if (allow) {
			http_reply_error(r, 405, "method %s not allowed on %s", r->method, r->url);
			return 1;
		}
		http_reply_error(r, 404, "no such endpoint: %s %s", r->method, r->url);
		return 1;
	}
	if (c->route->auth == AUTH_NONE)
		return 0;
	if (r->conn ? authenticate(r) : !r->role[0]) {
		http_reply_error(r, 401, "missing or invalid bearer token");
		return 1;
	}
	switch (c->route->auth) {
	case AUTH_ADMIN:
		if (strcmp(r->role, "admin")) {
			http_reply_error(r, 403, "this action needs an admin token");
			return 1;
		}
		break;
	case AUTH_READ:
	case AUTH_WRITE:
		if (!strcmp(r->role, "admin")) {
			http_reply_error(r, 403, "an admin token has no namespace: use a team token");
			return 1;
		}
		if (c->route->auth == AUTH_WRITE && strcmp(r->role, "member")) {
			http_reply_error(r, 403, "role '%s' may not %s %s", r->role, r->method, r->url);
			return 1;
		}
		break;
	default:
		break;
	}
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *size, void **con_cls)
{
	struct kfpd *k = cls;
	struct conn *c = *con_cls;
	struct req *r;

	(void)version;
	if (!c) {
		const char *cl;
		if (!(c = calloc(1, sizeof *c)))
			return MHD_NO;
		*con_cls = c;
		r = &c->r;
		r->k = k;
		r->conn = conn;
		r->url = url;
		r->method = method;
		r->t0 = util_now_ms();
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (cl && strtoull(cl, NULL, 10) > KFPD_MAX_BODY) {
			/* up to 16 times the limit is read and dropped, so that the client reads the
			 * 413; beyond, the answer comes at once and the connection closes */
			if (strtoull(cl, NULL, 10) > 16ull * KFPD_MAX_BODY) {
				c->answered = 1;
				http_reply_error(r, 413, "request body larger than %u bytes",
						 KFPD_MAX_BODY);
				return MHD_YES;
			}
			r->too_big = 1;
		}
		if (route(c))
			c->answered = 1;
		return MHD_YES;
	}
	r = &c->r;
	if (*size) {
		r->seen += *size;
		if (r->seen > 16ull * KFPD_MAX_BODY)
			return MHD_NO; /* a body that never ends: close the connection */
		if (!c->answered && !r->too_big) {
			if (r->len + *size > KFPD_MAX_BODY) {
				r->too_big = 1;
			} else {
				if (r->len + *size + 1 > r->cap) {
					size_t nc = r->cap ? r->cap : 4096;
					while (nc < r->len + *size + 1)
						nc *= 2;
					char *nb = realloc(r->body, nc);
					if (!nb)
						return MHD_NO;
					r->body = nb, r->cap = nc;
				}
				memcpy(r->body + r->len, data, *size);
				r->len += *size;
				r->body[r->len] = 0;
			}
		}
		*size = 0;
		return MHD_YES;
	}
	if (c->answered) {
		if (r->resumed) { /* a parked request, resumed: its reply now */
			http_handler fn = r->resumed;
			r->resumed = NULL;
			return fn(r) == MHD_YES ? MHD_YES : MHD_NO;
		}
		return MHD_YES;
	}
	c->answered = 1;
	if (r->too_big && !r->status)
		return http_reply_error(r, 413, "request body larger than %u bytes", KFPD_MAX_BODY);
	if (!r->body && !(r->body = calloc(1, 1)))
		return MHD_NO;
	return c->route->fn(r) == MHD_YES ? MHD_YES : MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct conn *c = *con_cls;
	struct req *r;

	(void)cls, (void)conn;
	if (!c)
		return;
	r = &c->r;
	metrics_http(r->method, r->status);
	if (r->status >= 400 || strcmp(r->method, "GET") || toe != MHD_REQUEST_TERMINATED_COMPLETED_OK) {
		json_object *f = json_object_new_object();
		json_object_object_add(f, "method", json_object_new_string(r->method));
		json_object_object_add(f, "path", json_object_new_string(r->url));
		json_object_object_add(f, "status", json_object_new_int((int)r->status));
		json_object_object_add(f, "ms", json_object_new_int64(util_now_ms() - r->t0));
		if (r->ns[0])
			json_object_object_add(f, "ns", json_object_new_string(r->ns));
		if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
			json_object_object_add(f, "terminated", json_object_new_int((int)toe));
		log_json(r->status >= 500 ? "error" : "info", "http", f);
	}
	if (r->stream_free)
		r->stream_free(r->stream);
	free(r->body);
	free(c);
	*con_cls = NULL;
}

unsigned http_inproc(struct kfpd *k, const char *method, const char *url, const char *ns,
		     const char *role, const char *body, size_t len)
{
	struct conn *c = calloc(1, sizeof *c);
	struct req *r;
	char *path = NULL, *q, *s;
	unsigned status = 0;

	if (!c)
		return 0;
	r = &c->r;
	if (!(path = strdup(url)) || !(r->body = malloc(len + 1)))
		goto out;
	memcpy(r->body, body, len);
	r->body[len] = 0;
	r->len = r->cap = len;
	if ((q = strchr(path, '?'))) {
		*q++ = 0;
		if (!(r->qbuf = strdup(q)))
			goto out;
		for (s = r->qbuf; s && r->nq < 16;) {
			char *amp = strchr(s, '&'), *eq;
			if (amp)
				*amp++ = 0;
			if ((eq = strchr(s, '=')))
				*eq++ = 0;
			r->qk[r->nq] = s;
			r->qv[r->nq++] = eq ? eq : "";
			s = amp;
		}
	}
	r->k = k;
	r->method = method;
	r->url = path;
	r->t0 = util_now_ms();
	snprintf(r->ns, sizeof r->ns, "%s", ns);
	snprintf(r->role, sizeof r->role, "%s", role);
	if (!route(c))
		c->route->fn(r);
	status = r->status;
out:
	if (r->stream_free)
		r->stream_free(r->stream);
	free(r->qbuf);
	free(r->body);
	free(path);
	free(c);
	return status;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];

	(void)cls;
	vsnprintf(msg, sizeof msg, fmt, ap);
	msg[strcspn(msg, "\n")] = 0;
	log_kv("warn", "libmicrohttpd", "detail", msg, NULL);
}

int http_parse_listen(const char *listen, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(listen, ':');
	long port;
	char *end;

	memset(sa, 0, sizeof *sa);
	sa->sin_family = AF_INET;
	if (!colon || (size_t)(colon - listen) >= sizeof host || !colon[1])
		return -1;
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535 ||
	    inet_pton(AF_INET, strcmp(host, "localhost") ? host : "127.0.0.1", &sa->sin_addr) != 1)
		return -1;
	sa->sin_port = htons((uint16_t)port);
	return 0;
}

int http_start(struct kfpd *k)
{
	struct sockaddr_in sa;

	if (http_parse_listen(k->listen, &sa)) {
		log_kv("error", "bad --listen (want IPv4:PORT)", "listen", k->listen, NULL);
		return -1;
	}
	k->mhd = MHD_start_daemon(
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG, 0, NULL,
		NULL, on_request, k, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, k,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)k->threads, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)KFPD_MAX_HEADERS, MHD_OPTION_CONNECTION_LIMIT, 4000u,
		MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, k, MHD_OPTION_END);
	if (!k->mhd) {
		log_kv("error", "cannot listen", "listen", k->listen, "detail", strerror(errno), NULL);
		return -1;
	}
	return 0;
}

void http_stop(struct kfpd *k)
{
	if (!k->mhd)
		return;
	MHD_quiesce_daemon(k->mhd);
	http_resume_all();
	MHD_stop_daemon(k->mhd);
	k->mhd = NULL;
	pthread_mutex_lock(&susp_lock);
	free(susp);
	susp = NULL;
	nsusp = capsusp = 0;
	pthread_mutex_unlock(&susp_lock);
}
