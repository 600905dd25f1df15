/* fuzz_api.c - libFuzzer harness for kfpd's handling of untrusted requests.
 *
 * One input is one request: a first line "ROLE METHOD URL" (ROLE: a = admin, m = member of
 * namespace "fz", v = viewer, anything else = no token; URL: a path with an optional "?query"),
 * then the request body. It goes through http_inproc(): the route table and its path matching,
 * the query arguments, auth, http_body_object() and the route's handler, with a real LMDB
 * database under /dev/shm - the same functions the HTTP threads call, without sockets. In URLs,
 * "{run}", "{sched}" and "{pl}" stand for a run, a schedule and a pipeline created at start, so
 * that the fuzzer reaches past the 404s.
 * Build: cmake -S . -B build-fuzzd -DKFPC_FUZZ=ON -DCMAKE_C_COMPILER=clang
 *        cmake --build build-fuzzd --target fuzz_api
 * Run:   ./build-fuzzd/fuzz_api -max_total_time=600 -timeout=10 /tmp/api-corpus fuzz/corpus/api */
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "db.h"
#include "http.h"
#include "kfpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kfpd k;
static char run_id[64], sched_id[64];

/* Sends one setup request; returns its status and copies member KEY of the answer into OUT. */
static unsigned setup_req(const char *role, const char *method, const char *url, const char *body)
{
	return http_inproc(&k, method, url, "fz", role, body, strlen(body));
}

static void drain(void)
{
	char buf[256];

	while (read(k.wake_fd[0], buf, sizeof buf) > 0)
		;
}

/* The newest key of table T (run and schedule ids are not returned by http_inproc). */
static int newest(void *ctx, const char *key, size_t klen, const char *val, size_t vlen)
{
	(void)val, (void)vlen;
	snprintf(ctx, 64, "%.*s", (int)klen, key);
	return 1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb, (void)flag, (void)f;
	return remove(path);
}

/* At exit: the database goes, with its directory. */
static void teardown(void)
{
	db_close(k.db);
	k.db = NULL;
	if (k.data_dir)
		nftw(k.data_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void)
{
	char dir[] = "/dev/shm/fuzz_api.XXXXXX", err[256];

	log_quiet = 1;
	if (!mkdtemp(dir))
		return -1;
	k.listen = "127.0.0.1:0";
	k.data_dir = strdup(dir);
	k.executor = "local";
	k.kfpc = strdup("/bin/false");
	k.threads = 1;
	k.max_workers = 1;
	k.ready = 1;
	if (!k.data_dir || !k.kfpc || pipe2(k.wake_fd, O_CLOEXEC | O_NONBLOCK))
		return -1;
	atexit(teardown);
	if (!(k.db = db_open(dir, err, sizeof err))) {
		fprintf(stderr, "fuzz_api: %s\n", err);
		return -1;
	}
	setup_req("admin", "POST", "/api/v1/namespaces", "{\"name\":\"fz\"}");
	setup_req("member", "POST", "/api/v1/pipelines",
		  "{\"filename\":\"pl.kfp\",\"source\":\"pipeline pl(msg: string = \\\"hi\\\", n: int = 2) "
		  "{\\n  step a {\\n    image \\\"busybox:1.36\\\"\\n    timeout 1m\\n    run [\\\"sh\\\", "
		  "\\\"-c\\\", \\\"echo {{params.msg}}\\\"]\\n  }\\n}\\n\"}");
	setup_req("member", "POST", "/api/v1/runs", "{\"pipeline\":\"pl\",\"params\":{\"n\":3}}");
	setup_req("member", "POST", "/api/v1/schedules", "{\"pipeline\":\"pl\",\"cron\":\"*/5 * * * *\"}");
	setup_req("member", "PUT", "/api/v1/secrets/tok", "{\"value\":\"s3cret\"}");
	db_scan(k.db, NULL, DB_RUNS, "", NULL, 1, newest, run_id);
	db_scan(k.db, NULL, DB_SCHEDULES, "", NULL, 1, newest, sched_id);
	drain();
	if (!run_id[0] || !sched_id[0]) {
		fprintf(stderr, "fuzz_api: setup failed (run '%s', schedule '%s')\n", run_id, sched_id);
		return -1;
	}
	return 0;
}

/* Copies URL (LEN bytes) into OUT (N bytes) replacing the placeholders. */
static void expand(const char *url, size_t len, char *out, size_t n)
{
	static const struct { const char *from, *to; } subst[] = {
		{"{run}", run_id}, {"{sched}", sched_id}, {"{pl}", "pl"}};
	size_t o = 0, i, j;

	for (i = 0; i < len && o + 1 < n;) {
		for (j = 0; j < sizeof subst / sizeof *subst; j++) {
			size_t fl = strlen(subst[j].from);
			if (len - i >= fl && !memcmp(url + i, subst[j].from, fl) &&
			    o + strlen(subst[j].to) + 1 < n) {
				memcpy(out + o, subst[j].to, strlen(subst[j].to));
				o += strlen(subst[j].to);
				i += fl;
				break;
			}
		}
		if (j == sizeof subst / sizeof *subst)
			out[o++] = url[i++];
	}
	out[o] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	const char *p = (const char *)data, *end = p + size, *nl, *sp1, *sp2;
	char method[16], url[2048];
	const char *role;

	if (!ready) {
		if (setup())
			abort(); /* the harness itself is broken: nothing to fuzz */
		ready = 1;
	}
	if (!(nl = memchr(p, '\n', size)))
		nl = end;
	if (!(sp1 = memchr(p, ' ', (size_t)(nl - p))) || !(sp2 = memchr(sp1 + 1, ' ', (size_t)(nl - sp1 - 1))))
		return 0;
	if ((size_t)(sp2 - sp1 - 1) >= sizeof method)
		return 0;
	memcpy(method, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	method[sp2 - sp1 - 1] = 0;
	role = *p == 'a' ? "admin" : *p == 'm' ? "member" : *p == 'v' ? "viewer" : "";
	expand(sp2 + 1, (size_t)(nl - sp2 - 1), url, sizeof url);
	if (url[0] != '/')
		return 0;
	if (nl < end)
		nl++;
	http_inproc(&k, method, url, "fz", role, nl, (size_t)(end - nl));
	drain();
	return 0;
}
