/* art.c - content-addressed artifact store (see art.h for the digest rules and the layout).
 *
 * Design: every stored thing is an immutable object named by its SHA-256: blobs (file bytes,
 * symlink targets) and trees (canonical directory listings). Objects are created in cas/tmp/
 * and renamed to their final name with RENAME_NOREPLACE, so a name either does not exist or
 * names the complete object, and two processes storing the same object race harmlessly
 * (the loser deletes its copy). A step's output file is renamed into the CAS when possible
 * (hash it, chmod 0444, rename: no byte is copied).
 *
 * Directories are walked with an explicit stack of frames (one per directory being listed;
 * each frame reads its names, sorts them and closes the directory at once, so no descriptor is
 * held per level). A frame's listing is complete once all its entries are done (post-order),
 * then its digest is appended to its parent's listing.
 *
 * Objects are not fsynced: like the LMDB store, they survive a crash of kfpc but an OS crash
 * may leave a recent object short; art_verify(ART_VERIFY_HASH) detects that. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "art.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef FICLONE
#define FICLONE _IOW(0x94, 9, int)
#endif

#define BUFSZ (128 * 1024)

/* The listing of an empty directory (art.h): never the empty string, whose digest is an empty
 * file's. */
#define EMPTY_DIR "kfpc-empty-dir"
#define EMPTY_DIR_LEN 15 /* with its NUL */

struct art {
	char *root;   /* absolute STATE/cas */
	char *tmp;    /* STATE/cas/tmp */
	int is_root;  /* euid 0: never hardlink */
	dev_t noreflink_dev; /* a destination device where FICLONE failed */
	int noreflink_valid;
	unsigned char *buf; /* BUFSZ I/O buffer */
	EVP_MD *md;   /* SHA-256, fetched once (OpenSSL 3 would fetch it on every init) */
	char err[768];
};

/* --- errors ----------------------------------------------------------------------------- */

static int seterr(struct art *a, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int seterr(struct art *a, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->err, sizeof a->err, fmt, ap);
	va_end(ap);
	return code;
}

/* Report errno E from operation WHAT on PATH. */
static int syserr(struct art *a, int e, const char *what, const char *path)
{
	if (e == ENOSPC || e == EDQUOT)
		return seterr(a, ART_ENOSPC, "disk full while storing an artifact in %s: %s (%s %s)",
			      a->root, strerror(e), what, path);
	if (e == ENOMEM)
		return seterr(a, ART_ENOMEM, "out of memory");
	if (e == ENOENT)
		return seterr(a, ART_ENOENT, "%s %s: %s", what, path, strerror(e));
	if (e == EEXIST)
		return seterr(a, ART_EEXIST, "%s exists already", path);
	return seterr(a, ART_EIO, "%s %s: %s", what, path, strerror(e));
}

static int nomem(struct art *a)
{
	return seterr(a, ART_ENOMEM, "out of memory");
}

const char *art_errmsg(const struct art *a)
{
	return a ? a->err : "no artifact store";
}

const char *art_kind_name(enum art_kind k)
{
	return k == ART_FILE ? "file" : k == ART_DIR ? "dir" : NULL;
}

enum art_kind art_kind_parse(const char *name)
{
	if (name && !strcmp(name, "file"))
		return ART_FILE;
	if (name && !strcmp(name, "dir"))
		return ART_DIR;
	return 0;
}

int art_digest_valid(const char *s)
{
	if (!s)
		return 0;
	for (int i = 0; i < ART_DIGEST_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[ART_DIGEST_LEN] == '\0';
}

static void tohex(const unsigned char *md, char out[ART_DIGEST_SIZE])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[ART_DIGEST_LEN] = '\0';
}

/* SHA-256 of LEN bytes at P. */
static int sha_mem(struct art *a, const void *p, size_t len, char out[ART_DIGEST_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (!EVP_Digest(p, len, md, &mdlen, a->md, NULL) || mdlen != 32)
		return -1;
	tohex(md, out);
	return 0;
}

/* --- open / close ----------------------------------------------------------------------- */

static int mkdir_ok(const char *p, mode_t m)
{
	return mkdir(p, m) == 0 || errno == EEXIST ? 0 : -1;
}

int art_open(const char *state_dir, struct art **out, char *err, size_t errlen)
{
	struct art *a;
	char *abs = NULL, *p = NULL;
	static const char *const sub[] = {"blobs", "trees", "tmp"};
	int rc = ART_ENOMEM;

	*out = NULL;
	if (errlen)
		err[0] = '\0';
	if (!(a = calloc(1, sizeof *a)) || !(a->buf = malloc(BUFSZ))) {
		if (a)
			free(a);
		snprintf(err, errlen, "out of memory");
		return ART_ENOMEM;
	}
	if (mkdir_ok(state_dir, 0755) < 0 || !(abs = realpath(state_dir, NULL))) {
		int e = errno;
		snprintf(err, errlen, "cannot open the state directory %s: %s", state_dir,
			 strerror(e));
		rc = e == ENOSPC || e == EDQUOT ? ART_ENOSPC : ART_EIO;
		goto fail;
	}
	if (asprintf(&a->root, "%s/cas", abs) < 0) {
		a->root = NULL;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (mkdir_ok(a->root, 0755) < 0)
		goto fail_dir;
	for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
		if (asprintf(&p, "%s/%s", a->root, sub[i]) < 0) {
			p = NULL;
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		if (mkdir_ok(p, 0755) < 0)
			goto fail_dir;
		if (i == 2) {
			a->tmp = p;
			p = NULL;
		} else {
			free(p);
			p = NULL;
		}
	}
	if (!(a->md = EVP_MD_fetch(NULL, "SHA256", NULL))) {
		snprintf(err, errlen, "SHA-256 is not available from libcrypto");
		rc = ART_EIO;
		goto fail;
	}
	a->is_root = geteuid() == 0;
	free(abs);
	*out = a;
	return 0;
fail_dir: {
	int e = errno;
	snprintf(err, errlen, "cannot create %s: %s", p ? p : a->root, strerror(e));
	rc = e == ENOSPC || e == EDQUOT ? ART_ENOSPC : ART_EIO;
}
fail:
	free(p);
	free(abs);
	art_close(a);
	return rc;
}

void art_close(struct art *a)
{
	if (!a)
		return;
	free(a->root);
	free(a->tmp);
	free(a->buf);
	EVP_MD_free(a->md);
	free(a);
}

char *art_object_path(struct art *a, const char *digest, enum art_kind kind)
{
	char *p;

	if (!art_digest_valid(digest) || (kind != ART_FILE && kind != ART_DIR))
		return NULL;
	if (asprintf(&p, "%s/%s/%.2s/%s", a->root, kind == ART_DIR ? "trees" : "blobs", digest,
		     digest) < 0)
		return NULL;
	return p;
}

/* Create the fan-out directory of object path OBJ (its parent). */
static int mkfanout(struct art *a, const char *obj)
{
	char *slash = strrchr(obj, '/');
	char d[4096];
	size_t n = (size_t)(slash - obj);

	if (n >= sizeof d)
		return seterr(a, ART_EINVAL, "path too long: %s", obj);
	memcpy(d, obj, n);
	d[n] = '\0';
	if (mkdir_ok(d, 0755) < 0)
		return syserr(a, errno, "mkdir", d);
	return 0;
}

/* --- byte I/O --------------------------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Hash FD from its current offset to EOF, copying to OUTFD if >= 0. Errors name PATH. */
static int hash_fd(struct art *a, int fd, int outfd, const char *path,
		   char digest[ART_DIGEST_SIZE], uint64_t *size)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	uint64_t total = 0;
	int rc = 0;

	if (!ctx || !EVP_DigestInit_ex(ctx, a->md, NULL)) {
		EVP_MD_CTX_free(ctx);
		return seterr(a, ART_EIO, "SHA-256 is not available from libcrypto");
	}
	for (;;) {
		ssize_t r = read(fd, a->buf, BUFSZ);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = syserr(a, errno, "read", path);
			goto out;
		}
		if (r == 0)
			break;
		if (!EVP_DigestUpdate(ctx, a->buf, (size_t)r)) {
			rc = seterr(a, ART_EIO, "SHA-256 update failed");
			goto out;
		}
		if (outfd >= 0 && write_all(outfd, a->buf, (size_t)r) < 0) {
			rc = syserr(a, errno, "write a copy of", path);
			goto out;
		}
		total += (uint64_t)r;
	}
	if (!EVP_DigestFinal_ex(ctx, md, &mdlen) || mdlen != 32) {
		rc = seterr(a, ART_EIO, "SHA-256 final failed");
		goto out;
	}
	tohex(md, digest);
	if (size)
		*size = total;
out:
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* A new temporary file in cas/tmp: sets *fd and *path (malloc'd). Returns 0 or a code. */
static int tmpfile_new(struct art *a, char **path, int *fd)
{
	if (asprintf(path, "%s/obj-XXXXXX", a->tmp) < 0) {
		*path = NULL;
		return nomem(a);
	}
	if ((*fd = mkostemp(*path, O_CLOEXEC)) < 0) {
		int rc = syserr(a, errno, "create a temporary file in", a->tmp);
		free(*path);
		*path = NULL;
		return rc;
	}
	return 0;
}

/* Move temporary TMP to object path OBJ (read-only); if OBJ exists, delete TMP instead. */
static int tmp_commit(struct art *a, const char *tmp, const char *obj)
{
	int rc;

	if (chmod(tmp, 0444) < 0) {
		rc = syserr(a, errno, "chmod", tmp);
		unlink(tmp);
		return rc;
	}
	if ((rc = mkfanout(a, obj))) {
		unlink(tmp);
		return rc;
	}
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, obj, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST) {
		unlink(tmp);
		return 0;
	}
	if (errno == EINVAL || errno == ENOSYS) { /* no RENAME_NOREPLACE here: link is exclusive */
		if (link(tmp, obj) == 0 || errno == EEXIST) {
			unlink(tmp);
			return 0;
		}
	}
	rc = syserr(a, errno, "rename into", obj);
	unlink(tmp);
	return rc;
}

/* Store LEN bytes at P as a blob (trees: KIND ART_DIR). */
static int store_bytes(struct art *a, enum art_kind kind, const void *p, size_t len,
		       char digest[ART_DIGEST_SIZE])
{
	char *obj, *tmp;
	struct stat sb;
	int fd = -1, rc;

	if (sha_mem(a, p, len, digest) < 0)
		return seterr(a, ART_EIO, "SHA-256 failed");
	if (!(obj = art_object_path(a, digest, kind)))
		return nomem(a);
	if (stat(obj, &sb) == 0) {
		free(obj);
		return 0;
	}
	if ((rc = tmpfile_new(a, &tmp, &fd))) {
		free(obj);
		return rc;
	}
	if (write_all(fd, p, len) < 0) {
		rc = syserr(a, errno, "write", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) < 0) {
		rc = syserr(a, errno, "close", tmp);
		unlink(tmp);
		goto out;
	}
	rc = tmp_commit(a, tmp, obj);
out:
	free(tmp);
	free(obj);
	return rc;
}

/* Store regular file PATH (lstat SB) as a blob. KEEP: leave PATH. */
static int store_file(struct art *a, const char *path, const struct stat *sb, int keep,
		      char digest[ART_DIGEST_SIZE], uint64_t *size)
{
	char *obj = NULL, *tmp = NULL;
	struct stat ob;
	int fd, tfd = -1, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return syserr(a, errno, "open", path);
	if ((rc = hash_fd(a, fd, -1, path, digest, size)))
		goto out;
	if (!(obj = art_object_path(a, digest, ART_FILE))) {
		rc = nomem(a);
		goto out;
	}
	if (stat(obj, &ob) == 0) { /* already stored: dedup */
		if (!keep)
			unlink(path);
		goto out;
	}
	if (!keep && sb->st_nlink == 1 && fchmod(fd, 0444) == 0) {
		if ((rc = mkfanout(a, obj)))
			goto out;
		if (renameat2(AT_FDCWD, path, AT_FDCWD, obj, RENAME_NOREPLACE) == 0)
			goto out;
		if (errno == EEXIST) {
			unlink(path);
			goto out;
		}
		if ((errno == EINVAL || errno == ENOSYS) && link(path, obj) == 0) {
			unlink(path);
			goto out;
		}
		/* EXDEV and the rest: copy */
	}
	if ((rc = tmpfile_new(a, &tmp, &tfd))) {
		tfd = -1;
		goto out;
	}
	if (lseek(fd, 0, SEEK_SET) < 0) {
		rc = syserr(a, errno, "seek", path);
		goto out;
	}
	if (ioctl(tfd, FICLONE, fd) < 0) {
		char d2[ART_DIGEST_SIZE];
		if ((rc = hash_fd(a, fd, tfd, path, d2, NULL)))
			goto out;
		if (strcmp(d2, digest)) {
			rc = seterr(a, ART_EIO, "%s changed while it was being stored", path);
			goto out;
		}
	}
	if (close(tfd) < 0) {
		tfd = -1;
		rc = syserr(a, errno, "write", tmp);
		goto out;
	}
	tfd = -1;
	if ((rc = tmp_commit(a, tmp, obj))) {
		free(tmp);
		tmp = NULL;
		goto out;
	}
	free(tmp);
	tmp = NULL;
	if (!keep)
		unlink(path);
out:
	if (tfd >= 0)
		close(tfd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(obj);
	close(fd);
	return rc;
}

/* Hash (and with STORE, store) the target of symlink PATH. */
static int do_link(struct art *a, const char *path, const struct stat *sb, int store,
		   char digest[ART_DIGEST_SIZE])
{
	size_t cap = sb->st_size > 0 ? (size_t)sb->st_size + 1 : 256;
	char *t;
	ssize_t n;
	int rc;

	for (;;) {
		if (!(t = malloc(cap)))
			return nomem(a);
		n = readlink(path, t, cap);
		if (n < 0) {
			rc = syserr(a, errno, "readlink", path);
			free(t);
			return rc;
		}
		if ((size_t)n < cap)
			break;
		free(t);
		cap *= 2;
	}
	if (store)
		rc = store_bytes(a, ART_FILE, t, (size_t)n, digest);
	else
		rc = sha_mem(a, t, (size_t)n, digest) < 0 ? seterr(a, ART_EIO, "SHA-256 failed") : 0;
	free(t);
	return rc;
}

/* --- the directory walk ----------------------------------------------------------------- */

struct frame {
	char *path;
	char *name;     /* this directory's name in its parent (NULL for the top) */
	char **names;   /* sorted entries */
	size_t n, i;
	char *buf;      /* the listing being built */
	size_t len, cap;
	uint64_t size;
};

static int cmp_names(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void frame_free(struct frame *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->names[i]);
	free(f->names);
	free(f->path);
	free(f->name);
	free(f->buf);
}

/* Read and sort PATH's entry names into F. */
static int frame_open(struct art *a, struct frame *f, char *path, char *name)
{
	DIR *d;
	struct dirent *e;
	size_t cap = 0;

	memset(f, 0, sizeof *f);
	f->path = path;
	f->name = name;
	if (!(d = opendir(path)))
		return syserr(a, errno, "open directory", path);
	errno = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (f->n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			char **p = realloc(f->names, nc * sizeof *p);
			if (!p)
				goto oom;
			f->names = p;
			cap = nc;
		}
		if (!(f->names[f->n] = strdup(e->d_name)))
			goto oom;
		f->n++;
		errno = 0;
	}
	if (errno) {
		int rc = syserr(a, errno, "read directory", path);
		closedir(d);
		return rc;
	}
	closedir(d);
	if (f->n > 1)
		qsort(f->names, f->n, sizeof *f->names, cmp_names);
	return 0;
oom:
	closedir(d);
	return nomem(a);
}

/* Append an entry to F's listing. */
static int frame_add(struct art *a, struct frame *f, char type, const char *mode,
		     const char *digest, const char *name)
{
	size_t need = 2 + strlen(mode) + 1 + ART_DIGEST_LEN + 1 + strlen(name) + 1;

	if (f->len + need > f->cap) {
		size_t nc = f->cap ? f->cap * 2 : 1024;
		char *p;
		while (nc < f->len + need)
			nc *= 2;
		if (!(p = realloc(f->buf, nc)))
			return nomem(a);
		f->buf = p;
		f->cap = nc;
	}
	f->len += (size_t)sprintf(f->buf + f->len, "%c %s %s %s", type, mode, digest, name) + 1;
	return 0;
}

enum walk_mode { WALK_HASH, WALK_KEEP, WALK_CONSUME };

/* Hash (and store) directory TOP iteratively. */
static int walk_dir(struct art *a, const char *top, enum walk_mode mode,
		    char digest[ART_DIGEST_SIZE], uint64_t *size)
{
	struct frame *stk = NULL;
	size_t depth = 0, cap = 0;
	char *p;
	int rc = 0;

	if (!(p = strdup(top)))
		return nomem(a);
	if (!(stk = malloc(16 * sizeof *stk))) {
		free(p);
		return nomem(a);
	}
	cap = 16;
	if ((rc = frame_open(a, &stk[0], p, NULL))) {
		frame_free(&stk[0]);
		free(stk);
		return rc;
	}
	depth = 1;
	while (depth) {
		struct frame *f = &stk[depth - 1];
		char d[ART_DIGEST_SIZE];

		if (f->i < f->n) {
			const char *name = f->names[f->i++];
			struct stat sb;
			char *child;
			uint64_t sz = 0;

			if (asprintf(&child, "%s/%s", f->path, name) < 0) {
				rc = nomem(a);
				break;
			}
			if (lstat(child, &sb) < 0) {
				rc = syserr(a, errno, "stat", child);
				free(child);
				break;
			}
			if (S_ISREG(sb.st_mode)) {
				if (mode == WALK_HASH) {
					int fd = open(child, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
					rc = fd < 0 ? syserr(a, errno, "open", child)
						    : hash_fd(a, fd, -1, child, d, &sz);
					if (fd >= 0)
						close(fd);
				} else {
					rc = store_file(a, child, &sb, mode == WALK_KEEP, d, &sz);
				}
				if (!rc)
					rc = frame_add(a, f, 'f', (sb.st_mode & 0111) ? "755" : "644",
						       d, name);
				f->size += sz;
				free(child);
			} else if (S_ISLNK(sb.st_mode)) {
				rc = do_link(a, child, &sb, mode != WALK_HASH, d);
				if (!rc)
					rc = frame_add(a, f, 'l', "777", d, name);
				if (!rc && mode == WALK_CONSUME)
					unlink(child);
				free(child);
			} else if (S_ISDIR(sb.st_mode)) {
				char *nm = strdup(name);
				if (!nm) {
					free(child);
					rc = nomem(a);
					break;
				}
				if (depth == cap) {
					struct frame *ns = realloc(stk, 2 * cap * sizeof *ns);
					if (!ns) {
						free(child);
						free(nm);
						rc = nomem(a);
						break;
					}
					stk = ns;
					cap *= 2;
				}
				rc = frame_open(a, &stk[depth], child, nm);
				depth++; /* freed with the stack even on error */
			} else {
				rc = seterr(a, ART_EINVAL,
					    "%s: unsupported file type (an artifact may hold only "
					    "files, directories and symbolic links)", child);
				free(child);
			}
			if (rc)
				break;
			continue;
		}
		/* all entries done: the listing is complete (an empty one is the marker) */
		{
			const char *lb = f->len ? f->buf : EMPTY_DIR;
			size_t ll = f->len ? f->len : EMPTY_DIR_LEN;
			if (mode == WALK_HASH)
				rc = sha_mem(a, lb, ll, d) < 0 ? seterr(a, ART_EIO, "SHA-256 failed")
							       : 0;
			else
				rc = store_bytes(a, ART_DIR, lb, ll, d);
		}
		if (rc)
			break;
		if (mode == WALK_CONSUME)
			rmdir(f->path);
		if (depth == 1) {
			memcpy(digest, d, ART_DIGEST_SIZE);
			if (size)
				*size = f->size;
			frame_free(f);
			depth = 0;
			break;
		}
		{
			struct frame *parent = &stk[depth - 2];
			parent->size += f->size;
			rc = frame_add(a, parent, 'd', "755", d, f->name);
			frame_free(f);
			depth--;
			if (rc)
				break;
		}
	}
	while (depth)
		frame_free(&stk[--depth]);
	free(stk);
	return rc;
}

static int hash_or_ingest(struct art *a, const char *path, enum walk_mode mode,
			  char digest[ART_DIGEST_SIZE], enum art_kind *kind, uint64_t *size)
{
	struct stat sb;
	int rc;

	a->err[0] = '\0';
	if (lstat(path, &sb) < 0)
		return syserr(a, errno, "stat", path);
	if (S_ISLNK(sb.st_mode))
		return seterr(a, ART_EINVAL,
			      "%s is a symbolic link; an artifact must be a file or a directory",
			      path);
	if (S_ISREG(sb.st_mode)) {
		if (mode == WALK_HASH) {
			int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0)
				return syserr(a, errno, "open", path);
			rc = hash_fd(a, fd, -1, path, digest, size);
			close(fd);
		} else {
			rc = store_file(a, path, &sb, mode == WALK_KEEP, digest, size);
		}
		if (!rc && kind)
			*kind = ART_FILE;
		return rc;
	}
	if (S_ISDIR(sb.st_mode)) {
		rc = walk_dir(a, path, mode, digest, size);
		if (!rc && kind)
			*kind = ART_DIR;
		return rc;
	}
	return seterr(a, ART_EINVAL, "%s: unsupported file type (an artifact must be a file or "
		      "a directory)", path);
}

int art_hash_path(struct art *a, const char *path, char digest[ART_DIGEST_SIZE],
		  enum art_kind *kind, uint64_t *size)
{
	return hash_or_ingest(a, path, WALK_HASH, digest, kind, size);
}

int art_ingest(struct art *a, const char *path, unsigned flags, char digest[ART_DIGEST_SIZE],
	       enum art_kind *kind, uint64_t *size)
{
	return hash_or_ingest(a, path, (flags & ART_INGEST_KEEP) ? WALK_KEEP : WALK_CONSUME,
			      digest, kind, size);
}

int art_kind_of(struct art *a, const char *digest, enum art_kind *kind)
{
	struct stat sb;
	char *p;

	if (!art_digest_valid(digest))
		return seterr(a, ART_EINVAL, "bad digest '%.70s'", digest ? digest : "");
	for (int k = ART_DIR; k >= ART_FILE; k--) {
		if (!(p = art_object_path(a, digest, (enum art_kind)k)))
			return nomem(a);
		int ok = stat(p, &sb) == 0;
		free(p);
		if (ok) {
			*kind = (enum art_kind)k;
			return 0;
		}
	}
	return seterr(a, ART_ENOENT, "artifact %s is not in the store", digest);
}

/* --- reading trees ---------------------------------------------------------------------- */

/* Read tree DIGEST's listing into a malloc'd buffer: *len bytes of entries (0 for an empty
 * directory), *rawlen the object's size (what its digest covers). */
static int read_tree(struct art *a, const char *digest, char **buf, size_t *len,
		     size_t *rawlen)
{
	char *p = art_object_path(a, digest, ART_DIR);
	struct stat sb;
	int fd, rc = 0;
	size_t got = 0;

	*buf = NULL;
	if (!p)
		return seterr(a, ART_EINVAL, "bad digest '%.70s'", digest);
	if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = errno == ENOENT ? seterr(a, ART_ENOENT, "directory object %s is missing from "
					      "the store", digest)
				     : syserr(a, errno, "open", p);
		free(p);
		return rc;
	}
	if (fstat(fd, &sb) < 0 || !(*buf = malloc((size_t)sb.st_size + 1))) {
		rc = *buf ? syserr(a, errno, "stat", p) : nomem(a);
		goto out;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, *buf + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? syserr(a, errno, "read", p)
				   : seterr(a, ART_ECORRUPT, "%s: short read", p);
			goto out;
		}
		got += (size_t)r;
	}
	(*buf)[got] = '\0';
	*len = got;
	if (got == EMPTY_DIR_LEN && !memcmp(*buf, EMPTY_DIR, EMPTY_DIR_LEN))
		*len = 0; /* the empty directory: no entries (the bytes stay for a re-hash) */
	*rawlen = got;
out:
	if (rc) {
		free(*buf);
		*buf = NULL;
	}
	close(fd);
	free(p);
	return rc;
}

/* One parsed listing entry; pointers into the listing buffer. */
struct entry {
	char type;
	int exec;
	const char *digest; /* NUL-terminated copy in dig */
	char dig[ART_DIGEST_SIZE];
	const char *name;
};

/* Parse the entry at *pos of BUF[len]; advances *pos. Returns 1, 0 at the end, -1 if bad. */
static int next_entry(const char *buf, size_t len, size_t *pos, struct entry *e)
{
	const char *p = buf + *pos, *end = buf + len, *z;

	if (p >= end)
		return 0;
	if (!(z = memchr(p, '\0', (size_t)(end - p))))
		return -1;
	/* "T MMM <64 hex> NAME" */
	if ((size_t)(z - p) < 2 + 4 + ART_DIGEST_LEN + 2 || p[1] != ' ' || p[5] != ' ' ||
	    p[6 + ART_DIGEST_LEN] != ' ')
		return -1;
	e->type = p[0];
	e->exec = p[2] == '7';
	memcpy(e->dig, p + 6, ART_DIGEST_LEN);
	e->dig[ART_DIGEST_LEN] = '\0';
	e->digest = e->dig;
	e->name = p + 7 + ART_DIGEST_LEN;
	if (!art_digest_valid(e->dig) || (e->type != 'f' && e->type != 'd' && e->type != 'l') ||
	    !*e->name || strchr(e->name, '/') || !strcmp(e->name, ".") || !strcmp(e->name, ".."))
		return -1;
	*pos = (size_t)(z + 1 - buf);
	return 1;
}

/* --- materialise ------------------------------------------------------------------------ */

/* Copy bytes from IN to OUT (copy_file_range, else read/write). */
static int copy_bytes(struct art *a, int in, int out, const char *src)
{
	for (;;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)
			break;
		return syserr(a, errno, "copy", src);
	}
	for (;;) {
		ssize_t r = read(in, a->buf, BUFSZ);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return syserr(a, errno, "read", src);
		if (r == 0)
			return 0;
		if (write_all(out, a->buf, (size_t)r) < 0)
			return syserr(a, errno, "write a copy of", src);
	}
}

/* Put blob OBJ at DEST (absent) with MODE; hardlink only when ALLOW_LINK. */
static int place_file(struct art *a, const char *obj, const char *dest, mode_t mode,
		      int allow_link)
{
	int in, out, rc = 0;
	struct stat ds;
	int try_clone = 1;

	if ((in = open(obj, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? seterr(a, ART_ENOENT, "object %s is missing from the store",
						obj)
				       : syserr(a, errno, "open", obj);
	if ((out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		rc = syserr(a, errno, "create", dest);
		close(in);
		return rc;
	}
	if (a->noreflink_valid && fstat(out, &ds) == 0 && ds.st_dev == a->noreflink_dev)
		try_clone = 0;
	if (try_clone && ioctl(out, FICLONE, in) == 0)
		goto done;
	if (try_clone && fstat(out, &ds) == 0) {
		a->noreflink_dev = ds.st_dev;
		a->noreflink_valid = 1;
	}
	if (allow_link) {
		close(out);
		out = -1;
		if (unlink(dest) < 0) {
			rc = syserr(a, errno, "unlink", dest);
			goto out;
		}
		if (link(obj, dest) == 0)
			goto out;
		if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != EACCES) {
			rc = syserr(a, errno, "link", dest);
			goto out;
		}
		if ((out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
			rc = syserr(a, errno, "create", dest);
			goto out;
		}
	}
	if ((rc = copy_bytes(a, in, out, obj)))
		goto out;
done:
	if (fchmod(out, mode) < 0)
		rc = syserr(a, errno, "chmod", dest);
out:
	if (out >= 0 && close(out) < 0 && !rc)
		rc = syserr(a, errno, "write", dest);
	if (rc)
		unlink(dest);
	close(in);
	return rc;
}

/* Make symlink DEST pointing at blob OBJ's bytes. */
static int place_link(struct art *a, const char *obj, const char *dest)
{
	int fd = open(obj, O_RDONLY | O_CLOEXEC), rc = 0;
	struct stat sb;
	char *t = NULL;
	size_t got = 0;

	if (fd < 0)
		return errno == ENOENT ? seterr(a, ART_ENOENT, "object %s is missing from the store",
						obj)
				       : syserr(a, errno, "open", obj);
	if (fstat(fd, &sb) < 0 || sb.st_size > 65536 || !(t = malloc((size_t)sb.st_size + 1))) {
		rc = seterr(a, ART_ECORRUPT, "%s: not a symbolic link target", obj);
		goto out;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t r = read(fd, t + got, (size_t)sb.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = syserr(a, r < 0 ? errno : EIO, "read", obj);
			goto out;
		}
		got += (size_t)r;
	}
	t[got] = '\0';
	if (memchr(t, '\0', got) || symlink(t, dest) < 0)
		rc = memchr(t, '\0', got) ? seterr(a, ART_ECORRUPT, "%s: bad link target", obj)
					  : syserr(a, errno, "symlink", dest);
out:
	free(t);
	close(fd);
	return rc;
}

static int rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP || type == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* Remove PATH and everything below it (best effort; used to undo a partial materialise). */
static void rm_tree(const char *path)
{
	nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS);
}

struct mframe {
	char dig[ART_DIGEST_SIZE];
	char *dest;
};

/* Materialise tree DIGEST at DEST (absent) iteratively. */
static int place_tree(struct art *a, const char *digest, const char *dest, unsigned flags)
{
	struct mframe *stk;
	size_t depth = 0, cap = 16;
	int writable = !!(flags & ART_MAT_WRITABLE);
	int allow_link = !writable && !(flags & ART_MAT_NO_LINK) && !a->is_root;
	int rc = 0;

	if (!(stk = malloc(cap * sizeof *stk)))
		return nomem(a);
	if (mkdir(dest, 0755) < 0) {
		free(stk);
		return syserr(a, errno, "mkdir", dest);
	}
	memcpy(stk[0].dig, digest, ART_DIGEST_SIZE);
	if (!(stk[0].dest = strdup(dest))) {
		free(stk);
		rmdir(dest);
		return nomem(a);
	}
	depth = 1;
	while (depth && !rc) {
		struct mframe f = stk[--depth];
		char *buf;
		size_t len, raw, pos = 0;
		struct entry e;
		int k;

		if ((rc = read_tree(a, f.dig, &buf, &len, &raw))) {
			free(f.dest);
			break;
		}
		while (!rc && (k = next_entry(buf, len, &pos, &e)) != 0) {
			char *child = NULL, *obj = NULL;

			if (k < 0) {
				rc = seterr(a, ART_ECORRUPT, "directory object %s is corrupt", f.dig);
				break;
			}
			if (asprintf(&child, "%s/%s", f.dest, e.name) < 0) {
				rc = nomem(a);
				break;
			}
			if (e.type == 'd') {
				if (mkdir(child, 0755) < 0) {
					rc = syserr(a, errno, "mkdir", child);
					free(child);
					break;
				}
				if (depth == cap) {
					struct mframe *ns = realloc(stk, 2 * cap * sizeof *ns);
					if (!ns) {
						free(child);
						rc = nomem(a);
						break;
					}
					stk = ns;
					cap *= 2;
				}
				memcpy(stk[depth].dig, e.digest, ART_DIGEST_SIZE);
				stk[depth++].dest = child;
				continue;
			}
			if (!(obj = art_object_path(a, e.digest, ART_FILE))) {
				free(child);
				rc = nomem(a);
				break;
			}
			if (e.type == 'l') {
				rc = place_link(a, obj, child);
			} else {
				mode_t m = writable ? (e.exec ? 0755 : 0644) : (e.exec ? 0555 : 0444);
				rc = place_file(a, obj, child, m, allow_link && !e.exec);
			}
			free(obj);
			free(child);
		}
		free(buf);
		free(f.dest);
	}
	while (depth)
		free(stk[--depth].dest);
	free(stk);
	if (rc)
		rm_tree(dest);
	return rc;
}

int art_materialize(struct art *a, const char *digest, enum art_kind kind, const char *dest,
		    unsigned flags)
{
	struct stat sb;
	char *obj, *tmp = NULL;
	int rc, writable = !!(flags & ART_MAT_WRITABLE);

	a->err[0] = '\0';
	if (!art_digest_valid(digest))
		return seterr(a, ART_EINVAL, "bad digest '%.70s'", digest ? digest : "");
	if (kind != ART_FILE && kind != ART_DIR)
		return seterr(a, ART_EINVAL, "bad artifact kind %d", (int)kind);
	if (lstat(dest, &sb) == 0) {
		if (!(flags & ART_MAT_REPLACE) || kind != ART_FILE || !S_ISREG(sb.st_mode))
			return seterr(a, ART_EEXIST, "%s exists already", dest);
		if (asprintf(&tmp, "%s.kfpc-tmp-%ld", dest, (long)getpid()) < 0)
			return nomem(a);
		unlink(tmp);
	} else if (errno != ENOENT) {
		return syserr(a, errno, "stat", dest);
	}
	if (kind == ART_DIR) {
		rc = place_tree(a, digest, dest, flags);
		free(tmp);
		return rc;
	}
	if (!(obj = art_object_path(a, digest, ART_FILE))) {
		free(tmp);
		return nomem(a);
	}
	rc = place_file(a, obj, tmp ? tmp : dest, writable ? 0644 : 0444,
			!writable && !(flags & ART_MAT_NO_LINK) && !a->is_root);
	if (!rc && tmp && rename(tmp, dest) < 0) {
		rc = syserr(a, errno, "rename onto", dest);
		unlink(tmp);
	}
	free(obj);
	free(tmp);
	return rc;
}

int art_export(struct art *a, const char *digest, enum art_kind kind, const char *dest)
{
	return art_materialize(a, digest, kind, dest, ART_MAT_WRITABLE | ART_MAT_REPLACE);
}

/* --- verify / size / usage -------------------------------------------------------------- */

/* Check blob DIGEST: exists (and with HASH, re-hashes to DIGEST). Adds its size to *size. */
static int check_blob(struct art *a, const char *digest, int hash, uint64_t *size)
{
	char *p = art_object_path(a, digest, ART_FILE);
	struct stat sb;
	int rc = 0;

	if (!p)
		return nomem(a);
	if (stat(p, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		rc = seterr(a, ART_ENOENT, "object %s is missing from the store", digest);
	} else if (hash) {
		char d[ART_DIGEST_SIZE];
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		rc = fd < 0 ? syserr(a, errno, "open", p) : hash_fd(a, fd, -1, p, d, NULL);
		if (fd >= 0)
			close(fd);
		if (!rc && strcmp(d, digest))
			rc = seterr(a, ART_ECORRUPT, "object %s is corrupt (its bytes hash to %s)",
				    digest, d);
	}
	if (!rc && size)
		*size += (uint64_t)sb.st_size;
	free(p);
	return rc;
}

/* Walk tree DIGEST iteratively: check every object (DEEP) and/or sum file sizes. */
static int walk_tree(struct art *a, const char *digest, int hash, uint64_t *size)
{
	char (*stk)[ART_DIGEST_SIZE];
	size_t depth = 0, cap = 16;
	int rc = 0;

	if (!(stk = malloc(cap * sizeof *stk)))
		return nomem(a);
	memcpy(stk[depth++], digest, ART_DIGEST_SIZE);
	while (depth && !rc) {
		char d[ART_DIGEST_SIZE], chk[ART_DIGEST_SIZE];
		char *buf;
		size_t len, raw, pos = 0;
		struct entry e;
		int k;

		memcpy(d, stk[--depth], ART_DIGEST_SIZE);
		if ((rc = read_tree(a, d, &buf, &len, &raw)))
			break;
		if (hash && (sha_mem(a, buf, raw, chk) < 0 || strcmp(chk, d)))
			rc = seterr(a, ART_ECORRUPT, "directory object %s is corrupt", d);
		while (!rc && (k = next_entry(buf, len, &pos, &e)) != 0) {
			if (k < 0) {
				rc = seterr(a, ART_ECORRUPT, "directory object %s is corrupt", d);
				break;
			}
			if (e.type == 'd') {
				if (depth == cap) {
					void *ns = realloc(stk, 2 * cap * sizeof *stk);
					if (!ns) {
						rc = nomem(a);
						break;
					}
					stk = ns;
					cap *= 2;
				}
				memcpy(stk[depth++], e.digest, ART_DIGEST_SIZE);
			} else {
				uint64_t s = 0;
				rc = check_blob(a, e.digest, hash, &s);
				if (size && e.type == 'f')
					*size += s;
			}
		}
		free(buf);
	}
	free(stk);
	return rc;
}

int art_verify(struct art *a, const char *digest, enum art_kind kind, unsigned flags)
{
	a->err[0] = '\0';
	if (!art_digest_valid(digest))
		return seterr(a, ART_EINVAL, "bad digest '%.70s'", digest ? digest : "");
	if (kind == ART_FILE)
		return check_blob(a, digest, !!(flags & ART_VERIFY_HASH), NULL);
	if (kind != ART_DIR)
		return seterr(a, ART_EINVAL, "bad artifact kind %d", (int)kind);
	if (!(flags & (ART_VERIFY_DEEP | ART_VERIFY_HASH))) {
		char *p = art_object_path(a, digest, ART_DIR);
		struct stat sb;
		int ok;
		if (!p)
			return nomem(a);
		ok = stat(p, &sb) == 0;
		free(p);
		return ok ? 0 : seterr(a, ART_ENOENT, "directory object %s is missing from the store",
				       digest);
	}
	return walk_tree(a, digest, !!(flags & ART_VERIFY_HASH), NULL);
}

int art_size(struct art *a, const char *digest, enum art_kind kind, uint64_t *size)
{
	*size = 0;
	if (!art_digest_valid(digest))
		return seterr(a, ART_EINVAL, "bad digest '%.70s'", digest ? digest : "");
	if (kind == ART_FILE)
		return check_blob(a, digest, 0, size);
	return walk_tree(a, digest, 0, size);
}

int art_usage(struct art *a, uint64_t *bytes, uint64_t *nobjects)
{
	static const char *const sub[] = {"blobs", "trees"};
	uint64_t b = 0, n = 0;

	for (size_t s = 0; s < 2; s++) {
		char *top;
		DIR *d;
		struct dirent *e;

		if (asprintf(&top, "%s/%s", a->root, sub[s]) < 0)
			return nomem(a);
		if (!(d = opendir(top))) {
			int rc = syserr(a, errno, "open directory", top);
			free(top);
			return rc;
		}
		while ((e = readdir(d))) {
			char *fan;
			DIR *d2;
			struct dirent *e2;

			if (e->d_name[0] == '.')
				continue;
			if (asprintf(&fan, "%s/%s", top, e->d_name) < 0)
				continue;
			if ((d2 = opendir(fan))) {
				int dfd = dirfd(d2);
				while ((e2 = readdir(d2))) {
					struct stat sb;
					if (e2->d_name[0] == '.')
						continue;
					if (fstatat(dfd, e2->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
						b += (uint64_t)sb.st_blocks * 512;
						n++;
					}
				}
				closedir(d2);
			}
			free(fan);
		}
		closedir(d);
		free(top);
	}
	if (bytes)
		*bytes = b;
	if (nobjects)
		*nobjects = n;
	return 0;
}
