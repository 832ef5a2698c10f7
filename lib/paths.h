/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where a daemon keeps its files.  Pathspaces (-N NAME, as FRR's) let several instances run
 * on one host: every default path gains a NAME/ component.
 *
 *   config   /etc/nexodus[/NAME]/DAEMON.conf
 *   state    /var/lib/nexodus[/NAME]/               (nexd's keys, device token)
 *   runtime  /run/nexodus[/NAME]/DAEMON.vty, DAEMON.pid
 *
 * The prefixes follow configure's sysconfdir, localstatedir and runstatedir.
 */
#ifndef NX_PATHS_H
#define NX_PATHS_H

#include <stddef.h>

#include "lib/errmsg.h"

/* A pathspace name: 1-32 of [A-Za-z0-9_-].  -EINVAL with a message otherwise. */
int nx_pathspace_check(const char *name, struct nx_err *err);

/* Each returns 0, or -ENAMETOOLONG.  pathspace may be NULL (the default instance). */
int nx_path_config(char *buf, size_t size, const char *daemon, const char *pathspace);
int nx_path_state_dir(char *buf, size_t size, const char *pathspace);
int nx_path_run_dir(char *buf, size_t size, const char *pathspace);
int nx_path_vty(char *buf, size_t size, const char *daemon, const char *pathspace);
int nx_path_pid(char *buf, size_t size, const char *daemon, const char *pathspace);

/* mkdir -p for the directory part of `path` (or the whole path when dir_itself), with mode
 * for the directories it creates.  Existing directories are left as they are. */
int nx_mkdir_parents(const char *path, unsigned mode, int dir_itself, struct nx_err *err);

/* Writes `len` bytes to `path` atomically: a temp file in the same directory, fsync, rename,
 * fsync of the directory.  mode is the new file's (0600 for files holding secrets). */
int nx_write_file_atomic(const char *path, const void *data, size_t len, unsigned mode,
			 struct nx_err *err);

/* Reads a whole file of at most max bytes into a malloc'd, NUL-terminated *out (*len bytes).
 * -ENOENT when it does not exist (err says so), -EFBIG when larger than max. */
int nx_read_file(const char *path, size_t max, char **out, size_t *len, struct nx_err *err);

#endif /* NX_PATHS_H */
