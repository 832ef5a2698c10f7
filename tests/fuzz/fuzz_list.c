/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for the list parameters of the REST API (nexsrv_list_parse and
 * nexsrv_list_where): sort, filter and range come straight from any caller's query string
 * and decide the SQL text of a list.
 *
 * The input is up to three lines: the sort, filter and range values (a missing line is an
 * absent parameter).  Beyond "does not crash", it checks the contracts: a rejection names
 * its parameter and leaves nothing allocated; an accepted list orders by a known column
 * (or the default) in a known direction, filters known columns only, has a page of 1 to
 * NEXSRV_LIST_MAX_LIMIT rows at a non-negative offset, and its WHERE terms are exactly
 * " AND <column> = $N" with the values as parameters.  A broken contract aborts.
 *
 * nexsrv_list.c reads the request through nexsrv_req_query() only, which is defined here.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct nexsrv_req {
	const char *value[3]; /* sort, filter, range */
};

static const char *const names[] = { "sort", "filter", "range" };

const char *nexsrv_req_query(const struct nexsrv_req *req, const char *name)
{
	for (size_t i = 0; i < 3; i++)
		if (strcmp(name, names[i]) == 0)
			return req->value[i];
	return NULL;
}

static const struct nexsrv_list_field fields[] = {
	{ "id", "t.id" },	{ "name", "t.name" },	      { "hostname", "t.hostname" },
	{ "relay", "t.relay" }, { "revision", "t.revision" }, { NULL, NULL },
};

#define DEFAULT_ORDER "t.name ASC"

static int known_column(const char *col)
{
	for (size_t i = 0; fields[i].name; i++)
		if (strcmp(fields[i].column, col) == 0)
			return 1;
	return 0;
}

static void check_order(const char *order)
{
	const char *sp = strrchr(order, ' ');
	char col[64];

	if (strcmp(order, DEFAULT_ORDER) == 0)
		return;
	if (!sp || (strcmp(sp, " ASC") != 0 && strcmp(sp, " DESC") != 0) ||
	    (size_t)(sp - order) >= sizeof(col))
		abort();
	memcpy(col, order, (size_t)(sp - order));
	col[sp - order] = '\0';
	if (!known_column(col))
		abort();
}

static void check_where(const struct nexsrv_list *list)
{
	char where[1024] = "", expect[1024] = "";
	const char *params[NEXSRV_LIST_MAX_FILTERS];
	size_t len = 0;
	int n = 0;

	if (nexsrv_list_where(list, where, sizeof(where), params, &n) != 0 || n != list->n_filters)
		abort();
	for (int i = 0; i < list->n_filters; i++) {
		if (params[i] != list->filter_value[i])
			abort();
		len += (size_t)snprintf(expect + len, sizeof(expect) - len, " AND %s = $%d",
					list->filter_column[i], i + 1);
	}
	if (strcmp(where, expect) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nexsrv_req req = { { NULL, NULL, NULL } };
	struct nexsrv_list list;
	struct nx_err err;
	char *copy = malloc(size + 1), *p;
	int rc;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	/* A NUL ends the query values as it would end a decoded query parameter. */
	p = copy;
	for (size_t i = 0; i < 3 && p; i++) {
		char *nl = strchr(p, '\n');

		if (nl)
			*nl = '\0';
		req.value[i] = p;
		p = nl ? nl + 1 : NULL;
	}

	err.msg[0] = '\0';
	rc = nexsrv_list_parse(&req, fields, DEFAULT_ORDER, &list, &err);
	if (rc < 0) {
		size_t k;

		if (rc != -EINVAL && rc != -ENOMEM)
			abort();
		if (list.n_filters != 0)
			abort();
		for (k = 0; k < 3; k++) {
			size_t n = strlen(names[k]);

			if (strncmp(err.msg, names[k], n) == 0 && err.msg[n] == ':')
				break;
		}
		if (k == 3)
			abort();
	} else {
		if (rc != 0 || list.limit < 1 || list.limit > NEXSRV_LIST_MAX_LIMIT ||
		    list.offset < 0 || list.n_filters < 0 ||
		    list.n_filters > NEXSRV_LIST_MAX_FILTERS)
			abort();
		check_order(list.order_by);
		for (int i = 0; i < list.n_filters; i++)
			if (!known_column(list.filter_column[i]) || !list.filter_value[i])
				abort();
		check_where(&list);
	}
	nexsrv_list_fini(&list);
	free(copy);
	return 0;
}
