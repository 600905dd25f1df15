/* progress.c - plain event lines, or a live block on a TTY (see progress.h). */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

#define MAXRUN 8 /* running steps listed in the live block */

struct running {
	char *name;
	int attempt;
	double since;
};

struct progress {
	FILE *f;
	int tty, color;
	char *run_id, *pipeline;
	double t0, last_draw;
	int drawn_lines; /* lines of the live block currently on screen */
	int dirty;
	size_t counts[PROGRESS_NSTATES];
	struct running *run;
	size_t nrun, caprun;
};

static const char *const state_names[PROGRESS_NSTATES] = {
	"pending", "running", "succeeded", "cached", "failed", "skipped", "cancelled",
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct progress *progress_new(FILE *f, int tty, int color)
{
	struct progress *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->f = f;
	p->tty = tty;
	p->color = color;
	p->t0 = mono();
	return p;
}

static void clear_block(struct progress *p)
{
	if (!p->tty || !p->drawn_lines)
		return;
	fprintf(p->f, "\r\033[%dA\033[J", p->drawn_lines);
	p->drawn_lines = 0;
}

void progress_free(struct progress *p)
{
	size_t i;

	if (!p)
		return;
	clear_block(p);
	fflush(p->f);
	for (i = 0; i < p->nrun; i++)
		free(p->run[i].name);
	free(p->run);
	free(p->run_id);
	free(p->pipeline);
	free(p);
}

void progress_header(struct progress *p, const char *run_id, const char *pipeline)
{
	if (!p)
		return;
	free(p->run_id);
	free(p->pipeline);
	p->run_id = strdup(run_id ? run_id : "");
	p->pipeline = strdup(pipeline ? pipeline : "");
	p->dirty = 1;
}

static void stamp(struct progress *p)
{
	time_t t = time(NULL);
	struct tm tm;
	char buf[16];

	localtime_r(&t, &tm);
	strftime(buf, sizeof buf, "%H:%M:%S", &tm);
	fprintf(p->f, "[%s] ", buf);
}

void progress_started(struct progress *p, const char *name, int attempt)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nrun; i++)
		if (!strcmp(p->run[i].name, name)) { /* a new attempt of a listed step */
			p->run[i].attempt = attempt;
			p->run[i].since = mono();
			p->dirty = 1;
			goto note;
		}
	if (p->nrun == p->caprun) {
		size_t nc = p->caprun ? 2 * p->caprun : 16;
		struct running *n = realloc(p->run, nc * sizeof *n);
		if (!n)
			return;
		p->run = n;
		p->caprun = nc;
	}
	p->run[p->nrun].name = strdup(name);
	if (!p->run[p->nrun].name)
		return;
	p->run[p->nrun].attempt = attempt;
	p->run[p->nrun].since = mono();
	p->nrun++;
	p->dirty = 1;
note:
	if (attempt > 1) {
		clear_block(p);
		stamp(p);
		fprintf(p->f, "%s retrying (attempt %d)\n", name, attempt);
	}
}

static void drop_running(struct progress *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->nrun; i++)
		if (!strcmp(p->run[i].name, name)) {
			free(p->run[i].name);
			p->run[i] = p->run[--p->nrun];
			return;
		}
}

void progress_waiting(struct progress *p, const char *name)
{
	if (!p)
		return;
	drop_running(p, name);
	p->dirty = 1;
}

/* Reads the last LINES lines of PATH (at most 4 KiB from its end) into buf. */
static void tail(const char *path, int lines, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char tmp[4096];
	ssize_t n;
	off_t off;
	char *s;
	int nl = 0;

	buf[0] = 0;
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || st.st_size == 0) {
		close(fd);
		return;
	}
	off = st.st_size > (off_t)sizeof tmp - 1 ? st.st_size - (off_t)(sizeof tmp - 1) : 0;
	n = pread(fd, tmp, sizeof tmp - 1, off);
	close(fd);
	if (n <= 0)
		return;
	tmp[n] = 0;
	while (n > 0 && tmp[n - 1] == '\n')
		tmp[--n] = 0;
	for (s = tmp + n; s > tmp; s--)
		if (s[-1] == '\n' && ++nl == lines)
			break;
	{
		size_t sl = strlen(s);
		if (sl >= len)
			s += sl - (len - 1); /* keep the end: that is where the error is */
		memcpy(buf, s, strlen(s) + 1);
	}
}

void progress_done(struct progress *p, const char *name, const char *state, double secs,
		   const char *detail, const char *loc, const char *logpath)
{
	char t[1024];
	int failed;

	if (!p)
		return;
	drop_running(p, name);
	p->dirty = 1;
	clear_block(p);
	failed = !strcmp(state, "failed");
	stamp(p);
	if (p->color && failed)
		fprintf(p->f, "\033[1;31m");
	fprintf(p->f, "%s %s", name, state);
	if (p->color && failed)
		fprintf(p->f, "\033[0m");
	if (detail && *detail && secs >= 0)
		fprintf(p->f, " (%s, %.1fs)", detail, secs);
	else if (detail && *detail)
		fprintf(p->f, " (%s)", detail);
	else if (secs >= 0)
		fprintf(p->f, " (%.1fs)", secs);
	if (failed && loc && *loc && strcmp(loc, "?"))
		fprintf(p->f, " at %s", loc);
	fputc('\n', p->f);
	if (failed && logpath) {
		tail(logpath, 10, t, sizeof t);
		if (t[0]) {
			char *line, *save = NULL;
			fprintf(p->f, "  | log: %s\n", logpath);
			for (line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
				fprintf(p->f, "  | %s\n", line);
		}
	}
}

void progress_flush(struct progress *p)
{
	if (p)
		fflush(p->f);
}

void progress_message(struct progress *p, const char *fmt, ...)
{
	va_list ap;

	if (!p)
		return;
	clear_block(p);
	p->dirty = 1;
	stamp(p);
	va_start(ap, fmt);
	vfprintf(p->f, fmt, ap);
	va_end(ap);
	fputc('\n', p->f);
	if (!p->tty)
		fflush(p->f);
}

void progress_counts(struct progress *p, const size_t *counts)
{
	if (!p)
		return;
	if (memcmp(p->counts, counts, sizeof p->counts)) {
		memcpy(p->counts, counts, sizeof p->counts);
		p->dirty = 1;
	}
}

static int term_width(struct progress *p)
{
	struct winsize ws;

	if (ioctl(fileno(p->f), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
		return ws.ws_col;
	return 80;
}

static void draw(struct progress *p)
{
	double now = mono();
	int w = term_width(p), lines = 0, i, col;
	size_t k;
	char line[512];

	clear_block(p);
	snprintf(line, sizeof line, "kfpc run %s (%s)  %.0fs elapsed", p->run_id ? p->run_id : "",
		 p->pipeline ? p->pipeline : "", now - p->t0);
	fprintf(p->f, "%.*s\n", w - 1, line);
	lines++;
	col = 0;
	line[0] = 0;
	for (i = 0; i < PROGRESS_NSTATES; i++) {
		size_t c = p->counts[i];
		/* running: the steps listed below (the scheduler's counts may be ahead of what
		 * was published); the difference stays with pending, so the total holds */
		if (i == 0 && p->counts[0] + p->counts[1] >= p->nrun)
			c = p->counts[0] + p->counts[1] - p->nrun;
		else if (i == 1)
			c = p->nrun;
		if (!c && i != 1 && i != 2)
			continue;
		col += snprintf(line + col, sizeof line - col, "%s%zu %s", col ? "  " : "  ",
				c, state_names[i]);
		if (col >= (int)sizeof line)
			break;
	}
	fprintf(p->f, "%.*s\n", w - 1, line);
	lines++;
	for (k = 0; k < p->nrun && k < MAXRUN; k++) {
		char att[32] = "";
		if (p->run[k].attempt > 1)
			snprintf(att, sizeof att, " (attempt %d)", p->run[k].attempt);
		snprintf(line, sizeof line, "  running %s%s (%.0fs)", p->run[k].name, att,
			 now - p->run[k].since);
		fprintf(p->f, "%.*s\n", w - 1, line);
		lines++;
	}
	if (p->nrun > MAXRUN) {
		fprintf(p->f, "  ... and %zu more\n", p->nrun - MAXRUN);
		lines++;
	}
	p->drawn_lines = lines;
	fflush(p->f);
	p->last_draw = now;
	p->dirty = 0;
}

int progress_tick(struct progress *p)
{
	double now;

	if (!p || !p->tty)
		return -1;
	now = mono();
	if (now - p->last_draw < 0.1)
		return (int)((0.1 - (now - p->last_draw)) * 1000) + 1;
	if (p->dirty || p->nrun)
		draw(p);
	return p->nrun ? 1000 : -1; /* running steps: refresh their elapsed time each second */
}

void progress_end(struct progress *p)
{
	if (!p)
		return;
	clear_block(p);
	fflush(p->f);
}
