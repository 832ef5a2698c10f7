/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Corpus replayer for fuzz targets built without libFuzzer.
 *
 * Feeds every file named on the command line (a directory means every file in
 * it) to LLVMFuzzerTestOneInput, defaulting to the target's seed corpus, and
 * reports one TAP line per input so `make check` counts them.  A crash or
 * sanitizer report fails the run, as it would under libFuzzer.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (1u << 20)
#define REPLAY_MAX_FILES 4096

/* Reads a file into a buffer of exactly its size, so that ASan catches a
 * target reading one byte past its input. */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
	static uint8_t scratch[REPLAY_MAX_INPUT];
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	size_t n;

	if (!f)
		return -errno;
	n = fread(scratch, 1, sizeof(scratch), f);
	fclose(f);
	buf = malloc(n ? n : 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, scratch, n);
	*out = buf;
	*len = n;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects regular files: the path itself, or the sorted entries of a directory. */
static int collect(const char *path, char **files, size_t *nfiles)
{
	struct stat st;
	DIR *dir;
	struct dirent *de;
	size_t first = *nfiles;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode)) {
		if (*nfiles >= REPLAY_MAX_FILES)
			return -E2BIG;
		files[(*nfiles)++] = strdup(path);
		return 0;
	}
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((de = readdir(dir)) != NULL) {
		char full[4096];

		if (de->d_name[0] == '.')
			continue;
		snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
		if (stat(full, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (*nfiles >= REPLAY_MAX_FILES)
			break;
		files[(*nfiles)++] = strdup(full);
	}
	closedir(dir);
	qsort(files + first, *nfiles - first, sizeof(*files), cmp_str);
	return 0;
}

int main(int argc, char **argv)
{
	static char *files[REPLAY_MAX_FILES];
	size_t nfiles = 0;
	int i, rc, status = 0;

	if (argc < 2) {
		rc = collect(NX_FUZZ_CORPUS, files, &nfiles);
		if (rc < 0) {
			fprintf(stderr, "replay: %s: %s\n", NX_FUZZ_CORPUS, strerror(-rc));
			return 1;
		}
	}
	for (i = 1; i < argc; i++) {
		rc = collect(argv[i], files, &nfiles);
		if (rc < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(-rc));
			return 1;
		}
	}
	if (nfiles == 0) {
		fprintf(stderr, "replay: no inputs\n");
		return 1;
	}

	printf("1..%zu\n", nfiles);
	for (size_t k = 0; k < nfiles; k++) {
		uint8_t *data = NULL;
		size_t len = 0;

		rc = read_file(files[k], &data, &len);
		if (rc < 0) {
			printf("not ok %zu - %s: %s\n", k + 1, files[k], strerror(-rc));
			status = 1;
		} else {
			LLVMFuzzerTestOneInput(data, len);
			free(data);
			printf("ok %zu - %s\n", k + 1,
			       strrchr(files[k], '/') ? strrchr(files[k], '/') + 1 : files[k]);
		}
		fflush(stdout);
		free(files[k]);
	}
	return status;
}
