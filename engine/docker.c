/* docker.c - Docker Engine REST API client (libcurl + json-c). See docker.h.
 *
 * Design:
 *   - One reusable curl easy handle for synchronous requests (create, start, inspect, kill,
 *     delete, list, pull...). curl_easy_reset between requests keeps the connection to the
 *     socket alive, so a step costs a handful of round trips on one connection.
 *   - One curl multi handle for the log streams of running containers, driven with the
 *     multi_socket API: curl's sockets and a timerfd for curl's timers are registered in an
 *     epoll set whose descriptor the caller polls (docker_fd), plus an eventfd for
 *     docker_notify. docker_pump never blocks.
 *   - Every socket is opened with SOCK_CLOEXEC (CURLOPT_OPENSOCKETFUNCTION).
 *   - Error messages: "<what we tried, naming the image or container>: <why>", where why is
 *     "HTTP <code>: <the engine's message>" or the curl error plus the endpoint.
 *
 * Multiplexed stream (logs of a container created without a TTY): frames of an 8-byte header
 * {STREAM, 0, 0, 0, SIZE (uint32, big endian)} and SIZE bytes of payload; STREAM is 1 for
 * stdout and 2 for stderr (0, stdin, is written to stdout). Frames may be split anywhere
 * across curl's write callbacks, so the demultiplexer is a small state machine. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "docker.h"

#define API_DEFAULT "1.41"
#define BODY_MAX (16u << 20) /* largest JSON response we accept */

struct buf {
	char *p;
	size_t len, cap;
	size_t max;   /* 0: BODY_MAX */
	int overflow; /* 1: data beyond max was dropped */
};

/* The demultiplexer of one log stream (see the top): frames to two descriptors. */
struct demux {
	int out_fd, err_fd;
	unsigned char hdr[8];
	size_t hdrlen;
	uint32_t remain;   /* payload bytes left in the current frame */
	int stream;        /* of the current frame */
	int raw;           /* 1: the stream is not multiplexed (TTY): copy to out_fd */
	int framed;        /* 1: at least one header was seen */
	int werr;          /* errno of a failed write to a descriptor, 0 none */
	uint64_t bytes;    /* payload bytes written */
	uint64_t out_limit; /* 0: none; else stdout bytes kept, the rest dropped */
	uint64_t out_bytes; /* stdout bytes that arrived (counted only with a limit) */
	int cut;           /* 1: stdout passed out_limit (note written, the rest dropped) */
	char note[256];    /* written once to out_fd at the cut ("" none) */
};

struct docker {
	char *host;      /* as given: "unix:///var/run/docker.sock" */
	char *sock;      /* unix socket path, or NULL for tcp */
	char *base;      /* "http://localhost" or "http://host:port" */
	char api[16];    /* "1.41" */
	char engine[128];
	double timeout;  /* seconds, synchronous requests */
	CURL *easy;
	CURLM *multi;
	int epfd, tfd, efd;
	int afd;         /* timerfd of docker_alarm */
	int running;     /* transfers still running in multi */
	struct docker_watch *watches; /* all watches, linked by next */
	char err[1024];
};

struct docker_watch {
	struct docker *d;
	enum docker_watch_kind kind;
	CURL *easy;
	struct curl_slist *hdrs;
	char *id;
	char url[512];
	struct demux dm;
	int status;        /* 1 running, 0 ended normally, DOCKER_E* */
	int reported;      /* 1: returned by docker_watch_done */
	int in_multi;
	struct buf errbody; /* body of a non-200 response */
	char msg[512];
	void *udata;
	struct docker_watch *next;
};

/* ---- small helpers ------------------------------------------------------------------- */

static void seterr(struct docker *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void seterr(struct docker *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->err, sizeof d->err, fmt, ap);
	va_end(ap);
}

static int buf_add(struct buf *b, const void *p, size_t n)
{
	size_t max = b->max ? b->max : BODY_MAX;

	if (b->len + n > max) {
		b->overflow = 1;
		n = max > b->len ? max - b->len : 0;
		if (!n)
			return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *q;

		while (cap < b->len + n + 1)
			cap *= 2;
		q = realloc(b->p, cap);
		if (!q)
			return -1;
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = 0;
	return 0;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static size_t buf_write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;

	if (buf_add(b, p, size * n) < 0)
		return 0;
	return size * n;
}

/* Every socket curl opens is close-on-exec. */
static curl_socket_t open_socket_cb(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	(void)ud;
	(void)purpose;
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* The engine's {"message": "..."} from an error body, else the body itself (trimmed).
 * Writes into out[len]. */
static void api_message(const char *body, size_t blen, char *out, size_t len)
{
	json_object *o = NULL, *m;
	size_t n;

	out[0] = 0;
	if (!body || !blen)
		return;
	o = json_tokener_parse(body);
	if (o && json_object_object_get_ex(o, "message", &m) && json_object_is_type(m, json_type_string)) {
		snprintf(out, len, "%s", json_object_get_string(m));
		json_object_put(o);
		return;
	}
	json_object_put(o);
	n = blen < len - 1 ? blen : len - 1;
	memcpy(out, body, n);
	out[n] = 0;
	while (n && isspace((unsigned char)out[n - 1]))
		out[--n] = 0;
}

static int curl_status(CURLcode rc)
{
	switch (rc) {
	case CURLE_OK:
		return DOCKER_OK;
	case CURLE_OPERATION_TIMEDOUT:
		return DOCKER_ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY:
		return DOCKER_ENOMEM;
	case CURLE_WRITE_ERROR:
		return DOCKER_EIO;
	default:
		return DOCKER_EUNREACH;
	}
}

static int http_status(long code)
{
	if (code >= 200 && code < 300)
		return DOCKER_OK;
	if (code == 304) /* already started / already stopped */
		return DOCKER_OK;
	if (code == 404)
		return DOCKER_ENOTFOUND;
	if (code == 409)
		return DOCKER_ECONFLICT;
	return DOCKER_EAPI;
}

/* ---- the client ---------------------------------------------------------------------- */

static int timer_cb(CURLM *m, long timeout_ms, void *ud);
static int socket_cb(CURL *e, curl_socket_t s, int what, void *ud, void *sockp);

struct docker *docker_open(const char *host, char *err, size_t errlen)
{
	struct docker *d;
	const char *env;
	struct epoll_event ev;
	static int curl_ready;

	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			snprintf(err, errlen, "docker: libcurl initialisation failed");
			return NULL;
		}
		curl_ready = 1;
	}
	if (!host || !*host) {
		host = getenv("DOCKER_HOST");
		if (!host || !*host)
			host = "unix:///var/run/docker.sock";
	}
	d = calloc(1, sizeof *d);
	if (!d)
		goto nomem;
	d->epfd = d->tfd = d->efd = d->afd = -1;
	d->timeout = 60;
	env = getenv("KFPC_DOCKER_TIMEOUT");
	if (env && atof(env) > 0)
		d->timeout = atof(env);
	env = getenv("KFPC_DOCKER_API_VERSION");
	snprintf(d->api, sizeof d->api, "%s", env && *env ? env : API_DEFAULT);
	d->host = strdup(host);
	if (!d->host)
		goto nomem;
	if (!strncmp(host, "unix://", 7)) {
		if (host[7] != '/' || strlen(host + 7) > 107) {
			snprintf(err, errlen,
				 "docker: DOCKER_HOST '%s': expected unix:///ABSOLUTE/PATH (at most 107 "
				 "characters)", host);
			goto fail;
		}
		d->sock = strdup(host + 7);
		d->base = strdup("http://localhost");
		if (!d->sock || !d->base)
			goto nomem;
	} else if (!strncmp(host, "tcp://", 6) || !strncmp(host, "http://", 7)) {
		const char *hp = host + (host[0] == 't' ? 6 : 7);
		size_t n = strlen(hp);

		while (n && hp[n - 1] == '/')
			n--;
		if (!n) {
			snprintf(err, errlen, "docker: DOCKER_HOST '%s': no host", host);
			goto fail;
		}
		d->base = malloc(n + 8);
		if (!d->base)
			goto nomem;
		memcpy(d->base, "http://", 7);
		memcpy(d->base + 7, hp, n);
		d->base[7 + n] = 0;
	} else {
		snprintf(err, errlen,
			 "docker: DOCKER_HOST '%s' is not supported (use unix:///path or "
			 "tcp://host:port)", host);
		goto fail;
	}
	d->easy = curl_easy_init();
	d->multi = curl_multi_init();
	if (!d->easy || !d->multi)
		goto nomem;
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->afd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->epfd < 0 || d->tfd < 0 || d->efd < 0 || d->afd < 0) {
		snprintf(err, errlen, "docker: cannot create descriptors: %s", strerror(errno));
		goto fail;
	}
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.fd = d->tfd;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->tfd, &ev) < 0)
		goto epfail;
	ev.data.fd = d->efd;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->efd, &ev) < 0)
		goto epfail;
	ev.data.fd = d->afd;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->afd, &ev) < 0)
		goto epfail;
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
	return d;
epfail:
	snprintf(err, errlen, "docker: epoll_ctl: %s", strerror(errno));
	goto fail;
nomem:
	snprintf(err, errlen, "docker: out of memory");
fail:
	docker_close(d);
	return NULL;
}

void docker_close(struct docker *d)
{
	if (!d)
		return;
	while (d->watches)
		docker_watch_free(d->watches);
	if (d->multi)
		curl_multi_cleanup(d->multi);
	if (d->easy)
		curl_easy_cleanup(d->easy);
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->tfd >= 0)
		close(d->tfd);
	if (d->efd >= 0)
		close(d->efd);
	if (d->afd >= 0)
		close(d->afd);
	free(d->host);
	free(d->sock);
	free(d->base);
	free(d);
}

const char *docker_host(const struct docker *d)
{
	return d->host;
}

const char *docker_errmsg(const struct docker *d)
{
	return d->err;
}

const char *docker_engine_name(const struct docker *d)
{
	return d->engine;
}

void docker_set_timeout(struct docker *d, double seconds)
{
	if (seconds > 0)
		d->timeout = seconds;
}

/* Sets the options shared by every request on handle E: endpoint, socket, URL. */
static void setup_easy(struct docker *d, CURL *e, const char *url)
{
	curl_easy_setopt(e, CURLOPT_URL, url);
	if (d->sock)
		curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, d->sock);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
}

/* Builds the URL for PATH (versioned unless RAW) into out[len]. */
static int make_url(struct docker *d, const char *path, int raw, char *out, size_t len)
{
	int n;

	if (raw)
		n = snprintf(out, len, "%s%s", d->base, path);
	else
		n = snprintf(out, len, "%s/v%s%s", d->base, d->api, path);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* The "why" of a failed transfer on E with result RC: curl's message and the endpoint. */
static void transfer_error(struct docker *d, CURLcode rc, char *out, size_t len)
{
	if (rc == CURLE_OPERATION_TIMEDOUT)
		snprintf(out, len, "the Docker engine at %s did not answer in time (%s)", d->host,
			 curl_easy_strerror(rc));
	else
		snprintf(out, len, "cannot reach the Docker engine at %s: %s", d->host,
			 curl_easy_strerror(rc));
}

struct req {
	const char *method;      /* GET POST DELETE */
	const char *path;        /* "/containers/ID/start" */
	int raw;                 /* 1: unversioned path */
	const char *body;        /* JSON, or NULL */
	const char *auth;        /* X-Registry-Auth value, or NULL */
	double timeout;          /* 0: d->timeout */
	int stall;               /* 1: also abort when < 1 byte/s for stall_s seconds */
	long stall_s;            /* 0: 120 */
	curl_write_callback wcb; /* NULL: collect into resp */
	void *wud;
	const char *what;        /* context for messages: "start container 3f2a..", or "" */
};

/* Performs R synchronously. Returns 0 (HTTP 2xx/304) or a DOCKER_E* code with the message
 * set; *code gets the HTTP status (0 if none). The body is in *resp (caller frees). */
static int request(struct docker *d, const struct req *r, long *code, struct buf *resp)
{
	char url[2048], why[700], amsg[512];
	struct curl_slist *hdrs = NULL, *h;
	CURLcode rc;
	long http = 0;
	int st;
	double tmo = r->timeout > 0 ? r->timeout : d->timeout;

	*code = 0;
	if (make_url(d, r->path, r->raw, url, sizeof url) < 0) {
		seterr(d, "%s: request path too long", r->what);
		return DOCKER_EINVAL;
	}
	curl_easy_reset(d->easy);
	setup_easy(d, d->easy, url);
	if (r->stall) {
		curl_easy_setopt(d->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(d->easy, CURLOPT_LOW_SPEED_TIME, r->stall_s > 0 ? r->stall_s : 120L);
		curl_easy_setopt(d->easy, CURLOPT_TIMEOUT_MS, (long)(tmo * 1000));
	} else {
		curl_easy_setopt(d->easy, CURLOPT_TIMEOUT_MS, (long)(tmo * 1000));
	}
	if (!strcmp(r->method, "POST")) {
		curl_easy_setopt(d->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(d->easy, CURLOPT_POSTFIELDS, r->body ? r->body : "");
		curl_easy_setopt(d->easy, CURLOPT_POSTFIELDSIZE, (long)(r->body ? strlen(r->body) : 0));
	} else if (strcmp(r->method, "GET")) {
		curl_easy_setopt(d->easy, CURLOPT_CUSTOMREQUEST, r->method);
	}
	if (r->body) {
		h = curl_slist_append(hdrs, "Content-Type: application/json");
		if (!h)
			goto nomem;
		hdrs = h;
	}
	if (r->auth) {
		char *line = malloc(strlen(r->auth) + 32);

		if (!line)
			goto nomem;
		sprintf(line, "X-Registry-Auth: %s", r->auth);
		h = curl_slist_append(hdrs, line);
		free(line);
		if (!h)
			goto nomem;
		hdrs = h;
	}
	h = curl_slist_append(hdrs, "Expect:");
	if (!h)
		goto nomem;
	hdrs = h;
	curl_easy_setopt(d->easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(d->easy, CURLOPT_WRITEFUNCTION, r->wcb ? r->wcb : buf_write_cb);
	curl_easy_setopt(d->easy, CURLOPT_WRITEDATA, r->wcb ? r->wud : (void *)resp);
	rc = curl_easy_perform(d->easy);
	curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &http);
	curl_slist_free_all(hdrs);
	curl_easy_setopt(d->easy, CURLOPT_HTTPHEADER, NULL);
	*code = http;
	if (rc != CURLE_OK) {
		transfer_error(d, rc, why, sizeof why);
		if (r->what[0])
			seterr(d, "%s: %s", r->what, why);
		else
			seterr(d, "%s", why);
		return curl_status(rc);
	}
	st = http_status(http);
	if (st != DOCKER_OK) {
		api_message(resp ? resp->p : NULL, resp ? resp->len : 0, amsg, sizeof amsg);
		seterr(d, "%s%sHTTP %ld%s%s", r->what[0] ? r->what : "the Docker engine answered",
		       ": ", http, amsg[0] ? ": " : "", amsg);
	}
	return st;
nomem:
	curl_slist_free_all(hdrs);
	seterr(d, "%s: out of memory", r->what);
	return DOCKER_ENOMEM;
}

/* Performs R collecting the body; parses it as JSON into *out when OUT is not NULL and the
 * request succeeded. */
static int request_json(struct docker *d, const struct req *r, long *code, json_object **out)
{
	struct buf b = {0};
	int st = request(d, r, code, &b);

	if (out)
		*out = NULL;
	if (st == DOCKER_OK && out) {
		*out = b.p ? json_tokener_parse(b.p) : NULL;
		if (!*out) {
			seterr(d, "%s: the engine's answer is not JSON", r->what);
			st = DOCKER_EPROTO;
		}
	}
	buf_free(&b);
	return st;
}

static int version_cmp(const char *a, const char *b)
{
	int a1 = 0, a2 = 0, b1 = 0, b2 = 0;

	sscanf(a, "%d.%d", &a1, &a2);
	sscanf(b, "%d.%d", &b1, &b2);
	return a1 != b1 ? (a1 > b1) - (a1 < b1) : (a2 > b2) - (a2 < b2);
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

int docker_ping(struct docker *d)
{
	struct req r = {.method = "GET", .path = "/_ping", .raw = 1, .what = ""};
	json_object *v = NULL, *comps, *c0;
	const char *api, *name = NULL, *ver;
	long code;
	int st;

	st = request_json(d, &r, &code, NULL);
	if (st == DOCKER_EUNREACH) {
		char msg[sizeof d->err];

		snprintf(msg, sizeof msg, "%s", d->err);
		seterr(d, "%s (is dockerd or `podman system service` running? DOCKER_HOST selects "
		       "the engine)", msg);
	}
	if (st)
		return st;
	r.path = "/version";
	r.what = "ask the Docker engine for its version";
	st = request_json(d, &r, &code, &v);
	if (st)
		return st;
	api = jstr(v, "ApiVersion");
	if (api && !getenv("KFPC_DOCKER_API_VERSION") && version_cmp(api, d->api) < 0)
		snprintf(d->api, sizeof d->api, "%s", api);
	if (json_object_object_get_ex(v, "Components", &comps) &&
	    json_object_is_type(comps, json_type_array) && json_object_array_length(comps) > 0) {
		c0 = json_object_array_get_idx(comps, 0);
		name = jstr(c0, "Name");
	}
	ver = jstr(v, "Version");
	snprintf(d->engine, sizeof d->engine, "%s %s", name ? name : "Engine", ver ? ver : "?");
	json_object_put(v);
	return 0;
}

int docker_info(struct docker *d, int64_t *ncpu, int64_t *mem)
{
	struct req r = {.method = "GET", .path = "/info", .what = "ask the Docker engine about the machine"};
	json_object *v = NULL, *x;
	long code;
	int st = request_json(d, &r, &code, &v);

	if (st)
		return st;
	*ncpu = json_object_object_get_ex(v, "NCPU", &x) ? json_object_get_int64(x) : 0;
	*mem = json_object_object_get_ex(v, "MemTotal", &x) ? json_object_get_int64(x) : 0;
	json_object_put(v);
	return 0;
}

/* ---- images -------------------------------------------------------------------------- */

/* Percent-escapes S into a new string (free with curl_free), or NULL. */
static char *esc(struct docker *d, const char *s)
{
	return curl_easy_escape(d->easy, s, 0);
}

int docker_image_present(struct docker *d, const char *image)
{
	char path[1200], what[600];
	struct req r = {.method = "GET", .path = path, .what = what};
	long code;
	int st;

	if (strlen(image) > 1000 || strchr(image, '?') || strchr(image, '#') || strchr(image, ' ')) {
		seterr(d, "image '%s': malformed reference", image);
		return DOCKER_EINVAL;
	}
	snprintf(path, sizeof path, "/images/%s/json", image);
	snprintf(what, sizeof what, "look up image '%s'", image);
	st = request_json(d, &r, &code, NULL);
	if (st == DOCKER_ENOTFOUND)
		return 0;
	return st ? st : 1;
}

/* Splits IMAGE into repository and tag (or digest) in repo[rl] and tag[tl]; a missing tag
 * is "latest". Returns 0 or -1 (too long). */
static int split_image(const char *image, char *repo, size_t rl, char *tag, size_t tl)
{
	const char *at = strchr(image, '@'), *slash, *colon;
	size_t n;

	if (at) {
		n = (size_t)(at - image);
		if (n >= rl || strlen(at + 1) >= tl)
			return -1;
		memcpy(repo, image, n);
		repo[n] = 0;
		/* name:tag@digest: the digest wins */
		slash = strrchr(repo, '/');
		colon = strrchr(repo, ':');
		if (colon && (!slash || colon > slash))
			*(char *)colon = 0;
		snprintf(tag, tl, "%s", at + 1);
		return 0;
	}
	slash = strrchr(image, '/');
	colon = strrchr(image, ':');
	if (colon && (!slash || colon > slash)) {
		n = (size_t)(colon - image);
		if (n >= rl || strlen(colon + 1) >= tl)
			return -1;
		memcpy(repo, image, n);
		repo[n] = 0;
		snprintf(tag, tl, "%s", colon + 1);
		return 0;
	}
	if (strlen(image) >= rl)
		return -1;
	snprintf(repo, rl, "%s", image);
	snprintf(tag, tl, "latest");
	return 0;
}

/* The registry host of repository REPO: its first component when that looks like a host,
 * else "docker.io". Written to out[len]. */
static void registry_of(const char *repo, char *out, size_t len)
{
	const char *slash = strchr(repo, '/');
	size_t n;

	if (slash) {
		n = (size_t)(slash - repo);
		if (memchr(repo, '.', n) || memchr(repo, ':', n) || (n == 9 && !memcmp(repo, "localhost", 9))) {
			snprintf(out, len, "%.*s", (int)n, repo);
			return;
		}
	}
	snprintf(out, len, "docker.io");
}

/* The host part of a config.json "auths" key ("https://index.docker.io/v1/" ->
 * "index.docker.io"). */
static void auth_key_host(const char *key, char *out, size_t len)
{
	const char *p = strstr(key, "://");
	size_t n;

	p = p ? p + 3 : key;
	n = strcspn(p, "/");
	snprintf(out, len, "%.*s", (int)n, p);
}

static int same_registry(const char *a, const char *b)
{
	static const char *const hub[] = {"docker.io", "index.docker.io", "registry-1.docker.io"};
	int ha = 0, hb = 0;

	if (!strcmp(a, b))
		return 1;
	for (size_t i = 0; i < 3; i++) {
		ha |= !strcmp(a, hub[i]);
		hb |= !strcmp(b, hub[i]);
	}
	return ha && hb;
}

/* The X-Registry-Auth value (base64url of {"username","password","serveraddress"}) for
 * REGISTRY from the Docker config file, or NULL when there is none. Caller frees. */
static char *registry_auth(const char *registry)
{
	char path[1024], host[512];
	const char *dir = getenv("DOCKER_CONFIG"), *home = getenv("HOME");
	json_object *cfg = NULL, *auths, *out = NULL;
	char *res = NULL;

	if (dir && *dir)
		snprintf(path, sizeof path, "%s/config.json", dir);
	else if (home && *home)
		snprintf(path, sizeof path, "%s/.docker/config.json", home);
	else
		return NULL;
	if (access(path, R_OK) != 0)
		return NULL;
	cfg = json_object_from_file(path);
	if (!cfg || !json_object_object_get_ex(cfg, "auths", &auths) ||
	    !json_object_is_type(auths, json_type_object))
		goto done;
	json_object_object_foreach(auths, key, ent) {
		const char *b64, *user = NULL, *pass = NULL, *tok;
		unsigned char *dec = NULL;

		auth_key_host(key, host, sizeof host);
		if (!same_registry(host, registry))
			continue;
		out = json_object_new_object();
		if (!out)
			goto done;
		b64 = jstr(ent, "auth");
		if (b64 && *b64) {
			size_t bl = strlen(b64);
			int n, pad = 0;
			char *colon;

			dec = malloc(bl + 4);
			if (!dec)
				goto done;
			n = EVP_DecodeBlock(dec, (const unsigned char *)b64, (int)bl);
			if (n < 0) {
				free(dec);
				continue;
			}
			while (bl && b64[bl - 1] == '=') {
				pad++;
				bl--;
			}
			n -= pad;
			dec[n > 0 ? n : 0] = 0;
			colon = strchr((char *)dec, ':');
			if (colon) {
				*colon = 0;
				user = (char *)dec;
				pass = colon + 1;
			}
		} else {
			user = jstr(ent, "username");
			pass = jstr(ent, "password");
		}
		tok = jstr(ent, "identitytoken");
		if (user)
			json_object_object_add(out, "username", json_object_new_string(user));
		if (pass)
			json_object_object_add(out, "password", json_object_new_string(pass));
		if (tok && *tok)
			json_object_object_add(out, "identitytoken", json_object_new_string(tok));
		json_object_object_add(out, "serveraddress", json_object_new_string(key));
		free(dec);
		break;
	}
	if (out) {
		const char *js = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN);
		size_t jl = strlen(js);

		res = malloc(4 * ((jl + 2) / 3) + 1);
		if (res) {
			EVP_EncodeBlock((unsigned char *)res, (const unsigned char *)js, (int)jl);
			for (char *p = res; *p; p++) /* base64url, as the engine decodes it */
				if (*p == '+')
					*p = '-';
				else if (*p == '/')
					*p = '_';
		}
	}
done:
	json_object_put(out);
	json_object_put(cfg);
	return res;
}

/* The pull progress stream: one JSON object per line; an "error" member means failure. */
struct pull_state {
	struct buf line;
	char error[512];
};

static void pull_line(struct pull_state *ps)
{
	json_object *o;
	const char *e;

	if (!ps->line.len)
		return;
	if (strstr(ps->line.p, "\"error") || strstr(ps->line.p, "\"message\"")) {
		o = json_tokener_parse(ps->line.p);
		e = jstr(o, "error");
		if (!e)
			e = jstr(o, "message"); /* the body of an HTTP error */
		if (e)
			snprintf(ps->error, sizeof ps->error, "%s", e);
		json_object_put(o);
	}
	ps->line.len = 0;
}

static size_t pull_write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct pull_state *ps = ud;
	size_t total = size * n;

	for (size_t i = 0; i < total; i++) {
		if (p[i] == '\n')
			pull_line(ps);
		else if (buf_add(&ps->line, p + i, 1) < 0)
			return 0;
	}
	return total;
}

int docker_image_pull(struct docker *d, const char *image)
{
	char repo[1024], tag[256], reg[512], what[1200], *path = NULL, *er = NULL, *et = NULL;
	char *auth = NULL;
	struct pull_state ps = {.line = {.max = 1 << 20}};
	struct req r = {.method = "POST", .what = what, .timeout = 1800, .stall = 1,
			.wcb = pull_write_cb, .wud = &ps};
	long code;
	int st;

	snprintf(what, sizeof what, "pull image '%s'", image);
	if (split_image(image, repo, sizeof repo, tag, sizeof tag) < 0) {
		seterr(d, "image '%s': reference too long", image);
		return DOCKER_EINVAL;
	}
	registry_of(repo, reg, sizeof reg);
	auth = registry_auth(reg);
	er = esc(d, repo);
	et = esc(d, tag);
	if (!er || !et || !(path = malloc(strlen(er) + strlen(et) + 64))) {
		st = DOCKER_ENOMEM;
		seterr(d, "%s: out of memory", what);
		goto out;
	}
	sprintf(path, "/images/create?fromImage=%s&tag=%s", er, et);
	r.path = path;
	r.auth = auth;
	st = request(d, &r, &code, NULL);
	pull_line(&ps);
	if (st == DOCKER_OK && ps.error[0]) {
		seterr(d, "cannot pull image '%s': %s", image, ps.error);
		st = strstr(ps.error, "not found") || strstr(ps.error, "does not exist") ||
		     strstr(ps.error, "manifest unknown") ? DOCKER_ENOTFOUND : DOCKER_EAPI;
	} else if (st != DOCKER_OK && code >= 400) {
		char amsg[512];

		snprintf(amsg, sizeof amsg, "%s", ps.error);
		seterr(d, "cannot pull image '%s': HTTP %ld%s%s", image, code, amsg[0] ? ": " : "",
		       amsg);
	}
out:
	curl_free(er);
	curl_free(et);
	free(path);
	free(auth);
	buf_free(&ps.line);
	return st;
}

/* ---- containers ---------------------------------------------------------------------- */

static json_object *str_array(char *const *v, size_t n)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < n; i++)
		json_object_array_add(a, json_object_new_string(v[i]));
	return a;
}

int docker_container_create(struct docker *d, const struct docker_create *c, char *id,
			    size_t idlen)
{
	json_object *cfg = json_object_new_object(), *hc = json_object_new_object(), *lab, *binds;
	json_object *resp = NULL, *rp;
	char what[1200], *path = NULL, *ename = NULL;
	struct req r = {.method = "POST", .what = what};
	const char *rid;
	long code;
	int st;

	snprintf(what, sizeof what, "create a container from image '%s'", c->image);
	if (!cfg || !hc)
		goto nomem;
	json_object_object_add(cfg, "Image", json_object_new_string(c->image));
	if (c->argv && c->argc) {
		json_object_object_add(cfg, "Entrypoint", str_array(c->argv, 1));
		json_object_object_add(cfg, "Cmd", str_array(c->argv + 1, c->argc - 1));
	}
	json_object_object_add(cfg, "Env", str_array(c->env, c->nenv));
	if (c->workdir)
		json_object_object_add(cfg, "WorkingDir", json_object_new_string(c->workdir));
	if (c->user)
		json_object_object_add(cfg, "User", json_object_new_string(c->user));
	json_object_object_add(cfg, "AttachStdin", json_object_new_boolean(0));
	json_object_object_add(cfg, "AttachStdout", json_object_new_boolean(0));
	json_object_object_add(cfg, "AttachStderr", json_object_new_boolean(0));
	json_object_object_add(cfg, "OpenStdin", json_object_new_boolean(0));
	json_object_object_add(cfg, "Tty", json_object_new_boolean(0));
	lab = json_object_new_object();
	if (!lab)
		goto nomem;
	for (size_t i = 0; i < c->nlabels; i++)
		json_object_object_add(lab, c->labels[2 * i], json_object_new_string(c->labels[2 * i + 1]));
	json_object_object_add(cfg, "Labels", lab);

	binds = json_object_new_array();
	if (!binds)
		goto nomem;
	for (size_t i = 0; i < c->nmounts; i++) {
		const struct docker_mount *m = &c->mounts[i];
		size_t n = strlen(m->host) + strlen(m->container) + 8;
		char *b = malloc(n);

		if (!b) {
			json_object_put(binds);
			goto nomem;
		}
		snprintf(b, n, "%s:%s%s", m->host, m->container, m->readonly ? ":ro" : "");
		json_object_array_add(binds, json_object_new_string(b));
		free(b);
	}
	json_object_object_add(hc, "Binds", binds);
	json_object_object_add(hc, "NetworkMode",
			       json_object_new_string(c->network_mode ? c->network_mode : "none"));
	if (c->nano_cpus > 0)
		json_object_object_add(hc, "NanoCpus", json_object_new_int64(c->nano_cpus));
	if (c->memory_bytes > 0) {
		json_object_object_add(hc, "Memory", json_object_new_int64(c->memory_bytes));
		json_object_object_add(hc, "MemorySwap", json_object_new_int64(c->memory_bytes));
	}
	if (c->gpus > 0) {
		json_object *dr = json_object_new_array(), *req1 = json_object_new_object();
		json_object *caps = json_object_new_array(), *cap1 = json_object_new_array();

		if (!dr || !req1 || !caps || !cap1) {
			json_object_put(dr);
			json_object_put(req1);
			json_object_put(caps);
			json_object_put(cap1);
			goto nomem;
		}
		json_object_array_add(cap1, json_object_new_string("gpu"));
		json_object_array_add(caps, cap1);
		json_object_object_add(req1, "Driver", json_object_new_string(""));
		json_object_object_add(req1, "Count", json_object_new_int64(c->gpus));
		json_object_object_add(req1, "Capabilities", caps);
		json_object_array_add(dr, req1);
		json_object_object_add(hc, "DeviceRequests", dr);
	}
	if (c->init)
		json_object_object_add(hc, "Init", json_object_new_boolean(1));
	if (c->nofile > 0 || c->nproc > 0) {
		json_object *ul = json_object_new_array();
		const char *names[2] = {"nofile", "nproc"};
		int64_t vals[2] = {c->nofile, c->nproc};

		if (!ul)
			goto nomem;
		for (int i = 0; i < 2; i++) {
			json_object *u;

			if (vals[i] <= 0 || !(u = json_object_new_object()))
				continue;
			json_object_object_add(u, "Name", json_object_new_string(names[i]));
			json_object_object_add(u, "Soft", json_object_new_int64(vals[i]));
			json_object_object_add(u, "Hard", json_object_new_int64(vals[i]));
			json_object_array_add(ul, u);
		}
		json_object_object_add(hc, "Ulimits", ul);
	}
	json_object_object_add(cfg, "HostConfig", hc);
	hc = NULL;

	if (c->name) {
		ename = esc(d, c->name);
		if (!ename)
			goto nomem;
	}
	path = malloc((ename ? strlen(ename) : 0) + 32);
	if (!path)
		goto nomem;
	sprintf(path, "/containers/create%s%s", ename ? "?name=" : "", ename ? ename : "");
	r.path = path;
	r.body = json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN);
	st = request_json(d, &r, &code, &resp);
	if (st == DOCKER_ENOTFOUND) {
		char msg[sizeof d->err];

		/* the message names the image: rephrase it so it reads well */
		snprintf(msg, sizeof msg, "%s", d->err);
		seterr(d, "image '%s' is not present in the Docker engine (%s)", c->image, msg);
	}
	if (st)
		goto out;
	rid = jstr(resp, "Id");
	if (!rid || strlen(rid) + 1 > idlen) {
		seterr(d, "%s: the engine returned no container id", what);
		st = DOCKER_EPROTO;
		goto out;
	}
	snprintf(id, idlen, "%s", rid);
	if (json_object_object_get_ex(resp, "Warnings", &rp)) {
		/* ignored: e.g. "swap limit not supported" */
	}
out:
	curl_free(ename);
	free(path);
	json_object_put(resp);
	json_object_put(cfg);
	return st;
nomem:
	json_object_put(hc);
	json_object_put(cfg);
	curl_free(ename);
	seterr(d, "%s: out of memory", what);
	return DOCKER_ENOMEM;
}

/* Writes "container NAME_OR_SHORT_ID" for messages into out[len]. */
static void cname(const char *id, char *out, size_t len)
{
	size_t n = strlen(id);
	int hex = n == 64;

	for (size_t i = 0; hex && i < n; i++)
		hex = isxdigit((unsigned char)id[i]);
	snprintf(out, len, "container %.*s", hex ? 12 : (int)(n > 300 ? 300 : n), id);
}

#define CREQ_PATH 512 /* sizes of the buffers container_req fills */
#define CREQ_WHAT 512
#define CREQ_CN 400

/* The names of a request about container ID: CN its short name, WHAT "VERB CN" for messages,
 * PATH the endpoint FMT with the URL-escaped id as its first %s (and ARG, or "", as its
 * second, if it has one). Returns 0, or DOCKER_ENOMEM (the error is set). */
static int container_req(struct docker *d, const char *id, const char *verb, const char *fmt,
			 const char *arg, char *path, char *what, char *cn)
{
	char *eid = esc(d, id);

	cname(id, cn, CREQ_CN);
	snprintf(what, CREQ_WHAT, "%s %s", verb, cn);
	if (!eid) {
		seterr(d, "%s: out of memory", what);
		return DOCKER_ENOMEM;
	}
	snprintf(path, CREQ_PATH, fmt, eid, arg ? arg : "");
	curl_free(eid);
	return 0;
}

static int simple_post(struct docker *d, const char *id, const char *fmt, const char *verb,
		       const char *method, const char *arg)
{
	char path[CREQ_PATH], what[CREQ_WHAT], cn[CREQ_CN];
	struct req r = {.method = method, .path = path, .what = what};
	long code;
	int st;

	if ((st = container_req(d, id, verb, fmt, arg, path, what, cn)))
		return st;
	st = request_json(d, &r, &code, NULL);
	if (st == DOCKER_ENOTFOUND) {
		char msg[sizeof d->err];

		snprintf(msg, sizeof msg, "%s", d->err);
		seterr(d, "no such %s (%s)", cn, msg);
	}
	return st;
}

int docker_container_start(struct docker *d, const char *id)
{
	return simple_post(d, id, "/containers/%s/start%s", "start", "POST", NULL);
}

int docker_container_kill(struct docker *d, const char *id, const char *sig)
{
	int st = simple_post(d, id, "/containers/%s/kill?signal=%s", "send a signal to", "POST", sig);

	/* Docker: 409 "is not running"; Podman 4: 409, or 500 "can only kill running containers.
	 * ID is in state stopped: container state improper" */
	if (st == DOCKER_ECONFLICT ||
	    (st == DOCKER_EAPI && (strstr(d->err, "not running") ||
				   strstr(d->err, "can only kill running") ||
				   strstr(d->err, "state improper"))))
		return 1;
	return st;
}

int docker_container_remove(struct docker *d, const char *id)
{
	int st = simple_post(d, id, "/containers/%s?force=1&v=1%s", "remove", "DELETE", NULL);

	if (st == DOCKER_ENOTFOUND)
		return 0;
	/* 409 "removal already in progress": it is going away */
	if (st == DOCKER_ECONFLICT && strstr(d->err, "in progress"))
		return 0;
	return st;
}

/* Parses an RFC 3339 time ("2026-11-29T07:56:01.848432050Z", "...+01:00"); 0 for the zero
 * time or garbage. */
static double parse_time(const char *s)
{
	struct tm tm;
	const char *p;
	double frac = 0, scale = 0.1;
	time_t t;
	int sign, hh = 0, mm = 0;

	if (!s)
		return 0;
	memset(&tm, 0, sizeof tm);
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!p || tm.tm_year < 71)
		return 0;
	if (*p == '.')
		for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
			frac += (*p - '0') * scale;
	t = timegm(&tm);
	if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (sscanf(p + 1, "%d:%d", &hh, &mm) == 2)
			t -= sign * (hh * 3600 + mm * 60);
	}
	return (double)t + frac;
}

/* Copies labels kfpc.run/kfpc.step/kfpc.attempt from LABELS. */
static void read_labels(json_object *labels, char *run, size_t rl, char *step, size_t sl,
			int *attempt)
{
	const char *v;

	run[0] = step[0] = 0;
	*attempt = 0;
	if (!labels || !json_object_is_type(labels, json_type_object))
		return;
	if ((v = jstr(labels, "kfpc.run")))
		snprintf(run, rl, "%s", v);
	if ((v = jstr(labels, "kfpc.step")))
		snprintf(step, sl, "%s", v);
	if ((v = jstr(labels, "kfpc.attempt")))
		*attempt = atoi(v);
}

int docker_container_inspect(struct docker *d, const char *id, struct docker_state *st)
{
	char path[CREQ_PATH], what[CREQ_WHAT], cn[CREQ_CN];
	struct req r = {.method = "GET", .path = path, .what = what};
	json_object *v = NULL, *s, *x, *cfg, *labels = NULL;
	const char *str;
	long code;
	int rc;

	memset(st, 0, sizeof *st);
	if ((rc = container_req(d, id, "inspect", "/containers/%s/json", NULL, path, what, cn)))
		return rc;
	rc = request_json(d, &r, &code, &v);
	if (rc == DOCKER_ENOTFOUND) {
		char msg[sizeof d->err];

		snprintf(msg, sizeof msg, "%s", d->err);
		seterr(d, "no such %s (%s)", cn, msg);
	}
	if (rc)
		return rc;
	snprintf(st->id, sizeof st->id, "%s", jstr(v, "Id") ? jstr(v, "Id") : id);
	if (!json_object_object_get_ex(v, "State", &s)) {
		json_object_put(v);
		seterr(d, "%s: no State in the engine's answer", what);
		return DOCKER_EPROTO;
	}
	if ((str = jstr(s, "Status")))
		snprintf(st->status, sizeof st->status, "%s", str);
	st->running = json_object_object_get_ex(s, "Running", &x) && json_object_get_boolean(x);
	st->exit_code = json_object_object_get_ex(s, "ExitCode", &x) ? json_object_get_int(x) : 0;
	st->oom_killed = json_object_object_get_ex(s, "OOMKilled", &x) && json_object_get_boolean(x);
	st->started = parse_time(jstr(s, "StartedAt"));
	st->finished = parse_time(jstr(s, "FinishedAt"));
	if ((str = jstr(s, "Error")))
		snprintf(st->error, sizeof st->error, "%s", str);
	if (json_object_object_get_ex(v, "Config", &cfg))
		json_object_object_get_ex(cfg, "Labels", &labels);
	read_labels(labels, st->run, sizeof st->run, st->step, sizeof st->step, &st->attempt);
	json_object_put(v);
	return 0;
}

int docker_container_list(struct docker *d, const char *label, struct docker_summary **out,
			  size_t *n)
{
	json_object *filt = NULL, *arr, *v = NULL;
	char *ef = NULL, *path = NULL, what[300];
	struct req r = {.method = "GET", .what = what};
	struct docker_summary *res = NULL;
	size_t cnt;
	long code;
	int st = DOCKER_ENOMEM;

	*out = NULL;
	*n = 0;
	snprintf(what, sizeof what, "list containers labelled %.200s", label);
	filt = json_object_new_object();
	arr = json_object_new_array();
	if (!filt || !arr) {
		json_object_put(arr);
		goto nomem;
	}
	json_object_array_add(arr, json_object_new_string(label));
	json_object_object_add(filt, "label", arr);
	ef = esc(d, json_object_to_json_string_ext(filt, JSON_C_TO_STRING_PLAIN));
	if (!ef || !(path = malloc(strlen(ef) + 48)))
		goto nomem;
	sprintf(path, "/containers/json?all=1&filters=%s", ef);
	r.path = path;
	st = request_json(d, &r, &code, &v);
	if (st)
		goto out;
	if (!json_object_is_type(v, json_type_array)) {
		seterr(d, "%s: the engine's answer is not a list", what);
		st = DOCKER_EPROTO;
		goto out;
	}
	cnt = json_object_array_length(v);
	if (cnt) {
		res = calloc(cnt, sizeof *res);
		if (!res)
			goto nomem;
	}
	for (size_t i = 0; i < cnt; i++) {
		json_object *c = json_object_array_get_idx(v, i), *labels = NULL;
		const char *s;

		if ((s = jstr(c, "Id")))
			snprintf(res[i].id, sizeof res[i].id, "%s", s);
		if ((s = jstr(c, "State")))
			snprintf(res[i].state, sizeof res[i].state, "%s", s);
		json_object_object_get_ex(c, "Labels", &labels);
		read_labels(labels, res[i].run, sizeof res[i].run, res[i].step, sizeof res[i].step,
			    &res[i].attempt);
	}
	*out = res;
	*n = cnt;
	res = NULL;
	st = 0;
	goto out;
nomem:
	st = DOCKER_ENOMEM;
	seterr(d, "%s: out of memory", what);
out:
	free(res);
	json_object_put(v);
	json_object_put(filt);
	curl_free(ef);
	free(path);
	return st;
}

int docker_volume_create(struct docker *d, const char *name, const char *const *labels,
			 size_t nlabels)
{
	json_object *body = json_object_new_object(), *lab = json_object_new_object();
	char what[400];
	struct req r = {.method = "POST", .path = "/volumes/create", .what = what};
	long code;
	int st;

	snprintf(what, sizeof what, "create volume '%.300s'", name);
	if (!body || !lab) {
		json_object_put(body);
		json_object_put(lab);
		seterr(d, "%s: out of memory", what);
		return DOCKER_ENOMEM;
	}
	json_object_object_add(body, "Name", json_object_new_string(name));
	for (size_t i = 0; i < nlabels; i++)
		json_object_object_add(lab, labels[2 * i], json_object_new_string(labels[2 * i + 1]));
	json_object_object_add(body, "Labels", lab);
	r.body = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	st = request_json(d, &r, &code, NULL);
	json_object_put(body);
	return st;
}

int docker_volume_prune_label(struct docker *d, const char *label)
{
	json_object *filt = NULL, *arr, *v = NULL, *vols;
	char *ef = NULL, *path = NULL, what[300];
	struct req r = {.method = "GET", .what = what};
	long code;
	int st = DOCKER_ENOMEM, removed = 0;

	snprintf(what, sizeof what, "list volumes labelled %.200s", label);
	filt = json_object_new_object();
	arr = json_object_new_array();
	if (!filt || !arr) {
		json_object_put(arr);
		goto out;
	}
	json_object_array_add(arr, json_object_new_string(label));
	json_object_object_add(filt, "label", arr);
	ef = esc(d, json_object_to_json_string_ext(filt, JSON_C_TO_STRING_PLAIN));
	if (!ef || !(path = malloc(strlen(ef) + 32)))
		goto out;
	sprintf(path, "/volumes?filters=%s", ef);
	r.path = path;
	st = request_json(d, &r, &code, &v);
	if (st)
		goto out;
	if (json_object_object_get_ex(v, "Volumes", &vols) && json_object_is_type(vols, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(vols); i++) {
			const char *name = jstr(json_object_array_get_idx(vols, i), "Name");
			char vp[600], *en;
			struct req dr = {.method = "DELETE", .path = vp, .what = what};

			if (!name || !(en = esc(d, name)))
				continue;
			snprintf(vp, sizeof vp, "/volumes/%s", en);
			curl_free(en);
			snprintf(what, sizeof what, "remove volume '%.200s'", name);
			if (request_json(d, &dr, &code, NULL) == 0)
				removed++;
		}
	}
	st = removed;
out:
	if (st == DOCKER_ENOMEM)
		seterr(d, "%s: out of memory", what);
	json_object_put(v);
	json_object_put(filt);
	curl_free(ef);
	free(path);
	return st;
}

/* ---- log streams --------------------------------------------------------------------- */

static int timer_cb(CURLM *m, long timeout_ms, void *ud)
{
	struct docker *d = ud;
	struct itimerspec its;

	(void)m;
	memset(&its, 0, sizeof its);
	if (timeout_ms >= 0) {
		if (timeout_ms == 0)
			its.it_value.tv_nsec = 1; /* at once (0 would disarm) */
		else {
			its.it_value.tv_sec = timeout_ms / 1000;
			its.it_value.tv_nsec = (timeout_ms % 1000) * 1000000L;
		}
	}
	timerfd_settime(d->tfd, 0, &its, NULL);
	return 0;
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *ud, void *sockp)
{
	struct docker *d = ud;
	struct epoll_event ev;

	(void)e;
	(void)sockp;
	memset(&ev, 0, sizeof ev);
	ev.data.fd = s;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, s, &ev);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	if (epoll_ctl(d->epfd, EPOLL_CTL_MOD, s, &ev) < 0 && errno == ENOENT)
		epoll_ctl(d->epfd, EPOLL_CTL_ADD, s, &ev);
	return 0;
}

int docker_fd(struct docker *d)
{
	return d->epfd;
}

void docker_notify(struct docker *d)
{
	uint64_t one = 1;
	ssize_t n = write(d->efd, &one, sizeof one);

	(void)n;
}

void docker_alarm(struct docker *d, double seconds)
{
	struct itimerspec its;

	memset(&its, 0, sizeof its);
	if (seconds >= 0) {
		long long ns = (long long)(seconds * 1e9);

		if (ns < 1)
			ns = 1; /* at once (0 would disarm) */
		its.it_value.tv_sec = (time_t)(ns / 1000000000);
		its.it_value.tv_nsec = (long)(ns % 1000000000);
	}
	timerfd_settime(d->afd, 0, &its, NULL);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes N bytes of DM's stream to FD (-1: dropped); a failure is kept in dm->werr. */
static void demux_put(struct demux *dm, int fd, const char *p, size_t n)
{
	if (fd < 0 || !n)
		return;
	if (write_all(fd, p, n) == 0)
		dm->bytes += n;
	else
		dm->werr = errno ? errno : EIO;
}

/* Writes N stdout bytes of DM, up to its limit: past it, the note once, then nothing. */
static void demux_out(struct demux *dm, const char *p, size_t n)
{
	if (dm->out_limit) {
		if (dm->cut)
			return;
		if (n > dm->out_limit - dm->out_bytes) {
			demux_put(dm, dm->out_fd, p, (size_t)(dm->out_limit - dm->out_bytes));
			demux_put(dm, dm->out_fd, dm->note, strlen(dm->note));
			dm->out_bytes = dm->out_limit;
			dm->cut = 1;
			return;
		}
		dm->out_bytes += n;
	}
	demux_put(dm, dm->out_fd, p, n);
}

/* Sets DM's stdout limit (0: none) and the note written at the cut (NULL: none). */
static void demux_limit(struct demux *dm, uint64_t limit, const char *note)
{
	dm->out_limit = limit;
	snprintf(dm->note, sizeof dm->note, "%s", note ? note : "");
}

/* Feeds N bytes of a log stream to DM: frame payloads go to their descriptors. */
static void demux_feed(struct demux *dm, const char *p, size_t total)
{
	size_t i = 0;

	while (i < total) {
		if (dm->raw) {
			demux_out(dm, p + i, total - i);
			return;
		}
		if (dm->remain == 0) {
			while (dm->hdrlen < 8 && i < total)
				dm->hdr[dm->hdrlen++] = (unsigned char)p[i++];
			if (dm->hdrlen < 8)
				break;
			if (dm->hdr[0] > 2 || dm->hdr[1] || dm->hdr[2] || dm->hdr[3]) {
				if (!dm->framed) { /* not multiplexed (a TTY): plain bytes */
					dm->raw = 1;
					demux_out(dm, (char *)dm->hdr, 8);
					dm->hdrlen = 0;
					continue;
				}
				/* garbage in a framed stream: resynchronise on the next header */
				dm->hdrlen = 0;
				continue;
			}
			dm->framed = 1;
			dm->stream = dm->hdr[0];
			dm->remain = (uint32_t)dm->hdr[4] << 24 | (uint32_t)dm->hdr[5] << 16 |
				     (uint32_t)dm->hdr[6] << 8 | (uint32_t)dm->hdr[7];
			dm->hdrlen = 0;
		} else {
			size_t k = total - i < dm->remain ? total - i : dm->remain;

			if (dm->stream == 2)
				demux_put(dm, dm->err_fd, p + i, k);
			else
				demux_out(dm, p + i, k);
			i += k;
			dm->remain -= (uint32_t)k;
		}
	}
}

/* Demultiplexes log bytes into the watch's descriptors. */
static size_t watch_write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct docker_watch *w = ud;
	size_t total = size * n;
	long http = 0;

	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &http);
	if (http != 200 || w->kind != DOCKER_WATCH_LOGS) {
		buf_add(&w->errbody, p, total);
		return total;
	}
	demux_feed(&w->dm, p, total);
	return total;
}

/* The whole-log request: 200 bodies are demultiplexed, others kept for the message. */
struct logs_req {
	struct docker *d;
	struct demux dm;
	struct buf errbody;
};

static size_t logs_write_cb(char *p, size_t size, size_t n, void *ud)
{
	struct logs_req *lr = ud;
	size_t total = size * n;
	long http = 0;

	curl_easy_getinfo(lr->d->easy, CURLINFO_RESPONSE_CODE, &http);
	if (http != 200) {
		buf_add(&lr->errbody, p, total);
		return total;
	}
	demux_feed(&lr->dm, p, total);
	return total;
}

int docker_container_logs(struct docker *d, const char *id, int out_fd, int err_fd)
{
	return docker_container_logs_limit(d, id, out_fd, err_fd, 0, NULL, NULL);
}

int docker_container_logs_limit(struct docker *d, const char *id, int out_fd, int err_fd,
				uint64_t limit, const char *note, int *cut)
{
	char path[CREQ_PATH], what[CREQ_WHAT], cn[CREQ_CN], amsg[512];
	struct logs_req lr = {.d = d, .dm = {.out_fd = out_fd, .err_fd = err_fd},
			      .errbody = {.max = 4096}};
	struct req r = {.method = "GET", .path = path, .what = what, .stall = 1,
			.wcb = logs_write_cb, .wud = &lr};
	long code;
	int st;

	if (cut)
		*cut = 0;
	demux_limit(&lr.dm, limit, note);
	if ((st = container_req(d, id, "read the logs of", "/containers/%s/logs?stdout=1&stderr=1",
				NULL, path, what, cn)))
		return st;
	/* a log may be large: a generous total limit, and the usual timeout as a stall limit */
	r.timeout = 1800;
	r.stall_s = (long)d->timeout > 0 ? (long)d->timeout : 1;
	st = request(d, &r, &code, NULL);
	if (st == DOCKER_OK && code != 200) {
		st = DOCKER_EPROTO;
		seterr(d, "%s: HTTP %ld", what, code);
	} else if (st != DOCKER_OK && code >= 300) {
		api_message(lr.errbody.p, lr.errbody.len, amsg, sizeof amsg);
		seterr(d, "%s: HTTP %ld%s%s", what, code, amsg[0] ? ": " : "", amsg);
		if (st == DOCKER_ENOTFOUND) {
			char msg[sizeof d->err];

			snprintf(msg, sizeof msg, "%s", d->err);
			seterr(d, "no such %s (%s)", cn, msg);
		}
	} else if (st == DOCKER_OK && lr.dm.werr) {
		seterr(d, "%s: writing the log files failed: %s", what, strerror(lr.dm.werr));
		st = DOCKER_EIO;
	}
	buf_free(&lr.errbody);
	if (cut)
		*cut = lr.dm.cut;
	return st;
}

/* Starts an asynchronous request of KIND on container ID (see docker.h). */
static struct docker_watch *watch_new(struct docker *d, enum docker_watch_kind kind,
				      const char *id, int out_fd, int err_fd, double since,
				      void *udata)
{
	struct docker_watch *w = calloc(1, sizeof *w);
	char path[512], cn[400], *eid = NULL;
	const char *verb = kind == DOCKER_WATCH_LOGS ? "follow the logs of"
			   : kind == DOCKER_WATCH_START ? "start" : "remove";
	CURLMcode mc;

	cname(id, cn, sizeof cn);
	if (!w || !(w->id = strdup(id)) || !(eid = esc(d, id)))
		goto nomem;
	w->d = d;
	w->kind = kind;
	w->dm.out_fd = out_fd;
	w->dm.err_fd = err_fd;
	w->status = 1;
	w->udata = udata;
	w->errbody.max = 4096;
	if (kind == DOCKER_WATCH_START)
		snprintf(path, sizeof path, "/containers/%s/start", eid);
	else if (kind == DOCKER_WATCH_REMOVE)
		snprintf(path, sizeof path, "/containers/%s?force=1&v=1", eid);
	else if (since > 0)
		snprintf(path, sizeof path, "/containers/%s/logs?follow=1&stdout=1&stderr=1&since=%.6f",
			 eid, since);
	else
		snprintf(path, sizeof path, "/containers/%s/logs?follow=1&stdout=1&stderr=1", eid);
	curl_free(eid);
	eid = NULL;
	if (make_url(d, path, 0, w->url, sizeof w->url) < 0) {
		seterr(d, "%s %s: path too long", verb, cn);
		goto fail;
	}
	w->easy = curl_easy_init();
	if (!w->easy)
		goto nomem;
	setup_easy(d, w->easy, w->url);
	curl_easy_setopt(w->easy, CURLOPT_WRITEFUNCTION, watch_write_cb);
	curl_easy_setopt(w->easy, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->easy, CURLOPT_PRIVATE, w);
	if (kind == DOCKER_WATCH_START) {
		curl_easy_setopt(w->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(w->easy, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(w->easy, CURLOPT_POSTFIELDSIZE, 0L);
	} else if (kind == DOCKER_WATCH_REMOVE) {
		curl_easy_setopt(w->easy, CURLOPT_CUSTOMREQUEST, "DELETE");
	}
	if (kind != DOCKER_WATCH_LOGS) {
		w->hdrs = curl_slist_append(NULL, "Expect:");
		curl_easy_setopt(w->easy, CURLOPT_HTTPHEADER, w->hdrs);
		curl_easy_setopt(w->easy, CURLOPT_TIMEOUT_MS, (long)(d->timeout * 1000));
	}
	/* logs: no total timeout: a step may run for days; the scheduler's timeout kills it */
	mc = curl_multi_add_handle(d->multi, w->easy);
	if (mc != CURLM_OK) {
		seterr(d, "%s %s: %s", verb, cn, curl_multi_strerror(mc));
		goto fail;
	}
	w->in_multi = 1;
	w->next = d->watches;
	d->watches = w;
	return w;
nomem:
	seterr(d, "%s %s: out of memory", verb, cn);
fail:
	curl_free(eid);
	if (w) {
		if (w->easy)
			curl_easy_cleanup(w->easy);
		curl_slist_free_all(w->hdrs);
		free(w->id);
		free(w);
	}
	return NULL;
}

struct docker_watch *docker_watch_logs(struct docker *d, const char *id, int out_fd,
				       int err_fd, double since, void *udata)
{
	return watch_new(d, DOCKER_WATCH_LOGS, id, out_fd, err_fd, since, udata);
}

struct docker_watch *docker_start_async(struct docker *d, const char *id, void *udata)
{
	return watch_new(d, DOCKER_WATCH_START, id, -1, -1, 0, udata);
}

struct docker_watch *docker_remove_async(struct docker *d, const char *id, void *udata)
{
	return watch_new(d, DOCKER_WATCH_REMOVE, id, -1, -1, 0, udata);
}

enum docker_watch_kind docker_watch_kind(const struct docker_watch *w)
{
	return w->kind;
}

const char *docker_watch_id(const struct docker_watch *w)
{
	return w->id;
}

int docker_pending(const struct docker *d)
{
	int n = 0;

	for (const struct docker_watch *w = d->watches; w; w = w->next)
		n += w->status == 1;
	return n;
}

/* Records how W's transfer ended (RC from curl) and takes it out of the multi handle. */
static void watch_finish(struct docker_watch *w, CURLcode rc)
{
	struct docker *d = w->d;
	long http = 0;
	char cn[400], why[700], amsg[512];
	const char *verb = w->kind == DOCKER_WATCH_LOGS ? "follow the logs of"
			   : w->kind == DOCKER_WATCH_START ? "start" : "remove";

	cname(w->id, cn, sizeof cn);
	curl_easy_getinfo(w->easy, CURLINFO_RESPONSE_CODE, &http);
	if (rc != CURLE_OK) {
		transfer_error(d, rc, why, sizeof why);
		if (w->kind == DOCKER_WATCH_LOGS)
			snprintf(w->msg, sizeof w->msg, "lost the log stream of %.100s: %.380s", cn, why);
		else
			snprintf(w->msg, sizeof w->msg, "%s %.100s: %.380s", verb, cn, why);
		w->status = curl_status(rc);
	} else if (w->kind == DOCKER_WATCH_LOGS ? http != 200 : http_status(http) != DOCKER_OK) {
		api_message(w->errbody.p, w->errbody.len, amsg, sizeof amsg);
		snprintf(w->msg, sizeof w->msg, "%s %.100s: HTTP %ld%s%.380s", verb, cn, http,
			 amsg[0] ? ": " : "", amsg);
		w->status = http_status(http);
		if (w->status == DOCKER_OK)
			w->status = DOCKER_EPROTO;
		if (w->kind == DOCKER_WATCH_REMOVE && w->status == DOCKER_ENOTFOUND)
			w->status = 0; /* already gone */
	} else {
		w->status = 0;
	}
	if (w->in_multi) {
		curl_multi_remove_handle(d->multi, w->easy);
		w->in_multi = 0;
	}
}

int docker_pump(struct docker *d)
{
	struct epoll_event evs[32];
	int n, left, st = 0;
	CURLMsg *m;
	uint64_t junk;
	ssize_t r;

	n = epoll_wait(d->epfd, evs, 32, 0);
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd, flags = 0;
		CURLMcode mc;

		if (fd == d->efd || fd == d->afd) {
			r = read(fd, &junk, sizeof junk);
			(void)r;
			continue;
		}
		if (fd == d->tfd) {
			r = read(d->tfd, &junk, sizeof junk);
			(void)r;
			mc = curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &d->running);
		} else {
			if (evs[i].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (evs[i].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			mc = curl_multi_socket_action(d->multi, fd, flags, &d->running);
		}
		if (mc != CURLM_OK) {
			seterr(d, "log streams: %s", curl_multi_strerror(mc));
			st = DOCKER_EPROTO;
		}
	}
	while ((m = curl_multi_info_read(d->multi, &left))) {
		struct docker_watch *w = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&w);
		if (w)
			watch_finish(w, m->data.result);
	}
	return st;
}

struct docker_watch *docker_watch_done(struct docker *d)
{
	for (struct docker_watch *w = d->watches; w; w = w->next)
		if (w->status != 1 && !w->reported) {
			w->reported = 1;
			return w;
		}
	return NULL;
}

int docker_watch_status(const struct docker_watch *w, const char **msg)
{
	if (msg)
		*msg = w->msg[0] ? w->msg : NULL;
	return w->status;
}

void *docker_watch_udata(const struct docker_watch *w)
{
	return w->udata;
}

uint64_t docker_watch_bytes(const struct docker_watch *w)
{
	return w->dm.bytes;
}

void docker_watch_limit(struct docker_watch *w, uint64_t limit, const char *note)
{
	demux_limit(&w->dm, limit, note);
}

int docker_watch_cut(const struct docker_watch *w)
{
	return w->dm.cut;
}

void docker_watch_free(struct docker_watch *w)
{
	struct docker_watch **pp;

	if (!w)
		return;
	for (pp = &w->d->watches; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	if (w->in_multi)
		curl_multi_remove_handle(w->d->multi, w->easy);
	if (w->easy)
		curl_easy_cleanup(w->easy);
	curl_slist_free_all(w->hdrs);
	buf_free(&w->errbody);
	free(w->id);
	free(w);
}
