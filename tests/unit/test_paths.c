/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for lib/paths: pathspace names, the default file locations with and without a
 * pathspace, buffers too small for them, mkdir -p, and atomic file replacement (content,
 * mode, no temp file left behind, failures reported with the path).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lib/paths.h"

#if !defined(SYSCONFDIR) || !defined(LOCALSTATEDIR) || !defined(RUNSTATEDIR)
#error "the build passes configure's directories (tests/subdir.am)"
#endif

struct fixture {
	char dir[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/nx-test-paths.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

/* Removes the test directory tree (two levels are enough here). */
static void rm_tree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;

	if (lstat(path, &st) < 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		unlink(path);
		return;
	}
	d = opendir(path);
	if (d) {
		while ((de = readdir(d)) != NULL) {
			char sub[PATH_MAX];

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
			rm_tree(sub);
		}
		closedir(d);
	}
	rmdir(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	rm_tree(f->dir);
	free(f);
	return 0;
}

static void test_pathspace_check(void **state)
{
	struct nx_err err;
	char long33[34];

	(void)state;
	assert_int_equal(nx_pathspace_check("lab1", NULL), 0);
	assert_int_equal(nx_pathspace_check("A-b_9", NULL), 0);
	memset(long33, 'a', 32);
	long33[32] = '\0';
	assert_int_equal(nx_pathspace_check(long33, NULL), 0);

	long33[32] = 'a';
	long33[33] = '\0';
	err.msg[0] = '\0';
	assert_int_equal(nx_pathspace_check(long33, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "longer than 32"));

	err.msg[0] = '\0';
	assert_int_equal(nx_pathspace_check("", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "empty"));

	err.msg[0] = '\0';
	assert_int_equal(nx_pathspace_check("../etc", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "\"../etc\""));

	assert_int_equal(nx_pathspace_check("a/b", NULL), -EINVAL);
	assert_int_equal(nx_pathspace_check("a b", NULL), -EINVAL);
	assert_int_equal(nx_pathspace_check(".", NULL), -EINVAL);
	assert_int_equal(nx_pathspace_check("caf\xc3\xa9", NULL), -EINVAL);
	assert_int_equal(nx_pathspace_check(NULL, NULL), -EINVAL);
}

static void test_default_paths(void **state)
{
	char buf[PATH_MAX];

	(void)state;
	assert_int_equal(nx_path_config(buf, sizeof(buf), "nexd", NULL), 0);
	assert_string_equal(buf, SYSCONFDIR "/nexodus/nexd.conf");
	assert_int_equal(nx_path_config(buf, sizeof(buf), "nexsrv", ""), 0);
	assert_string_equal(buf, SYSCONFDIR "/nexodus/nexsrv.conf");
	assert_int_equal(nx_path_state_dir(buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, LOCALSTATEDIR "/lib/nexodus");
	assert_int_equal(nx_path_run_dir(buf, sizeof(buf), NULL), 0);
	assert_string_equal(buf, RUNSTATEDIR "/nexodus");
	assert_int_equal(nx_path_vty(buf, sizeof(buf), "nexd", NULL), 0);
	assert_string_equal(buf, RUNSTATEDIR "/nexodus/nexd.vty");
	assert_int_equal(nx_path_pid(buf, sizeof(buf), "nexsrv", NULL), 0);
	assert_string_equal(buf, RUNSTATEDIR "/nexodus/nexsrv.pid");
}

static void test_pathspace_paths(void **state)
{
	char buf[PATH_MAX];

	(void)state;
	assert_int_equal(nx_path_config(buf, sizeof(buf), "nexd", "lab1"), 0);
	assert_string_equal(buf, SYSCONFDIR "/nexodus/lab1/nexd.conf");
	assert_int_equal(nx_path_state_dir(buf, sizeof(buf), "lab1"), 0);
	assert_string_equal(buf, LOCALSTATEDIR "/lib/nexodus/lab1");
	assert_int_equal(nx_path_run_dir(buf, sizeof(buf), "lab1"), 0);
	assert_string_equal(buf, RUNSTATEDIR "/nexodus/lab1");
	assert_int_equal(nx_path_vty(buf, sizeof(buf), "nexd", "lab1"), 0);
	assert_string_equal(buf, RUNSTATEDIR "/nexodus/lab1/nexd.vty");
	assert_int_equal(nx_path_pid(buf, sizeof(buf), "nexd", "lab1"), 0);
	assert_string_equal(buf, RUNSTATEDIR "/nexodus/lab1/nexd.pid");

	/* a name that could escape the directory is never used */
	assert_int_equal(nx_path_vty(buf, sizeof(buf), "nexd", "../x"), -EINVAL);
	assert_string_equal(buf, "");
}

static void test_paths_too_long(void **state)
{
	char small[8];
	char exact[PATH_MAX];
	size_t need;

	(void)state;
	assert_int_equal(nx_path_vty(small, sizeof(small), "nexd", NULL), -ENAMETOOLONG);
	assert_string_equal(small, "");
	assert_int_equal(nx_path_state_dir(small, sizeof(small), "lab1"), -ENAMETOOLONG);

	/* exactly enough room works, one byte less does not */
	need = strlen(RUNSTATEDIR "/nexodus/nexd.pid") + 1;
	assert_true(need <= sizeof(exact));
	assert_int_equal(nx_path_pid(exact, need, "nexd", NULL), 0);
	assert_int_equal(nx_path_pid(exact, need - 1, "nexd", NULL), -ENAMETOOLONG);
}

static void test_mkdir_parents(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	char dir[PATH_MAX];
	struct stat st;
	struct nx_err err;

	/* the directories of a file */
	snprintf(path, sizeof(path), "%s/a/b/c/file.conf", f->dir);
	assert_int_equal(nx_mkdir_parents(path, 0750, 0, NULL), 0);
	snprintf(dir, sizeof(dir), "%s/a/b/c", f->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(dir, sizeof(dir), "%s/a/b/c/file.conf", f->dir);
	assert_int_equal(stat(dir, &st), -1);

	/* again: existing directories are fine */
	assert_int_equal(nx_mkdir_parents(path, 0750, 0, NULL), 0);

	/* the directory itself, with a trailing slash and a doubled one */
	snprintf(path, sizeof(path), "%s/x//y/", f->dir);
	assert_int_equal(nx_mkdir_parents(path, 0700, 1, NULL), 0);
	snprintf(dir, sizeof(dir), "%s/x/y", f->dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777 & ~0700, 0);

	/* a file in the way */
	snprintf(path, sizeof(path), "%s/a/b/c/plain", f->dir);
	assert_int_equal(nx_write_file_atomic(path, "x", 1, 0600, NULL), 0);
	snprintf(path, sizeof(path), "%s/a/b/c/plain/sub/file", f->dir);
	err.msg[0] = '\0';
	assert_int_equal(nx_mkdir_parents(path, 0700, 0, &err), -ENOTDIR);
	assert_non_null(strstr(err.msg, "plain"));

	/* nothing to do */
	assert_int_equal(nx_mkdir_parents("file-here", 0700, 0, NULL), 0);
	assert_int_equal(nx_mkdir_parents("/", 0700, 1, NULL), 0);
	err.msg[0] = '\0';
	assert_int_equal(nx_mkdir_parents("", 0700, 1, &err), -EINVAL);
	assert_true(err.msg[0] != '\0');
}

static void read_back(const char *path, char *buf, size_t size)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, size - 1, fp);
	buf[n] = '\0';
	fclose(fp);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_write_file_atomic(void **state)
{
	struct fixture *f = *state;
	char path[PATH_MAX];
	char buf[64];
	struct stat st;
	struct nx_err err;

	snprintf(path, sizeof(path), "%s/nexd.conf", f->dir);
	assert_int_equal(nx_write_file_atomic(path, "first\n", 6, 0600, NULL), 0);
	read_back(path, buf, sizeof(buf));
	assert_string_equal(buf, "first\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* replaced whole, new mode, no temp file left */
	assert_int_equal(nx_write_file_atomic(path, "2nd", 3, 0644, NULL), 0);
	read_back(path, buf, sizeof(buf));
	assert_string_equal(buf, "2nd");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(count_entries(f->dir), 1);

	/* empty content */
	assert_int_equal(nx_write_file_atomic(path, "", 0, 0600, NULL), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 0);

	/* a directory that does not exist */
	snprintf(path, sizeof(path), "%s/missing/nexd.conf", f->dir);
	err.msg[0] = '\0';
	assert_int_equal(nx_write_file_atomic(path, "x", 1, 0600, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "nexd.conf"));

	/* the target is a directory: rename fails and the temp file is removed */
	snprintf(path, sizeof(path), "%s/adir", f->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	err.msg[0] = '\0';
	assert_true(nx_write_file_atomic(path, "x", 1, 0600, &err) < 0);
	assert_non_null(strstr(err.msg, "adir"));
	assert_int_equal(count_entries(f->dir), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pathspace_check),
		cmocka_unit_test(test_default_paths),
		cmocka_unit_test(test_pathspace_paths),
		cmocka_unit_test(test_paths_too_long),
		cmocka_unit_test_setup_teardown(test_mkdir_parents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_file_atomic, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
