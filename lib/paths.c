/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where the daemons keep their files, derived from configure's directories and the optional
 * pathspace, and the two file-system helpers every writer of those files needs: creating the
 * directories and replacing a file so that a crash leaves either the old or the new content.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/paths.h"
#include "lib/strutil.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef LOCALSTATEDIR
#define LOCALSTATEDIR "/var"
#endif
#ifndef RUNSTATEDIR
#define RUNSTATEDIR "/run"
#endif

#define PATHSPACE_MAX 32

static bool pathspace_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

int nx_pathspace_check(const char *name, struct nx_err *err)
{
	char shown[48];
	size_t i;

	if (!name || !name[0])
		return nx_err_set(err, EINVAL, "pathspace name is empty");
	for (i = 0; name[i]; i++) {
		if (i >= PATHSPACE_MAX)
			return nx_err_set(
				err, EINVAL, "pathspace \"%s\": longer than %d characters",
				nx_str_printable(shown, sizeof(shown), name), PATHSPACE_MAX);
		if (!pathspace_char(name[i]))
			return nx_err_set(err, EINVAL,
					  "pathspace \"%s\": only letters, digits, '_' and '-' "
					  "are allowed",
					  nx_str_printable(shown, sizeof(shown), name));
	}
	return 0;
}

/* "/" + pathspace, or "" for the default instance; -EINVAL for a bad name. */
static int ns_part(char *buf, size_t size, const char *pathspace)
{
	if (!pathspace || !pathspace[0]) {
		buf[0] = '\0';
		return 0;
	}
	if (nx_pathspace_check(pathspace, NULL) < 0)
		return -EINVAL;
	snprintf(buf, size, "/%s", pathspace);
	return 0;
}

static int fmt_path(char *buf, size_t size, const char *base, const char *sub,
		    const char *pathspace, const char *file, const char *ext)
{
	char ns[PATHSPACE_MAX + 2];
	int n;

	if (ns_part(ns, sizeof(ns), pathspace) < 0) {
		if (size > 0)
			buf[0] = '\0';
		return -EINVAL;
	}
	if (file)
		n = snprintf(buf, size, "%s%s%s/%s%s", base, sub, ns, file, ext);
	else
		n = snprintf(buf, size, "%s%s%s", base, sub, ns);
	if (n < 0 || (size_t)n >= size) {
		if (size > 0)
			buf[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

int nx_path_config(char *buf, size_t size, const char *daemon, const char *pathspace)
{
	return fmt_path(buf, size, SYSCONFDIR, "/nexodus", pathspace, daemon, ".conf");
}

int nx_path_state_dir(char *buf, size_t size, const char *pathspace)
{
	return fmt_path(buf, size, LOCALSTATEDIR, "/lib/nexodus", pathspace, NULL, NULL);
}

int nx_path_run_dir(char *buf, size_t size, const char *pathspace)
{
	return fmt_path(buf, size, RUNSTATEDIR, "/nexodus", pathspace, NULL, NULL);
}

int nx_path_vty(char *buf, size_t size, const char *daemon, const char *pathspace)
{
	return fmt_path(buf, size, RUNSTATEDIR, "/nexodus", pathspace, daemon, ".vty");
}

int nx_path_pid(char *buf, size_t size, const char *daemon, const char *pathspace)
{
	return fmt_path(buf, size, RUNSTATEDIR, "/nexodus", pathspace, daemon, ".pid");
}

/* Creates one directory; an existing directory is fine, anything else there is not. */
static int mkdir_one(const char *dir, unsigned mode, struct nx_err *err)
{
	struct stat st;
	int e;

	if (mkdir(dir, (mode_t)mode) == 0)
		return 0;
	e = errno;
	if (e == EEXIST) {
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		return nx_err_set(err, ENOTDIR,
				  "cannot create directory %s: exists and is not a "
				  "directory",
				  dir);
	}
	return nx_err_set(err, e, "cannot create directory %s: %s", dir, strerror(e));
}

int nx_mkdir_parents(const char *path, unsigned mode, int dir_itself, struct nx_err *err)
{
	char buf[4096];
	size_t len;
	size_t i;
	int rc;

	if (!path || !path[0])
		return nx_err_set(err, EINVAL, "empty path");
	len = nx_strlcpy(buf, path, sizeof(buf));
	if (len >= sizeof(buf))
		return nx_err_set(err, ENAMETOOLONG, "path too long: %.64s...", path);

	if (!dir_itself) {
		/* drop the last component: what follows the last '/' */
		char *slash = strrchr(buf, '/');

		if (!slash)
			return 0; /* a file in the current directory */
		*slash = '\0';
		len = (size_t)(slash - buf);
	}
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	if (len == 0 || (len == 1 && buf[0] == '/'))
		return 0;

	for (i = 1; i <= len; i++) {
		if (i < len && buf[i] != '/')
			continue;
		if (i < len && buf[i - 1] == '/')
			continue; /* "a//b" */
		buf[i] = '\0';
		rc = mkdir_one(buf, mode, err);
		if (i < len)
			buf[i] = '/';
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int nx_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
			 struct nx_err *err)
{
	char tmp[4096];
	char dir[4096];
	const char *slash;
	int fd = -1;
	int dfd;
	int rc;
	int n;

	if (!path || !path[0])
		return nx_err_set(err, EINVAL, "empty path");
	n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return nx_err_set(err, ENAMETOOLONG, "path too long: %.64s...", path);

	slash = strrchr(path, '/');
	if (!slash)
		nx_strlcpy(dir, ".", sizeof(dir));
	else if (slash == path)
		nx_strlcpy(dir, "/", sizeof(dir));
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);

	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		return nx_err_set(err, -rc, "cannot create a temporary file for %s: %s", path,
				  strerror(-rc));
	}
	if (fchmod(fd, (mode_t)mode) < 0) {
		rc = -errno;
		nx_err_set(err, -rc, "cannot set the mode of %s: %s", tmp, strerror(-rc));
		goto out;
	}
	rc = write_all(fd, data, len);
	if (rc < 0) {
		nx_err_set(err, -rc, "cannot write %s: %s", tmp, strerror(-rc));
		goto out;
	}
	if (fsync(fd) < 0) {
		rc = -errno;
		nx_err_set(err, -rc, "cannot sync %s: %s", tmp, strerror(-rc));
		goto out;
	}
	rc = close(fd);
	fd = -1;
	if (rc < 0) {
		rc = -errno;
		nx_err_set(err, -rc, "cannot write %s: %s", tmp, strerror(-rc));
		goto out;
	}
	if (rename(tmp, path) < 0) {
		rc = -errno;
		nx_err_set(err, -rc, "cannot rename %s to %s: %s", tmp, path, strerror(-rc));
		goto out;
	}
	tmp[0] = '\0'; /* nothing to clean up any more */

	/* The rename is durable once the directory is. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = -errno;
		nx_err_set(err, -rc, "cannot open directory %s: %s", dir, strerror(-rc));
		goto out;
	}
	if (fsync(dfd) < 0 && errno != EINVAL) {
		rc = -errno;
		nx_err_set(err, -rc, "cannot sync directory %s: %s", dir, strerror(-rc));
	}
	close(dfd);
out:
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	return rc;
}

int nx_read_file(const char *path, size_t max, char **out, size_t *len, struct nx_err *err)
{
	char *buf = NULL;
	size_t n = 0;
	ssize_t r;
	int fd, rc;

	*out = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		return nx_err_set(err, -rc, "cannot open %s: %s", path, strerror(-rc));
	}
	buf = malloc(max + 1);
	if (!buf) {
		rc = nx_err_set(err, ENOMEM, "out of memory reading %s", path);
		goto out;
	}
	/* One byte past max tells a file that is too large from one that just fits. */
	while (n <= max) {
		r = read(fd, buf + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			nx_err_set(err, -rc, "cannot read %s: %s", path, strerror(-rc));
			goto out;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		rc = nx_err_set(err, EFBIG, "%s is larger than %zu bytes", path, max);
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}
