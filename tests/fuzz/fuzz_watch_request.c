/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for the watch stream request body (nexsrv_watch_request_parse in
 * nexsrv/nexsrv_watch.h): the input is read as JSON and checked as the body of
 * POST /api/vpcs/{id}/events and of POST /api/events.  Every rejection must name a field
 * and say why; what is accepted must hold together: one to four entries of distinct
 * kinds, revisions not negative, prefixes only on device-metadata, non-empty and at most
 * NEXSRV_WATCH_MAX_PREFIXES of them, a canonical lower-case VPC id (always one for
 * /api/events).  An accepted request must make a filter that matches exactly its kinds,
 * and lines that are single lines.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "nexsrv/nexsrv_watch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_line(const char *line, size_t len)
{
	if (!line || len == 0 || line[len - 1] != '\n' || strlen(line) != len ||
	    memchr(line, '\n', len - 1))
		abort();
}

static void check(struct json_object *body, bool global)
{
	struct nexsrv_input_error e = { "", { "" } };
	struct nexsrv_watch_request r;
	struct nexsrv_watch_filter f;
	unsigned kinds = 0;
	char desc[160], *line = NULL;
	size_t len = 0;
	int rc = nexsrv_watch_request_parse(body, global, &r, &e);

	if (rc < 0) {
		if ((rc != -EINVAL && rc != -ENOENT) || !e.field[0] || !e.err.msg[0] || r.n)
			abort();
		return;
	}
	if (rc != 0 || r.n < 1 || r.n > NEXSRV_WATCH_KINDS)
		abort();
	if (global && !nexsrv_uuid_valid(r.vpc_id))
		abort();
	for (size_t i = 0; r.vpc_id[i]; i++)
		if (r.vpc_id[i] >= 'A' && r.vpc_id[i] <= 'F')
			abort();
	for (size_t i = 0; i < r.n; i++) {
		const struct nexsrv_watch_spec *s = &r.spec[i];

		if ((unsigned)s->kind >= NEXSRV_WATCH_KINDS || (kinds & (1u << s->kind)) ||
		    s->gt_revision < 0 || s->n_prefixes > NEXSRV_WATCH_MAX_PREFIXES ||
		    (s->n_prefixes && s->kind != NEXSRV_WATCH_DEVICE_METADATA))
			abort();
		kinds |= 1u << s->kind;
		for (size_t p = 0; p < s->n_prefixes; p++)
			if (!s->prefixes[p] || !s->prefixes[p][0])
				abort();
		if (nexsrv_watch_line(s->kind, false, true, NULL, &line, &len) < 0)
			abort();
		check_line(line, len);
		free(line);
	}
	if (nexsrv_watch_filter_init(&f, &r) < 0)
		abort();
	if (f.kinds != kinds)
		abort();
	for (int k = 0; k < NEXSRV_WATCH_KINDS; k++)
		if (k != NEXSRV_WATCH_DEVICE_METADATA &&
		    nexsrv_watch_filter_match(&f, k, NULL) != !!(kinds & (1u << k)))
			abort();
	for (size_t i = 0; i < r.n; i++)
		for (size_t p = 0; p < r.spec[i].n_prefixes; p++)
			if (!nexsrv_watch_filter_match(&f, NEXSRV_WATCH_DEVICE_METADATA,
						       r.spec[i].prefixes[p]))
				abort();
	nexsrv_watch_filter_describe(&f, desc, sizeof(desc));
	if (strlen(desc) >= sizeof(desc))
		abort();
	nexsrv_watch_filter_fini(&f);
	/* The request as a value of a line stays one line. */
	if (nexsrv_watch_line(NEXSRV_WATCH_DEVICE, true, false, body, &line, &len) < 0)
		abort();
	check_line(line, len);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *body;

	body = nx_json_parse((const char *)data, size, NX_JSON_DEFAULT_DEPTH, NULL);
	if (!body)
		return 0;
	check(body, false);
	check(body, true);
	json_object_put(body);
	return 0;
}
