/* art.h - the content-addressed artifact store (CAS) under STATE/cas/.
 *
 * Digests are SHA-256 (OpenSSL EVP), written as 64 lowercase hex characters.
 *
 *   file       digest = SHA-256 of its bytes
 *   directory  digest = SHA-256 of its canonical listing: for every entry, sorted by name
 *              (bytewise strcmp order), the bytes
 *                  TYPE ' ' MODE ' ' HEXDIGEST ' ' NAME '\0'
 *              with TYPE 'f' (regular file, MODE "644" or "755": 755 when any execute bit is
 *              set), 'd' (directory, MODE "755", HEXDIGEST its own listing's digest) or 'l'
 *              (symbolic link, MODE "777", HEXDIGEST the digest of the link target's bytes).
 *              An empty directory's listing is the 15 bytes "kfpc-empty-dir\0" instead of
 *              nothing, so that it never has the digest of an empty file.
 *              Other file types (fifos, sockets, devices) are refused (ART_EINVAL).
 *
 * Layout on disk:
 *   cas/blobs/HH/HEX   file contents (and symlink targets), mode 0444
 *   cas/trees/HH/HEX   directory listings (the bytes above), mode 0444; each entry's file is
 *                      itself a blob, each subdirectory a tree: a directory is stored as a
 *                      tree of CAS objects (identical files are stored once, across artifacts)
 *   cas/tmp/           partial objects; an object appears under its final name only complete
 *                      (written to tmp/, then renamed), so a crash never leaves a torn object
 * HH is the first two hex digits of HEX. Blobs and trees are kept apart so that a file whose
 * bytes happen to be a listing can never be mistaken for a directory.
 *
 * Read-only policy: stored objects are mode 0444 in 0755 directories. Inputs are materialised
 * read-only (0444 files, 0555 for executable files; directories 0755) by, in order of
 * preference: reflink (ioctl FICLONE: an independent copy-on-write inode, costs no bytes),
 * hardlink (shares the CAS inode), copy. A hardlink is used only for a 0444 file and never when
 * the process runs as root (euid 0), because root ignores permission bits and a step could then
 * write through the link into the CAS. Limits: a non-root step running as the CAS owner can
 * still chmod a hardlinked input and modify it; art_verify with ART_VERIFY_HASH detects that.
 * Docker steps see inputs through read-only bind mounts. art_export never hardlinks.
 *
 * Errors: functions return 0 (ART_OK) or a negative ART_E* code, with a one-line message in
 * art_errmsg(). A full disk or quota (ENOSPC, EDQUOT) gives ART_ENOSPC and a message such as
 * "disk full while storing an artifact in STATE/cas: No space left on device".
 *
 * Hashing streams through a 128 KiB buffer (files are never read whole into memory).
 * Directories are walked iteratively with a heap-allocated stack (depth bounded only by
 * memory and PATH_MAX). A handle is not thread-safe; open one per thread. */
#ifndef KFPC_ART_H
#define KFPC_ART_H

#include <stddef.h>
#include <stdint.h>

/* Status codes. */
enum {
	ART_OK = 0,
	ART_ENOENT = -1,   /* no such object / source path */
	ART_ENOSPC = -2,   /* disk or quota full */
	ART_EINVAL = -3,   /* bad digest string, unsupported file type, bad destination */
	ART_EIO = -4,      /* any other system error (message says which call and path) */
	ART_ENOMEM = -5,
	ART_EEXIST = -6,   /* the destination exists */
	ART_ECORRUPT = -7, /* an object's bytes no longer match its digest */
};

/* Length of a hex digest, and the size of a buffer for one. */
#define ART_DIGEST_LEN 64
#define ART_DIGEST_SIZE 65

/* What an artifact is. */
enum art_kind {
	ART_FILE = 1,
	ART_DIR = 2,
};

/* art_ingest flags. */
enum {
	ART_INGEST_KEEP = 1 << 0, /* copy into the CAS and leave the source untouched */
};

/* art_materialize flags. */
enum {
	ART_MAT_NO_LINK = 1 << 0,  /* never hardlink (reflink or copy only) */
	ART_MAT_WRITABLE = 1 << 1, /* writable result (0644/0755 files): implies NO_LINK */
	ART_MAT_REPLACE = 1 << 2,  /* a destination that is a regular file is replaced */
};

/* art_verify flags. */
enum {
	ART_VERIFY_DEEP = 1 << 0, /* directories: every object under the tree exists */
	ART_VERIFY_HASH = 1 << 1, /* re-hash the objects (implies DEEP) */
};

struct art;

/* Open the CAS of state directory STATE_DIR (STATE_DIR/cas, created with its subdirectories
 * if missing). On success *out is freed by art_close and 0 is returned; else *out is NULL and
 * err[errlen] says why (ART_EIO, ART_ENOSPC, ART_ENOMEM). */
int art_open(const char *state_dir, struct art **out, char *err, size_t errlen);

/* Close (NULL is ok). */
void art_close(struct art *a);

/* The message of the last failed call on A ("" if none). Valid until the next call on A. */
const char *art_errmsg(const struct art *a);

/* Static "file" / "dir" (NULL for anything else), and the inverse (0 if unknown). */
const char *art_kind_name(enum art_kind k);
enum art_kind art_kind_parse(const char *name);

/* 1 if S is 64 lowercase hex characters, else 0. */
int art_digest_valid(const char *s);

/* Hash PATH (a file or a directory, symlinks not followed at the top: a symlink is refused)
 * without storing it. Writes digest[ART_DIGEST_SIZE], *kind and *size (logical bytes: sum of
 * the file sizes for a directory); kind and size may be NULL. */
int art_hash_path(struct art *a, const char *path, char digest[ART_DIGEST_SIZE],
		  enum art_kind *kind, uint64_t *size);

/* Store PATH (what a step produced at {{outputs.X}}) in the CAS. Without ART_INGEST_KEEP the
 * source is consumed: each file is renamed into the CAS when it is on the same file system
 * and has no other hard link (no byte copy), else copied; duplicates of stored objects are
 * deleted; directories are removed once emptied. On success PATH no longer exists (except
 * entries this process may not remove, e.g. written by a container's root). On failure
 * PATH may be partly consumed (what was moved is in the CAS, content-addressed and harmless).
 * Writes digest[ART_DIGEST_SIZE], *kind and *size (either may be NULL). ART_ENOENT if PATH
 * does not exist, ART_EINVAL for a symlink at the top or an unsupported file type. */
int art_ingest(struct art *a, const char *path, unsigned flags, char digest[ART_DIGEST_SIZE],
	       enum art_kind *kind, uint64_t *size);

/* The kind of stored object DIGEST (ART_DIR if a tree exists, else ART_FILE if a blob exists)
 * into *kind. ART_ENOENT if neither. */
int art_kind_of(struct art *a, const char *digest, enum art_kind *kind);

/* Make stored object DIGEST of kind KIND appear at DEST, which must not exist (unless
 * ART_MAT_REPLACE and DEST is a regular file). DEST's parent must exist. Read-only by default
 * (see the read-only policy above); FLAGS as documented. ART_ENOENT if the object (or a part
 * of a tree) is missing, ART_EEXIST if DEST exists. On failure nothing is left at DEST. */
int art_materialize(struct art *a, const char *digest, enum art_kind kind, const char *dest,
		    unsigned flags);

/* Copy artifact DIGEST to a user path DEST (`kfpc artifact get`): art_materialize with
 * ART_MAT_WRITABLE | ART_MAT_REPLACE (a file replaces an existing regular file; a directory
 * needs DEST absent). */
int art_export(struct art *a, const char *digest, enum art_kind kind, const char *dest);

/* 0 if object DIGEST of kind KIND is stored (see ART_VERIFY_* for how deep to look),
 * ART_ENOENT if it (or, DEEP, a part) is missing, ART_ECORRUPT if a re-hash differs. */
int art_verify(struct art *a, const char *digest, enum art_kind kind, unsigned flags);

/* Logical size of object DIGEST: a blob's size, or the sum of a tree's file sizes. */
int art_size(struct art *a, const char *digest, enum art_kind kind, uint64_t *size);

/* Malloc'd absolute path of the stored object (cas/blobs/... or cas/trees/...), whether or
 * not it exists; NULL on a bad digest or no memory. The object is read-only: never write it. */
char *art_object_path(struct art *a, const char *digest, enum art_kind kind);

/* Space used by the CAS: bytes allocated on disk (st_blocks x 512) and number of objects.
 * Either pointer may be NULL. */
int art_usage(struct art *a, uint64_t *bytes, uint64_t *nobjects);

#endif
