/* main.c - kfpd, the kfpc engine daemon: open the data directory, recover, serve, loop.
 *
 *   kfpd --listen 127.0.0.1:8080 --data-dir DIR [--executor local|docker]
 *        [--admin-token-file FILE] [--kfpc PATH] [--threads N] [--max-workers N]
 *
 * The main thread is the loop: it owns the run workers (spawn, reap, cancel), fires schedules
 * and resumes log followers; libmicrohttpd's threads answer requests and only write records.
 * SIGTERM/SIGINT: stop accepting, leave the run workers going (the next start adopts them;
 * --stop-workers kills them and their runs resume at the next start), exit 0.
 * kill -9 at any moment loses nothing that was answered with 2xx: every record is committed
 * (fsync) before the answer, and the next start re-queues every accepted run that is not done. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <netinet/in.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "api.h"
#include "db.h"
#include "http.h"

static const char usage_text[] =
	"usage: kfpd --listen HOST:PORT --data-dir DIR [--executor local|docker]\n"
	"            [--admin-token-file FILE] [--kfpc PATH] [--threads N] [--max-workers N]\n"
	"            [--stop-workers]\n"
	"The admin token comes from --admin-token-file or $KFPD_ADMIN_TOKEN.\n";

/* Reads the admin token from FILE (first line) or $KFPD_ADMIN_TOKEN into k->admin_hash. */
static int load_admin(struct kfpd *k, const char *file)
{
	char *tok = NULL;
	const char *env = getenv("KFPD_ADMIN_TOKEN");
	int rc = 0;

	if (file) {
		if (!(tok = util_read_file(file, NULL))) {
			fprintf(stderr, "kfpd: %s: %s\n", file, strerror(errno));
			return -1;
		}
		tok[strcspn(tok, "\r\n")] = 0;
	} else if (env && *env) {
		if (!(tok = strdup(env)))
			return -1;
	}
	if (tok) {
		if (strlen(tok) < 16) {
			fprintf(stderr, "kfpd: the admin token must have at least 16 characters\n");
			rc = -1;
		} else if (util_sha256_hex(tok, strlen(tok), k->admin_hash)) {
			rc = -1;
		}
		explicit_bzero(tok, strlen(tok));
		free(tok);
	}
	return rc;
}

/* Finds the kfpc binary: --kfpc, else next to kfpd, else "kfpc" from PATH. Malloc'd. */
static char *find_kfpc(const char *given)
{
	char self[PATH_MAX], *slash;
	ssize_t n;

	if (given)
		return realpath(given, NULL);
	n = readlink("/proc/self/exe", self, sizeof self - 8);
	if (n > 0) {
		self[n] = 0;
		if ((slash = strrchr(self, '/'))) {
			strcpy(slash + 1, "kfpc");
			if (access(self, X_OK) == 0)
				return strdup(self);
		}
	}
	return strdup("kfpc");
}

static int open_data(struct kfpd *k, const char *dir, int *lockfd)
{
	char path[PATH_MAX], err[256];
	static const char *const subdirs[] = {"daemon.mdb", "state", "runs", "tmp"};
	size_t i;

	if (util_mkdirs(dir) || !(k->data_dir = realpath(dir, NULL))) {
		fprintf(stderr, "kfpd: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof subdirs / sizeof *subdirs; i++) {
		snprintf(path, sizeof path, "%s/%s", k->data_dir, subdirs[i]);
		if (util_mkdirs(path)) {
			fprintf(stderr, "kfpd: %s: %s\n", path, strerror(errno));
			return -1;
		}
	}
	snprintf(path, sizeof path, "%s/kfpd.lock", k->data_dir);
	if ((*lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0 ||
	    flock(*lockfd, LOCK_EX | LOCK_NB)) {
		fprintf(stderr, "kfpd: %s: another kfpd uses this data directory\n", k->data_dir);
		return -1;
	}
	snprintf(path, sizeof path, "%s/daemon.mdb", k->data_dir);
	if (!(k->db = db_open(path, err, sizeof err))) {
		fprintf(stderr, "kfpd: %s\n", err);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct kfpd k;
	const char *data = NULL, *admin_file = NULL, *kfpc = NULL;
	sigset_t mask;
	int sfd = -1, lockfd = -1, i, rc = 1, stop = 0;
	time_t last_cron = 0;

	memset(&k, 0, sizeof k);
	k.executor = "local";
	k.threads = (int)sysconf(_SC_NPROCESSORS_ONLN); /* HTTP threads: one per core */
	if (k.threads < 1 || k.threads > 64)
		k.threads = k.threads < 1 ? 1 : 64;
	k.max_workers = 4;
	k.wake_fd[0] = k.wake_fd[1] = -1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (!strcmp(a, "--version")) {
			printf("kfpd %s\n", KFPC_VERSION);
			return 0;
		}
		if (!strcmp(a, "--stop-workers")) {
			k.stop_workers = 1;
			continue;
		}
		if (!v) {
			fprintf(stderr, "kfpd: unknown option or missing value: %s\n%s", a, usage_text);
			return 2;
		}
		if (!strcmp(a, "--listen"))
			k.listen = v;
		else if (!strcmp(a, "--data-dir"))
			data = v;
		else if (!strcmp(a, "--executor"))
			k.executor = v;
		else if (!strcmp(a, "--admin-token-file"))
			admin_file = v;
		else if (!strcmp(a, "--kfpc"))
			kfpc = v;
		else if (!strcmp(a, "--threads"))
			k.threads = atoi(v);
		else if (!strcmp(a, "--max-workers"))
			k.max_workers = atoi(v);
		else {
			fprintf(stderr, "kfpd: unknown option: %s\n%s", a, usage_text);
			return 2;
		}
		i++;
	}
	{
		struct sockaddr_in sa;
		const char *bad = NULL;
		char m[300];

		if (!k.listen)
			bad = "--listen HOST:PORT is required";
		else if (http_parse_listen(k.listen, &sa))
			bad = (snprintf(m, sizeof m, "--listen '%.200s': want IPv4:PORT, e.g. "
				       "127.0.0.1:8080", k.listen), m);
		else if (!data)
			bad = "--data-dir DIR is required";
		else if (strcmp(k.executor, "local") && strcmp(k.executor, "docker"))
			bad = (snprintf(m, sizeof m, "--executor '%.200s': want local or docker",
				       k.executor), m);
		else if (k.threads < 1 || k.threads > 64)
			bad = "--threads: want 1 to 64";
		else if (k.max_workers < 1 || k.max_workers > 1024)
			bad = "--max-workers: want 1 to 1024";
		if (bad) {
			fprintf(stderr, "kfpd: %s\n%s", bad, usage_text);
			return 2;
		}
	}
	if (getenv("KFPD_FAKE_NOW"))
		k.fake_now = (time_t)strtoll(getenv("KFPD_FAKE_NOW"), NULL, 10);
	if (load_admin(&k, admin_file))
		return 2;
	if (!(k.kfpc = find_kfpc(kfpc))) {
		fprintf(stderr, "kfpd: --kfpc %s: %s\n", kfpc, strerror(errno));
		return 2;
	}
	if (open_data(&k, data, &lockfd))
		goto out;

	/* signals go to the loop only: block them before any thread exists */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	if ((sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    pipe2(k.wake_fd, O_CLOEXEC | O_NONBLOCK)) {
		fprintf(stderr, "kfpd: %s\n", strerror(errno));
		goto out;
	}
	if (http_start(&k))
		goto out;
	log_kv("info", "kfpd listening", "listen", k.listen, "data_dir", k.data_dir, "executor",
	       k.executor, "admin_token", k.admin_hash[0] ? "set" : "none", NULL);
	if (runs_recover(&k) < 0)
		goto out2;
	k.ready = 1;

	while (!stop) {
		struct pollfd p[2] = {{sfd, POLLIN, 0}, {k.wake_fd[0], POLLIN, 0}};
		struct signalfd_siginfo si;
		char drain[256];
		time_t now;

		poll(p, 2, 100);
		while (read(sfd, &si, sizeof si) == sizeof si)
			if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
				stop = 1;
		while (read(k.wake_fd[0], drain, sizeof drain) > 0)
			;
		runs_tick(&k);
		now = util_now(&k);
		if (now != last_cron) {
			cron_tick(&k);
			last_cron = now;
		}
		http_resume_all();
	}
	log_kv("info", "kfpd stopping", NULL);
	k.ready = 0;
	rc = 0;
out2:
	runs_commits_close(); /* no request stays parked: MHD stops with none suspended */
	http_stop(&k);
	runs_shutdown(&k);
out:
	api_runs_cache_free();
	db_close(k.db);
	if (sfd >= 0)
		close(sfd);
	if (k.wake_fd[0] >= 0)
		close(k.wake_fd[0]), close(k.wake_fd[1]);
	if (lockfd >= 0)
		close(lockfd);
	free(k.data_dir);
	free(k.kfpc);
	if (!rc)
		log_kv("info", "kfpd stopped", NULL);
	return rc;
}
