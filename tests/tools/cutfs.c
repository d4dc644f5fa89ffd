/* SPDX-License-Identifier: MIT */
/*
 * cutfs: a FUSE file system (libfuse3) that passes through to a backing directory and can
 * lose power on command, like an unplugged machine: every write to a file since that file's
 * last fsync, and every create, link, rename, unlink or rmdir in a directory since that
 * directory's last fsync, is undone. The power-cut test (tests/test_it_powercut.c) puts the
 * relay's data directory on it.
 *
 * Writes go straight to the backing file; before a write (or a truncate) changes bytes below
 * the size the file had at its last fsync, the old bytes are saved in memory (an undo log per
 * file, keyed by inode and holding its own descriptor, so renames and unlinks do not matter).
 * fsync or fdatasync drops the file's log. Unlinked and replaced files go to a hidden trash
 * directory in the backing store instead of being deleted, and the name changes are logged
 * until an fsync of the directories they touch. A cut applies the data logs in reverse, cuts
 * each file back to its synced size, then undoes the name changes in reverse.
 *
 *   cutfs BACKING MOUNTPOINT [fuse options, e.g. -f -s]
 *
 * The mount root has a hidden control file, .cutfs-ctl: writing "cut" performs a cut;
 * reading it gives "cuts=N errors=E pending_files=F pending_names=M". Processes with files
 * open on the mount should be dead before a cut (a power cut leaves none running); their
 * dirty pages in the kernel are flushed by the test (syncfs) before the cut, so that they
 * are discarded with the rest. Single-threaded (-s): there is no locking. A test tool: it
 * trusts its caller.
 */
#define _GNU_SOURCE
#define FUSE_USE_VERSION 35

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define CTL_NAME   ".cutfs-ctl"
#define TRASH_NAME ".cutfs-trash"
#define CTL_FH     UINT64_MAX /* the file handle of the control file */

/* Old bytes of one range, saved before their first change since the last fsync. */
struct range {
	off_t off;
	size_t len;
	char *old;
};

/* One file's undo log: everything needed to put it back as it was at its last fsync. */
struct fundo {
	dev_t dev;
	ino_t ino;
	int fd;            /* our own read-write descriptor on the inode */
	off_t synced_size; /* its size at its last fsync (or at the mount) */
	struct range *ranges;
	size_t n, cap;
};

enum ns_kind { NS_CREATE, NS_UNLINK, NS_RENAME, NS_RMDIR };

/* One name change not yet made durable by an fsync of its directory (or directories). */
struct nsop {
	enum ns_kind kind;
	char *path;        /* created, unlinked or removed; a rename's source */
	char *to;          /* a rename's target */
	long trash;        /* the trash name of an unlinked or replaced file, -1 if none */
	char *dir1, *dir2; /* the directories whose fsync makes it durable (dir2 may be NULL) */
	bool synced1, synced2;
};

static struct {
	int root; /* the backing directory */
	struct fundo *files;
	size_t nfiles, capfiles;
	struct nsop *ops;
	size_t nops, capops;
	long next_trash;
	unsigned long cuts, errors;
	char ctl_out[128];
} g;

/* FUSE's "/a/b" as a path relative to the backing root ("." for the root). */
static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path == '\0' ? "." : path;
}

static bool is_ctl(const char *path)
{
	return strcmp(rel(path), CTL_NAME) == 0;
}

static bool is_trash(const char *path)
{
	const char *r = rel(path);
	size_t n = strlen(TRASH_NAME);
	return strncmp(r, TRASH_NAME, n) == 0 && (r[n] == '\0' || r[n] == '/');
}

static void trash_path(long id, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%ld", TRASH_NAME, id);
}

/* The parent of relative path P, owned by the caller ("." for a name at the root). */
static char *parent_of(const char *p)
{
	const char *slash = strrchr(p, '/');
	return slash == NULL ? strdup(".") : strndup(p, (size_t)(slash - p));
}

static void fail_cut(const char *what, const char *path)
{
	fprintf(stderr, "cutfs: cut: %s %s: %s\n", what, path, strerror(errno));
	g.errors++;
}

/* ---- data: the per-file undo logs ---- */

/* The undo log of the file open as FD, made on its first change since its last fsync. */
static struct fundo *fundo_get(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return NULL;
	for (size_t i = 0; i < g.nfiles; i++)
		if (g.files[i].dev == st.st_dev && g.files[i].ino == st.st_ino)
			return &g.files[i];
	/* A descriptor of our own that reads and writes, whatever FD's mode: through /proc, it
	 * reopens the inode itself, wherever its name has gone. */
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	int own = open(self, O_RDWR | O_CLOEXEC);
	if (own < 0)
		return NULL;
	if (g.nfiles == g.capfiles) {
		size_t cap = g.capfiles ? 2 * g.capfiles : 16;
		struct fundo *grown = realloc(g.files, cap * sizeof(*grown));
		if (grown == NULL) {
			close(own);
			return NULL;
		}
		g.files = grown;
		g.capfiles = cap;
	}
	struct fundo *f = &g.files[g.nfiles++];
	*f = (struct fundo){
	    .dev = st.st_dev, .ino = st.st_ino, .fd = own, .synced_size = st.st_size};
	return f;
}

/* Saves the current bytes of [OFF, OFF+LEN) that lie below F's synced size. */
static int fundo_save(struct fundo *f, off_t off, size_t len)
{
	if (off >= f->synced_size || len == 0)
		return 0;
	if ((off_t)len > f->synced_size - off)
		len = (size_t)(f->synced_size - off);
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		struct range *grown = realloc(f->ranges, cap * sizeof(*grown));
		if (grown == NULL)
			return -ENOMEM;
		f->ranges = grown;
		f->cap = cap;
	}
	char *old = malloc(len);
	if (old == NULL)
		return -ENOMEM;
	/* A file cut shorter since its fsync reads short here: the truncate saved the rest,
	 * earlier in the log, so it is restored after (over) this range. */
	ssize_t got = pread(f->fd, old, len, off);
	if (got <= 0) {
		free(old);
		return got < 0 ? -errno : 0;
	}
	f->ranges[f->n++] = (struct range){.off = off, .len = (size_t)got, .old = old};
	return 0;
}

static void fundo_free(struct fundo *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->ranges[i].old);
	free(f->ranges);
	close(f->fd);
}

/* The file open as FD was fsynced: what it holds now is what a cut leaves. */
static void fundo_drop(int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return;
	for (size_t i = 0; i < g.nfiles; i++)
		if (g.files[i].dev == st.st_dev && g.files[i].ino == st.st_ino) {
			fundo_free(&g.files[i]);
			g.files[i] = g.files[--g.nfiles];
			return;
		}
}

/* Puts F back as it was at its last fsync: saved ranges newest first, then its size. */
static void fundo_undo(struct fundo *f)
{
	for (size_t i = f->n; i-- > 0;) {
		struct range *r = &f->ranges[i];
		if (pwrite(f->fd, r->old, r->len, r->off) != (ssize_t)r->len)
			fail_cut("restore data of", "a file");
	}
	if (ftruncate(f->fd, f->synced_size) != 0)
		fail_cut("truncate", "a file");
}

/* ftruncate through the undo log. */
static int undo_truncate(int fd, off_t size)
{
	struct fundo *f = fundo_get(fd);
	if (f == NULL)
		return -EIO;
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -errno;
	if (size < st.st_size) {
		int rc = fundo_save(f, size, (size_t)(st.st_size - size));
		if (rc != 0)
			return rc;
	}
	return ftruncate(fd, size) == 0 ? 0 : -errno;
}

/* ---- names: the namespace undo log ---- */

/* Logs a name change just made (KIND on PATH; TO: a rename's target or NULL; TRASH: the trash
 * id of what it removed or replaced, or -1) until an fsync of its directories. Returns 0 or
 * -ENOMEM. */
static int ns_log(enum ns_kind kind, const char *path, const char *to, long trash)
{
	if (g.nops == g.capops) {
		size_t cap = g.capops ? 2 * g.capops : 64;
		struct nsop *grown = realloc(g.ops, cap * sizeof(*grown));
		if (grown == NULL)
			return -ENOMEM;
		g.ops = grown;
		g.capops = cap;
	}
	struct nsop *op = &g.ops[g.nops];
	*op = (struct nsop){
	    .kind = kind, .path = strdup(path), .trash = trash, .dir1 = parent_of(path)};
	if (to != NULL) {
		op->to = strdup(to);
		op->dir2 = parent_of(to);
		if (op->to == NULL || op->dir2 == NULL)
			return -ENOMEM;
	} else {
		op->synced2 = true;
	}
	if (op->path == NULL || op->dir1 == NULL)
		return -ENOMEM;
	g.nops++;
	return 0;
}

static void nsop_free(struct nsop *op)
{
	free(op->path);
	free(op->to);
	free(op->dir1);
	free(op->dir2);
}

/* Directory DIR was fsynced: the name changes in it are durable. */
static void ns_sync(const char *dir)
{
	size_t kept = 0;
	for (size_t i = 0; i < g.nops; i++) {
		struct nsop *op = &g.ops[i];
		if (strcmp(op->dir1, dir) == 0)
			op->synced1 = true;
		if (op->dir2 != NULL && strcmp(op->dir2, dir) == 0)
			op->synced2 = true;
		if (op->synced1 && op->synced2)
			nsop_free(op);
		else
			g.ops[kept++] = *op;
	}
	g.nops = kept;
}

/* Moves relative path P into the trash; returns its trash id or -1 (errno set). */
static long to_trash(const char *p)
{
	char t[64];
	long id = g.next_trash++;
	trash_path(id, t, sizeof(t));
	return renameat(g.root, p, g.root, t) == 0 ? id : -1;
}

static void from_trash(long id, const char *p)
{
	char t[64];
	trash_path(id, t, sizeof(t));
	if (renameat(g.root, t, g.root, p) != 0)
		fail_cut("bring back", p);
}

static void nsop_undo(const struct nsop *op)
{
	switch (op->kind) {
	case NS_CREATE:
		if (to_trash(op->path) < 0)
			fail_cut("remove created", op->path);
		break;
	case NS_UNLINK:
		from_trash(op->trash, op->path);
		break;
	case NS_RENAME:
		if (renameat(g.root, op->to, g.root, op->path) != 0)
			fail_cut("rename back", op->to);
		if (op->trash >= 0)
			from_trash(op->trash, op->to);
		break;
	case NS_RMDIR:
		if (mkdirat(g.root, op->path, 0700) != 0)
			fail_cut("make again", op->path);
		break;
	}
}

/* The power cut: data first (by descriptor, wherever the names are), then names. */
static void cut(void)
{
	for (size_t i = 0; i < g.nfiles; i++) {
		fundo_undo(&g.files[i]);
		fundo_free(&g.files[i]);
	}
	g.nfiles = 0;
	for (size_t i = g.nops; i-- > 0;) {
		nsop_undo(&g.ops[i]);
		nsop_free(&g.ops[i]);
	}
	g.nops = 0;
	g.cuts++;
}

/* ---- the file system operations ---- */

static void *cutfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	/* No caching of names or attributes, and no page cache kept across opens: after a cut
	 * the kernel must see the backing store as it now is. Writes go through at once. */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->kernel_cache = 0;
	cfg->auto_cache = 0;
	cfg->hard_remove = 1;
	cfg->use_ino = 0;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	return NULL;
}

static int cutfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	if (is_ctl(path)) {
		memset(st, 0, sizeof(*st));
		st->st_mode = S_IFREG | 0600;
		st->st_nlink = 1;
		return 0;
	}
	if (is_trash(path))
		return -ENOENT;
	int rc = fi != NULL && fi->fh != CTL_FH
	             ? fstat((int)fi->fh, st)
	             : fstatat(g.root, rel(path), st, AT_SYMLINK_NOFOLLOW);
	return rc == 0 ? 0 : -errno;
}

static int cutfs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                         struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off, (void)fi, (void)flags;
	int fd = openat(g.root, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (d == NULL) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return -e;
	}
	bool at_root = strcmp(rel(path), ".") == 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (at_root && (strcmp(e->d_name, TRASH_NAME) == 0))
			continue;
		if (fill(buf, e->d_name, NULL, 0, 0) != 0)
			break;
	}
	closedir(d);
	return 0;
}

static int cutfs_mkdir(const char *path, mode_t mode)
{
	if (mkdirat(g.root, rel(path), mode) != 0)
		return -errno;
	return ns_log(NS_CREATE, rel(path), NULL, -1);
}

static int cutfs_unlink(const char *path)
{
	if (is_ctl(path) || is_trash(path))
		return -EPERM;
	struct stat st;
	if (fstatat(g.root, rel(path), &st, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	long id = to_trash(rel(path));
	if (id < 0)
		return -errno;
	return ns_log(NS_UNLINK, rel(path), NULL, id);
}

static int cutfs_rmdir(const char *path)
{
	if (unlinkat(g.root, rel(path), AT_REMOVEDIR) != 0)
		return -errno;
	return ns_log(NS_RMDIR, rel(path), NULL, -1);
}

static int cutfs_rename(const char *from, const char *to, unsigned int flags)
{
	if (is_ctl(from) || is_ctl(to) || is_trash(from) || is_trash(to))
		return -EPERM;
	if (flags & ~(unsigned)RENAME_NOREPLACE)
		return -EINVAL;
	struct stat sf, sto;
	if (fstatat(g.root, rel(from), &sf, AT_SYMLINK_NOFOLLOW) != 0)
		return -errno;
	long trash = -1;
	if (fstatat(g.root, rel(to), &sto, AT_SYMLINK_NOFOLLOW) == 0) {
		if (flags & RENAME_NOREPLACE)
			return -EEXIST;
		if (sf.st_dev == sto.st_dev && sf.st_ino == sto.st_ino)
			return 0;
		if (S_ISDIR(sto.st_mode) && !S_ISDIR(sf.st_mode))
			return -EISDIR;
		if (!S_ISDIR(sto.st_mode) && S_ISDIR(sf.st_mode))
			return -ENOTDIR;
		/* The replaced file is kept, so that a cut can bring it back. */
		if ((trash = to_trash(rel(to))) < 0)
			return -errno;
	}
	if (renameat(g.root, rel(from), g.root, rel(to)) != 0) {
		int e = errno;
		if (trash >= 0)
			from_trash(trash, rel(to));
		return -e;
	}
	return ns_log(NS_RENAME, rel(from), rel(to), trash);
}

/* A new name for an existing file (the client publishes its store with link()). */
static int cutfs_link(const char *from, const char *to)
{
	if (is_ctl(from) || is_ctl(to) || is_trash(from) || is_trash(to))
		return -EPERM;
	if (linkat(g.root, rel(from), g.root, rel(to), 0) != 0)
		return -errno;
	return ns_log(NS_CREATE, rel(to), NULL, -1);
}

static int cutfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)fi;
	return fchmodat(g.root, rel(path), mode, 0) == 0 ? 0 : -errno;
}

static int cutfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)fi;
	return fchownat(g.root, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int cutfs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)fi;
	if (is_ctl(path))
		return 0;
	return utimensat(g.root, rel(path), tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int cutfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (is_ctl(path))
		return 0;
	if (fi != NULL)
		return undo_truncate((int)fi->fh, size);
	int fd = openat(g.root, rel(path), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = undo_truncate(fd, size);
	close(fd);
	return rc;
}

/* Opens (and maybe creates) the backing file; O_TRUNC goes through the undo log. */
static int open_backing(const char *path, mode_t mode, struct fuse_file_info *fi, bool create)
{
	if (is_ctl(path)) {
		fi->fh = CTL_FH;
		fi->direct_io = 1;
		return 0;
	}
	if (is_trash(path))
		return -ENOENT;
	struct stat st;
	bool existed = fstatat(g.root, rel(path), &st, AT_SYMLINK_NOFOLLOW) == 0;
	/* O_APPEND is left to the kernel, which passes the offset: on Linux pwrite() on an
	 * O_APPEND descriptor would ignore it. */
	int flags = (fi->flags & ~(O_TRUNC | O_APPEND)) | O_CLOEXEC;
	if (create)
		flags |= O_CREAT;
	int fd = openat(g.root, rel(path), flags, mode);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (create && !existed)
		rc = ns_log(NS_CREATE, rel(path), NULL, -1);
	else if (fi->flags & O_TRUNC)
		rc = undo_truncate(fd, 0);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	fi->fh = (uint64_t)fd;
	return 0;
}

static int cutfs_open(const char *path, struct fuse_file_info *fi)
{
	return open_backing(path, 0, fi, false);
}

static int cutfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return open_backing(path, mode, fi, true);
}

static int cutfs_read(const char *path, char *buf, size_t size, off_t off,
                      struct fuse_file_info *fi)
{
	(void)path;
	if (fi->fh == CTL_FH) {
		int n = snprintf(g.ctl_out, sizeof(g.ctl_out),
		                 "cuts=%lu errors=%lu pending_files=%zu pending_names=%zu\n",
		                 g.cuts, g.errors, g.nfiles, g.nops);
		if (off >= n)
			return 0;
		size_t take = (size_t)(n - off) < size ? (size_t)(n - off) : size;
		memcpy(buf, g.ctl_out + off, take);
		return (int)take;
	}
	ssize_t got = pread((int)fi->fh, buf, size, off);
	return got < 0 ? -errno : (int)got;
}

static int cutfs_write(const char *path, const char *buf, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	(void)path;
	if (fi->fh == CTL_FH) {
		if (size >= 3 && memcmp(buf, "cut", 3) == 0) {
			cut();
			return (int)size;
		}
		return -EINVAL;
	}
	struct fundo *f = fundo_get((int)fi->fh);
	if (f == NULL)
		return -EIO;
	int rc = fundo_save(f, off, size);
	if (rc != 0)
		return rc;
	ssize_t put = pwrite((int)fi->fh, buf, size, off);
	return put < 0 ? -errno : (int)put;
}

static int cutfs_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	return fstatvfs(g.root, st) == 0 ? 0 : -errno;
}

static int cutfs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	if (fi->fh != CTL_FH)
		close((int)fi->fh);
	return 0;
}

/* fsync and fdatasync alike: the data is what counts here, and the size with it. */
static int cutfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path, (void)datasync;
	if (fi->fh != CTL_FH)
		fundo_drop((int)fi->fh);
	return 0;
}

static int cutfs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync, (void)fi;
	ns_sync(rel(path));
	return 0;
}

static int cutfs_fallocate(const char *path, int mode, off_t off, off_t len,
                           struct fuse_file_info *fi)
{
	(void)path;
	if (fi == NULL || fi->fh == CTL_FH)
		return -EOPNOTSUPP;
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		struct fundo *f = fundo_get((int)fi->fh);
		int rc = f == NULL ? -EIO : fundo_save(f, off, (size_t)len);
		if (rc != 0)
			return rc;
	} else if (!(mode & FALLOC_FL_KEEP_SIZE) && fundo_get((int)fi->fh) == NULL) {
		return -EIO; /* the size it may grow is put back by the cut */
	}
	return fallocate((int)fi->fh, mode, off, len) == 0 ? 0 : -errno;
}

static const struct fuse_operations cutfs_ops = {
    .init = cutfs_init,
    .getattr = cutfs_getattr,
    .readdir = cutfs_readdir,
    .mkdir = cutfs_mkdir,
    .unlink = cutfs_unlink,
    .rmdir = cutfs_rmdir,
    .rename = cutfs_rename,
    .link = cutfs_link,
    .chmod = cutfs_chmod,
    .chown = cutfs_chown,
    .utimens = cutfs_utimens,
    .truncate = cutfs_truncate,
    .open = cutfs_open,
    .create = cutfs_create,
    .read = cutfs_read,
    .write = cutfs_write,
    .statfs = cutfs_statfs,
    .release = cutfs_release,
    .fsync = cutfs_fsync,
    .fsyncdir = cutfs_fsyncdir,
    .fallocate = cutfs_fallocate,
};

int main(int argc, char *argv[])
{
	if (argc < 3) {
		fprintf(stderr, "usage: cutfs BACKING MOUNTPOINT [fuse options]\n");
		return 2;
	}
	g.root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g.root < 0) {
		fprintf(stderr, "cutfs: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (mkdirat(g.root, TRASH_NAME, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "cutfs: %s/%s: %s\n", argv[1], TRASH_NAME, strerror(errno));
		return 1;
	}
	/* fuse_main sees the mount point and the options only. */
	argv[1] = argv[0];
	return fuse_main(argc - 1, argv + 1, &cutfs_ops, NULL);
}
