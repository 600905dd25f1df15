/* http.h - kfpd's HTTP side: libmicrohttpd glue, the route table, auth, JSON replies.
 *
 * Every request is read whole (at most KFPD_MAX_BODY bytes, else 413) before its handler runs.
 * The handler gets a struct req with the path arguments of its route, the caller's namespace
 * and role, and replies exactly once through http_reply_*(), returning what that returned. */
#ifndef KFPD_HTTP_H
#define KFPD_HTTP_H
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "kfpd.h"

struct MHD_Connection;
struct MHD_Response;

/* Who may call a route. */
enum auth {
	AUTH_NONE,  /* anyone (health, metrics) */
	AUTH_READ,  /* a team token of any role */
	AUTH_WRITE, /* a team token with role "member" (a "viewer" gets 403) */
	AUTH_ADMIN, /* the admin token, or an admin token created through the API */
	AUTH_ANY,   /* any valid token (whoami) */
};

struct req;
/* Handlers: return the result of the http_reply_* call they made. */
typedef int (*http_handler)(struct req *r);

/* One request being read or answered. Owned by http.c; handlers only read it. */
struct req {
	struct kfpd *k;
	struct MHD_Connection *conn;
	const char *method;   /* "GET" ... (MHD's storage) */
	const char *url;      /* decoded path without the query (MHD's storage) */
	char *body;           /* NUL-terminated request body (http.c frees) */
	size_t len, cap;
	int too_big;          /* body exceeded KFPD_MAX_BODY */
	unsigned long long seen; /* body bytes received, kept or not */
	const char *arg[4];   /* path arguments captured by ":x" route segments */
	char argbuf[512];
	char idbuf[256];      /* a run id resolved from a unique prefix (api_runs.c: arg[0]) */
	char ns[64];          /* the caller's namespace ("" for admin) */
	char role[16];        /* "admin" | "member" | "viewer" */
	unsigned status;      /* status replied (0 until then) */
	int64_t t0;           /* ms at arrival */
	void *stream;         /* a handler's state kept past its call (a streaming response, a
			       * parked request), freed by its free fn when the request ends */
	void (*stream_free)(void *);
	http_handler resumed; /* a parked request: replies once http_unpark() resumed it */
	/* http_inproc() only (no MHD connection): the query arguments, in QBUF */
	const char *qk[16], *qv[16];
	int nq;
	char *qbuf;
};

struct sockaddr_in;

/* Parses LISTEN ("IPv4:PORT" or "localhost:PORT") into *SA. Returns 0, or -1 when malformed. */
int http_parse_listen(const char *listen, struct sockaddr_in *sa);

/* Starts the HTTP server on k->listen. Returns 0, or -1 with a message logged. */
int http_start(struct kfpd *k);

/* Answers one request in-process, without a socket or MHD (fuzz/fuzz_api.c): routes METHOD and
 * URL (a path, then optionally "?" and a raw "k=v&k=v" query) as a caller of namespace NS with
 * ROLE ("admin", "member", "viewer"; "" = no token), checks the route's auth, and runs its handler
 * with BODY (LEN bytes, copied). Replies are built and dropped. Returns the status replied. */
unsigned http_inproc(struct kfpd *k, const char *method, const char *url, const char *ns,
		     const char *role, const char *body, size_t len);

/* Stops the server (after resuming every suspended connection). */
void http_stop(struct kfpd *k);

/* Replies STATUS with the JSON object O (consumed) as body. Returns an MHD result. */
int http_reply_json(struct req *r, unsigned status, json_object *o);

/* Replies STATUS with {"error": {"code": STATUS, "message": MSG}}. Returns an MHD result. */
int http_reply_error(struct req *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Replies STATUS with LEN bytes of BUF as CTYPE; BUF is copied. Returns an MHD result. */
int http_reply_bytes(struct req *r, unsigned status, const char *ctype, const char *buf, size_t len);

/* Replies STATUS with RESP (consumed; created by the caller, e.g. streaming). */
int http_reply_response(struct req *r, unsigned status, struct MHD_Response *resp);

/* Returns a new response of LEN bytes of BUF (copied) as CTYPE with the headers every reply
 * carries, for http_reply_shared() (any number of times, from any thread). The caller frees it
 * with MHD_destroy_response (queued replies keep their own reference). NULL on ENOMEM. */
struct MHD_Response *http_response_new(const char *ctype, const char *buf, size_t len);

/* Replies STATUS (not 401) with RESP from http_response_new (not consumed). Returns an MHD
 * result. */
int http_reply_shared(struct req *r, unsigned status, struct MHD_Response *resp);

/* Parses the body as a JSON object into *OUT (caller puts). Returns 0, or replies 400 itself
 * and returns -1 (the handler then returns r->status ? MHD_YES : MHD_NO via http_done()). */
int http_body_object(struct req *r, json_object **out);

/* The result to return from a handler after a helper already replied. */
int http_done(struct req *r);

/* Returns the query argument KEY, or NULL. Lives as long as the request. */
const char *http_query(struct req *r, const char *key);

/* Suspends R's connection until the loop's next http_resume_all() (log following). */
void http_suspend(struct req *r);

/* Parks R without a reply: its connection is suspended (the HTTP thread serves others) until
 * http_unpark(R), which any thread may call; then FN(R) replies. Call from a handler only, which
 * then returns MHD_YES (1). Returns 0, or -1 when R cannot be parked (http_inproc(): no
 * connection): the handler then waits and replies itself. */
int http_park(struct req *r, http_handler fn);

/* Resumes a request parked by http_park(). Any thread; once per http_park(). */
void http_unpark(struct req *r);

/* Resumes every suspended connection. Called by the loop every ~100 ms and before stopping. */
void http_resume_all(void);

/* Forgets every cached token resolution: call after deleting a token or a namespace. */
void http_tokens_changed(void);

/* json helpers: member K of O as a string / int, or DEF when missing or of another type. */
const char *js_str(json_object *o, const char *k, const char *def);
int64_t js_int(json_object *o, const char *k, int64_t def);

#endif
