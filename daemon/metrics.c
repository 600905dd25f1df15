/* metrics.c - Prometheus metrics: HTTP request counts, run states, queue depth, step durations.
 *
 * HTTP request counters are atomic (no lock per request); the others are under one mutex. */
#include "kfpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NMETHODS 6
#define NCODES 600
static const char *const methods[NMETHODS] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OTHER"};

static const char *const run_states[] = {"queued", "running", "succeeded", "failed", "cancelled"};
#define NRUNSTATES (sizeof run_states / sizeof run_states[0])

/* step duration histogram buckets (seconds) */
static const double buckets[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600};
#define NBUCKETS (sizeof buckets / sizeof buckets[0])

static pthread_mutex_t mlock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long http_count[NMETHODS][NCODES];
static long runs_by_state[NRUNSTATES];
static long queue_depth;
static unsigned long long step_bucket[NBUCKETS], step_count;
static double step_sum;

void metrics_http(const char *method, unsigned status)
{
	int m;

	for (m = 0; m < NMETHODS - 1; m++)
		if (!strcmp(methods[m], method))
			break;
	if (status >= NCODES)
		status = 0;
	__atomic_add_fetch(&http_count[m][status], 1, __ATOMIC_RELAXED); /* no lock per request */
}

void metrics_step_duration(double s)
{
	size_t i;

	pthread_mutex_lock(&mlock);
	for (i = 0; i < NBUCKETS; i++)
		if (s <= buckets[i])
			step_bucket[i]++;
	step_count++;
	step_sum += s;
	pthread_mutex_unlock(&mlock);
}

void metrics_runs_set(const char *state, long n)
{
	size_t i;

	for (i = 0; i < NRUNSTATES; i++)
		if (!strcmp(run_states[i], state)) {
			pthread_mutex_lock(&mlock);
			runs_by_state[i] = n;
			pthread_mutex_unlock(&mlock);
		}
}

void metrics_queue_set(long n)
{
	pthread_mutex_lock(&mlock);
	queue_depth = n;
	pthread_mutex_unlock(&mlock);
}

char *metrics_render(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	size_t i;
	int m, c;

	if (!f)
		return NULL;
	pthread_mutex_lock(&mlock);
	fprintf(f, "# HELP kfpd_http_requests_total HTTP requests answered, by method and status code.\n"
		   "# TYPE kfpd_http_requests_total counter\n");
	for (m = 0; m < NMETHODS; m++)
		for (c = 0; c < NCODES; c++)
			if (__atomic_load_n(&http_count[m][c], __ATOMIC_RELAXED))
				fprintf(f, "kfpd_http_requests_total{method=\"%s\",code=\"%d\"} %llu\n",
					methods[m], c,
					__atomic_load_n(&http_count[m][c], __ATOMIC_RELAXED));
	fprintf(f, "# HELP kfpd_runs Runs known to the daemon, by state.\n# TYPE kfpd_runs gauge\n");
	for (i = 0; i < NRUNSTATES; i++)
		fprintf(f, "kfpd_runs{state=\"%s\"} %ld\n", run_states[i], runs_by_state[i]);
	fprintf(f, "# HELP kfpd_queue_depth Accepted runs waiting for a worker.\n"
		   "# TYPE kfpd_queue_depth gauge\nkfpd_queue_depth %ld\n", queue_depth);
	fprintf(f, "# HELP kfpd_step_duration_seconds Duration of finished steps.\n"
		   "# TYPE kfpd_step_duration_seconds histogram\n");
	for (i = 0; i < NBUCKETS; i++)
		fprintf(f, "kfpd_step_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[i],
			step_bucket[i]);
	fprintf(f, "kfpd_step_duration_seconds_bucket{le=\"+Inf\"} %llu\n"
		   "kfpd_step_duration_seconds_sum %.6f\nkfpd_step_duration_seconds_count %llu\n",
		step_count, step_sum, step_count);
	pthread_mutex_unlock(&mlock);
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}
