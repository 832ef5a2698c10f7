/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * List parameters as the original API takes them (react-admin style), turned into SQL:
 *
 *   sort=["hostname","ASC"]     ORDER BY, only on whitelisted fields
 *   filter={"hostname":"web"}   WHERE field = value (AND-ed), only on whitelisted fields
 *   range=[0,24]                OFFSET 0 LIMIT 25 (inclusive bounds)
 *
 * and the X-Total-Count header, counted with the same WHERE (so counts never include what
 * the caller cannot see).  A malformed parameter or an unknown field is a 400 with the
 * parameter named, never silently ignored.
 */
#ifndef NEXSRV_LIST_H
#define NEXSRV_LIST_H

#include <stddef.h>

#include "lib/errmsg.h"

struct nexsrv_req;

/* A field a list may be sorted or filtered by: its JSON name and its SQL expression. */
struct nexsrv_list_field {
	const char *name;   /* "hostname" */
	const char *column; /* "d.hostname" */
};

#define NEXSRV_LIST_MAX_FILTERS 8
#define NEXSRV_LIST_MAX_LIMIT	1000 /* one page at most; the default when range is absent */

struct nexsrv_list {
	char order_by[256]; /* "d.hostname ASC" or the default order */
	const char *filter_column[NEXSRV_LIST_MAX_FILTERS];
	char *filter_value[NEXSRV_LIST_MAX_FILTERS]; /* owned */
	int n_filters;
	long long offset;
	long long limit;
};

/* Parses sort/filter/range of req against fields (NULL-name terminated); default_order is
 * used when sort is absent.  0, or -EINVAL with err naming the parameter. */
int nexsrv_list_parse(struct nexsrv_req *req, const struct nexsrv_list_field *fields,
		      const char *default_order, struct nexsrv_list *list, struct nx_err *err);

/* Appends " AND col = $N" for each filter to where (N continuing from *nparams) and their
 * values to params. */
int nexsrv_list_where(const struct nexsrv_list *list, char *where, size_t size, const char **params,
		      int *nparams);

void nexsrv_list_fini(struct nexsrv_list *list);

#endif /* NEXSRV_LIST_H */
