/* log.c - structured logs: one JSON object per line on stderr, written whole under a lock. */
#include "kfpd.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

int log_quiet;

void log_json(const char *level, const char *msg, json_object *fields)
{
	json_object *o = log_quiet ? NULL : json_object_new_object();
	struct timeval tv;
	struct tm tm;
	char ts[80];
	size_t len;
	const char *s;

	if (!o) {
		json_object_put(fields);
		return;
	}
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
	json_object_object_add(o, "ts", json_object_new_string(ts));
	json_object_object_add(o, "level", json_object_new_string(level));
	json_object_object_add(o, "msg", json_object_new_string(msg));
	if (fields) {
		json_object_object_foreach(fields, key, val)
			json_object_object_add(o, key, json_object_get(val));
		json_object_put(fields);
	}
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
					       &len);
	if (s) {
		pthread_mutex_lock(&log_lock);
		fwrite(s, 1, len, stderr);
		fputc('\n', stderr);
		fflush(stderr);
		pthread_mutex_unlock(&log_lock);
	}
	json_object_put(o);
}

void log_kv(const char *level, const char *msg, ...)
{
	json_object *f = json_object_new_object();
	const char *k, *v;
	va_list ap;

	va_start(ap, msg);
	while (f && (k = va_arg(ap, const char *))) {
		v = va_arg(ap, const char *);
		json_object_object_add(f, k, v ? json_object_new_string(v) : NULL);
	}
	va_end(ap);
	log_json(level, msg, f);
}
