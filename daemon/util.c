/* util.c - small helpers: hashing, random ids, time, names, files. */
#include "kfpd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

static void hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

int util_sha256_hex(const void *buf, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (!EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return -1;
	hex(md, 32, out);
	return 0;
}

int util_random_hex(char *out, size_t n)
{
	unsigned char b[64];

	if (n > sizeof b || RAND_bytes(b, (int)n) != 1)
		return -1;
	hex(b, n, out);
	return 0;
}

pthread_mutex_t util_env_lock = PTHREAD_MUTEX_INITIALIZER;

static struct timespec fake_start;
static pthread_once_t fake_once = PTHREAD_ONCE_INIT;

static void fake_init(void)
{
	clock_gettime(CLOCK_MONOTONIC, &fake_start);
}

time_t util_now(const struct kfpd *k)
{
	struct timespec ts;

	if (!k || !k->fake_now)
		return time(NULL);
	/* tests: a fixed epoch that advances with the monotonic clock */
	pthread_once(&fake_once, fake_init);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return k->fake_now + (ts.tv_sec - fake_start.tv_sec);
}

int64_t util_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

char *util_iso8601(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return out;
}

int util_name_ok(const char *s)
{
	size_t i;

	if (!s || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
		    (s[0] >= '0' && s[0] <= '9')))
		return 0;
	for (i = 1; s[i]; i++) {
		char c = s[i];
		if (i >= 63)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

int util_mkdirs(const char *dir)
{
	char tmp[PATH_MAX];
	char *p;
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, dir, n + 1);
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, 0700) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return -1;
	return 0;
}

int util_write_file(const char *path, const void *buf, size_t len)
{
	char tmp[PATH_MAX];
	const char *p = buf;
	int fd, e;

	if (snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid()) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return -1;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			goto err;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd))
		goto err;
	if (close(fd)) {
		fd = -1;
		goto err;
	}
	fd = -1;
	if (rename(tmp, path))
		goto err;
	return 0;
err:
	e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = e;
	return -1;
}

char *util_read_file(const char *path, size_t *lenp)
{
	char *buf = NULL, *nb;
	size_t len = 0, cap = 0;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	for (;;) {
		ssize_t r;
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			if (!(nb = realloc(buf, cap))) {
				errno = ENOMEM;
				goto err;
			}
			buf = nb;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto err;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = 0;
	if (lenp)
		*lenp = len;
	return buf;
err:
	e = errno;
	close(fd);
	free(buf);
	errno = e;
	return NULL;
}

void util_wake(struct kfpd *k)
{
	char c = 1;
	ssize_t r = write(k->wake_fd[1], &c, 1);
	(void)r; /* a full pipe already wakes the loop */
}
