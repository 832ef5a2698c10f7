/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Who is calling, and what they may reach.  The HTTP auth hook identifies the bearer:
 *
 *   "RK:..."  a registration key: reads its VPC, creates devices in it (a single-use key
 *             exactly one, under concurrency)
 *   "DT:..."  a device token: reads its VPC, updates only its own device, watches its VPC
 *   a JWT     a user signed in with the OIDC provider; created on first call with their
 *             default organization (id = user id), VPC (id = user id) and security group
 *             (id = VPC id), as the original service does
 *
 * Resource handlers then scope every read and write by the caller with the helpers below:
 * an object outside the caller's reach is "not found" (404), never "forbidden".
 */
#ifndef NEXSRV_AUTH_H
#define NEXSRV_AUTH_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "lib/errmsg.h"

struct nexsrv;
struct nexsrv_req;

#define NEXSRV_UUID_LEN 37 /* 36 + NUL */

enum nexsrv_caller_kind {
	NEXSRV_CALLER_USER,
	NEXSRV_CALLER_REG_KEY,
	NEXSRV_CALLER_DEVICE,
};

struct nexsrv_caller {
	enum nexsrv_caller_kind kind;
	/* USER: the user.  REG_KEY: the key's owner.  DEVICE: the device's owner. */
	char user_id[NEXSRV_UUID_LEN];
	/* REG_KEY, DEVICE: the one VPC (and its organization) they may read. */
	char vpc_id[NEXSRV_UUID_LEN];
	char organization_id[NEXSRV_UUID_LEN];
	char reg_key_id[NEXSRV_UUID_LEN];	 /* REG_KEY */
	char device_id[NEXSRV_UUID_LEN];	 /* DEVICE */
	char security_group_id[NEXSRV_UUID_LEN]; /* REG_KEY: the group its devices get, or "" */
	bool single_use;			 /* REG_KEY */
	char username[256];			 /* USER: preferred_username (or sub) */
};

/* The HTTP auth hook (nexsrv_http_set_auth_hook, arg = struct nexsrv *): 401 for a missing,
 * malformed, unknown, expired or spent token; 503 when the database or the OIDC provider
 * does not answer (with a message saying which). */
int nexsrv_auth_hook(struct nexsrv_req *req, void *arg);

/* The caller of a request that passed the hook. */
const struct nexsrv_caller *nexsrv_caller(const struct nexsrv_req *req);

/*
 * Tenancy predicates, evaluated in SQL so that lists, counts and single reads use the same
 * rule.  Each returns a SQL boolean expression over the given column, with the caller's ids
 * as literal parameters appended to params (the caller passes its own array and count; at
 * most 2 parameters are added).  For a USER: the organizations they are a member of.  For a
 * REG_KEY or DEVICE: exactly their VPC / organization.
 *
 *   nexsrv_scope_org(c, "v.organization_id", ...)  -> rows of organizations the caller reaches
 *   nexsrv_scope_vpc(c, "d.vpc_id", ...)           -> rows of VPCs the caller reaches
 */
int nexsrv_scope_org(const struct nexsrv_caller *c, const char *column, char *sql, size_t size,
		     const char **params, int *nparams);
int nexsrv_scope_vpc(const struct nexsrv_caller *c, const char *column, char *sql, size_t size,
		     const char **params, int *nparams);

/* True when a USER caller owns the organization (role owner). */
int nexsrv_caller_is_owner(PGconn *conn, const struct nexsrv_caller *c, const char *org_id,
			   bool *owner, struct nx_err *err);

#endif /* NEXSRV_AUTH_H */
