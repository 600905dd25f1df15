/* mhd_floor.c - the peer of bench/daemon_bench.sh: the least a libmicrohttpd server can do to
 * answer GET with fixed bytes (one response built at start, reused; the same MHD threading
 * as kfpd: epoll, turbo, a thread pool). kfpd's GET /api/v1/runs/{id} is measured against it.
 *
 *   mhd_floor PORT BODY_FILE THREADS        (compiled by bench/daemon_bench.sh) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>

static struct MHD_Response *resp;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *size, void **con_cls)
{
	static int first;

	(void)cls, (void)url, (void)method, (void)version, (void)data;
	if (!*con_cls) { /* headers read: answer at the next call, as kfpd does (keep-alive) */
		*con_cls = &first;
		return MHD_YES;
	}
	*size = 0;
	return MHD_queue_response(c, MHD_HTTP_OK, resp);
}

int main(int argc, char **argv)
{
	static char body[1 << 20];
	struct MHD_Daemon *d;
	FILE *f;
	size_t n;
	sigset_t set;
	int sig;

	if (argc != 4 || !(f = fopen(argv[2], "rb"))) {
		fprintf(stderr, "usage: mhd_floor PORT BODY_FILE THREADS\n");
		return 2;
	}
	n = fread(body, 1, sizeof body, f);
	fclose(f);
	resp = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(resp, "Content-Type", "application/json");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_TURBO, (uint16_t)atoi(argv[1]),
			     NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			     MHD_OPTION_THREAD_POOL_SIZE,
			     (unsigned)atoi(argv[3]), MHD_OPTION_CONNECTION_LIMIT, 4000u,
			     MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "mhd_floor: cannot listen on %s\n", argv[1]);
		return 1;
	}
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	MHD_destroy_response(resp);
	return 0;
}
