/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Who is calling (see nexsrv_auth.h): the HTTP auth hook, the tenancy predicates every
 * handler builds its SQL from, and the first-call provisioning of a user.
 *
 * A person's first call creates, in one transaction, the user, their default organization
 * (id = user id, named after the user, owned by them), its default VPC (id = user id, the
 * shared default CIDRs) and that VPC's default security group (id = VPC id, no rules: allow
 * all), as the original service does; a pending invitation sent to their verified email
 * address becomes theirs.  Concurrent first calls of the same person must not create two
 * users nor fail: the user row is inserted with ON CONFLICT DO NOTHING, which waits for a
 * concurrent insert of the same subject to commit, and a caller that inserted nothing reads
 * the row the other one made (its organization, VPC and group committed with it).
 *
 * Registration keys and device tokens are looked up by the SHA-256 of their text, the only
 * form the database holds.
 *
 * OIDC subjects beginning with NEXSRV_RESERVED_SUBJECT_PREFIX belong to the service's own
 * built-in users (the operator of the bootstrap commands is "nexodus:operator"): a token
 * naming one is refused before anything is read or written, whatever the provider says, so
 * that nobody can become a built-in user by getting such a subject from the provider.
 *
 * Every caller the hook lets through is named for the rate limit's caller tier
 * (nexsrv_http.h, "Rate limits") by its verified identity: its user id, registration key
 * id or device id, never the token it presented.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "lib/base64.h"
#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_auth.h"
#include "nexsrv/nexsrv_db.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_oidc.h"
#include "nexsrv/nexsrv_token.h"

NX_DEBUG_DECLARE(nexsrv_auth);

/* Subjects of the built-in users (nexsrv_vty_admin.c creates "nexodus:operator"). */
#define NEXSRV_RESERVED_SUBJECT_PREFIX "nexodus:"

/* The default VPC's address ranges, shared by every default VPC (as in the original). */
#define DEFAULT_IPV4_CIDR "100.64.0.0/10"
#define DEFAULT_IPV6_CIDR "200::/64"

/* What a person's token says about them, as stored in users. */
struct profile {
	const char *sub;
	char username[256];
	char full_name[512];
	char picture[1024];
	char email[320]; /* lower case; "" unless the provider verified it */
};

const struct nexsrv_caller *nexsrv_caller(const struct nexsrv_req *req)
{
	return nexsrv_req_caller(req);
}

/* 401 for a token that was presented but is not accepted; the reason is the client's to
 * know (an expired token, a spent key), the token itself is never repeated. */
static int refuse(struct nexsrv_req *req, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int refuse(struct nexsrv_req *req, const char *fmt, ...)
{
	char why[NX_ERR_MAX + 64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	nx_debug(&dbg_nexsrv_auth, "%s %s from %s: refused: %s", nexsrv_req_method(req),
		 nexsrv_req_path(req), nexsrv_req_client(req), why);
	nexsrv_reply_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
	nexsrv_reply_error(req, 401, "unauthorized: %s", why);
	return -EACCES;
}

/* 503: the caller may be fine, but what is needed to tell is not there. */
static int unavailable(struct nexsrv_req *req, const char *what, const struct nx_err *err)
{
	nx_warn("%s %s: %s: %s", nexsrv_req_method(req), nexsrv_req_path(req), what,
		err && err->msg[0] ? err->msg : "unavailable");
	nexsrv_reply_error(req, 503, "%s", what);
	return -EAGAIN;
}

static void copy_text(char *dst, size_t size, const PGresult *res, int row, int col)
{
	const char *v = nexsrv_db_text(res, row, col);

	nx_strlcpy(dst, v ? v : "", size);
}

/* --- registration keys and device tokens ------------------------------------------------- */

static int lookup_reg_key(PGconn *conn, const char *hash, struct nexsrv_caller *c, const char **why,
			  struct nx_err *err)
{
	static const char sql[] =
		"SELECT id, owner_id, vpc_id, organization_id, security_group_id, single_use,"
		" expires_at IS NOT NULL AND expires_at <= now(), used_at IS NOT NULL"
		" FROM reg_keys WHERE token_hash = $1";
	const char *params[] = { hash };
	PGresult *res = NULL;
	bool single_use = false, expired = false, used = false;
	int rc = nexsrv_db_exec(conn, sql, 1, params, &res, err);

	if (rc < 0)
		return rc;
	if (rc == 0) {
		*why = "unknown registration key";
		goto out;
	}
	if (nexsrv_db_get_bool(res, 0, 5, &single_use, err) < 0 ||
	    nexsrv_db_get_bool(res, 0, 6, &expired, err) < 0 ||
	    nexsrv_db_get_bool(res, 0, 7, &used, err) < 0) {
		rc = -EIO;
		goto out;
	}
	if (expired) {
		*why = "registration key expired";
		goto out;
	}
	if (single_use && used) {
		*why = "single-use registration key already used";
		goto out;
	}
	c->kind = NEXSRV_CALLER_REG_KEY;
	copy_text(c->reg_key_id, sizeof(c->reg_key_id), res, 0, 0);
	copy_text(c->user_id, sizeof(c->user_id), res, 0, 1);
	copy_text(c->vpc_id, sizeof(c->vpc_id), res, 0, 2);
	copy_text(c->organization_id, sizeof(c->organization_id), res, 0, 3);
	copy_text(c->security_group_id, sizeof(c->security_group_id), res, 0, 4);
	c->single_use = single_use;
out:
	PQclear(res);
	return rc;
}

static int lookup_device(PGconn *conn, const char *hash, struct nexsrv_caller *c, const char **why,
			 struct nx_err *err)
{
	static const char sql[] = "SELECT id, owner_id, vpc_id, organization_id FROM devices"
				  " WHERE bearer_token_hash = $1";
	const char *params[] = { hash };
	PGresult *res = NULL;
	int rc = nexsrv_db_exec(conn, sql, 1, params, &res, err);

	if (rc < 0)
		return rc;
	if (rc == 0) {
		*why = "unknown device token";
	} else {
		c->kind = NEXSRV_CALLER_DEVICE;
		copy_text(c->device_id, sizeof(c->device_id), res, 0, 0);
		copy_text(c->user_id, sizeof(c->user_id), res, 0, 1);
		copy_text(c->vpc_id, sizeof(c->vpc_id), res, 0, 2);
		copy_text(c->organization_id, sizeof(c->organization_id), res, 0, 3);
	}
	PQclear(res);
	return rc;
}

static int auth_opaque(struct nexsrv_req *req, struct nexsrv *srv, const char *bearer,
		       enum nexsrv_token_kind kind, struct nexsrv_caller *c)
{
	uint8_t hash[NEXSRV_TOKEN_HASH_LEN];
	char hash_param[NEXSRV_DB_BYTEA_PARAM_SIZE(NEXSRV_TOKEN_HASH_LEN)];
	struct nx_err err = { "" };
	const char *why = NULL;
	PGconn *conn;
	int rc;

	if (nexsrv_token_hash(bearer, hash, &err) < 0)
		return refuse(req, "%s: %s", nexsrv_token_kind_name(kind), err.msg);
	nexsrv_db_bytea_param(hash, sizeof(hash), hash_param, sizeof(hash_param));
	if (!srv->db)
		return unavailable(req, "database unavailable", NULL);
	conn = nexsrv_db_acquire(srv->db, NEXSRV_DB_ACQUIRE_TIMEOUT_MS, &err);
	if (!conn)
		return unavailable(req, "database unavailable", &err);
	if (kind == NEXSRV_TOKEN_REG_KEY)
		rc = lookup_reg_key(conn, hash_param, c, &why, &err);
	else
		rc = lookup_device(conn, hash_param, c, &why, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc < 0)
		return unavailable(req, "database unavailable", &err);
	if (why)
		return refuse(req, "%s", why);
	return 0;
}

/* --- people ---------------------------------------------------------------------------- */

/* The claims nexsrv_oidc does not extract (email_verified, picture, given and family
 * name), read from the payload of the token it has just validated. */
static void extra_claims(const char *token, const struct nexsrv_claims *claims, struct profile *p)
{
	const char *a = strchr(token, '.'), *b = a ? strchr(a + 1, '.') : NULL;
	struct json_object *obj = NULL;
	const char *s, *given = "", *family = "";
	bool verified = false;
	uint8_t *buf = NULL;
	size_t len;
	int n;

	if (!b)
		return;
	len = (size_t)(b - (a + 1));
	buf = malloc(nx_base64_decoded_maxlen(len) + 1);
	if (!buf)
		return;
	n = nx_base64url_decode(a + 1, len, buf, nx_base64_decoded_maxlen(len) + 1, NULL);
	if (n > 0)
		obj = nx_json_parse((const char *)buf, (size_t)n, NX_JSON_DEFAULT_DEPTH, NULL);
	free(buf);
	if (!obj)
		return;
	if (nx_json_get_bool(obj, "email_verified", &verified, NULL) < 0 &&
	    nx_json_get_string(obj, "email_verified", &s, NULL) == 0)
		verified = strcmp(s, "true") == 0;
	if (verified && claims->email[0]) {
		char *e;

		nx_strlcpy(p->email, claims->email, sizeof(p->email));
		e = nx_str_trim(p->email);
		for (; *e; e++)
			*e = (char)tolower((unsigned char)*e);
	}
	if (nx_json_get_string(obj, "picture", &s, NULL) == 0 &&
	    nx_strlcpy(p->picture, s, sizeof(p->picture)) >= sizeof(p->picture))
		p->picture[0] = '\0';
	if (!p->full_name[0]) {
		nx_json_get_string(obj, "given_name", &given, NULL);
		nx_json_get_string(obj, "family_name", &family, NULL);
		snprintf(p->full_name, sizeof(p->full_name), "%s%s%s", given,
			 given[0] && family[0] ? " " : "", family);
	}
	json_object_put(obj);
}

static void profile_from_claims(const char *token, const struct nexsrv_claims *claims,
				struct profile *p)
{
	memset(p, 0, sizeof(*p));
	p->sub = claims->sub;
	nx_strlcpy(p->username,
		   claims->preferred_username[0] ? claims->preferred_username : claims->sub,
		   sizeof(p->username));
	nx_strlcpy(p->full_name, claims->name, sizeof(p->full_name));
	extra_claims(token, claims, p);
}

struct provision {
	const struct profile *p;
	char id[NEXSRV_UUID_LEN];
	bool created;
};

/* The default organization: named after the user, or, when that name is taken, with a
 * suffix made of the user id (the whole id at last, which nobody else can hold). */
static int create_default_org(PGconn *conn, const struct provision *pv, struct nx_err *err)
{
	static const char sql[] = "INSERT INTO organizations (id, name, description, owner_id)"
				  " VALUES ($1, $2, $3, $1) ON CONFLICT (name) DO NOTHING";
	char name[sizeof(pv->p->username) + NEXSRV_UUID_LEN + 1];
	char description[sizeof(pv->p->username) + 32];
	const char *params[] = { pv->id, name, description };
	int rc = 0;

	snprintf(description, sizeof(description), "%s's organization", pv->p->username);
	for (int attempt = 0; attempt < 3 && rc == 0; attempt++) {
		if (attempt == 0)
			nx_strlcpy(name, pv->p->username, sizeof(name));
		else
			snprintf(name, sizeof(name), "%s-%.*s", pv->p->username,
				 attempt == 1 ? 8 : NEXSRV_UUID_LEN, pv->id);
		rc = nexsrv_db_exec(conn, sql, 3, params, NULL, err);
	}
	if (rc == 0)
		return nx_err_set(err, EEXIST, "no free organization name for user %s", pv->id);
	return rc < 0 ? rc : 0;
}

static int claim_invitations(PGconn *conn, const char *user_id, const char *email,
			     struct nx_err *err)
{
	static const char sql[] = "UPDATE invitations SET user_id = $1"
				  " WHERE user_id IS NULL AND lower(email) = lower($2)";
	const char *params[] = { user_id, email };

	if (!email[0])
		return 0;
	return nexsrv_db_exec(conn, sql, 2, params, NULL, err);
}

static int provision_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	static const char insert_user[] =
		"INSERT INTO users (idp_subject, username, full_name, picture, email,"
		" email_verified) VALUES ($1, $2, $3, $4, NULLIF($5, ''), $5 <> '')"
		" ON CONFLICT (idp_subject) DO NOTHING RETURNING id";
	static const char select_user[] = "SELECT id FROM users WHERE idp_subject = $1";
	static const char insert_membership[] =
		"INSERT INTO memberships (organization_id, user_id, roles)"
		" VALUES ($1, $1, '{owner}')";
	static const char insert_vpc[] =
		"INSERT INTO vpcs (id, organization_id, description, ipv4_cidr, ipv6_cidr,"
		" private_cidr) VALUES ($1, $1, 'default vpc', '" DEFAULT_IPV4_CIDR
		"', '" DEFAULT_IPV6_CIDR "', false)";
	static const char insert_group[] =
		"INSERT INTO security_groups (id, vpc_id, organization_id, description)"
		" VALUES ($1, $1, $1, 'default vpc security group')";
	struct provision *pv = arg;
	const struct profile *p = pv->p;
	const char *uparams[] = { p->sub, p->username, p->full_name, p->picture, p->email };
	const char *idparam[] = { pv->id };
	PGresult *res = NULL;
	int rc;

	pv->created = false;
	rc = nexsrv_db_exec(conn, insert_user, 5, uparams, &res, err);
	if (rc == 0) {
		/* Someone else's first call won: theirs is committed, with everything. */
		PQclear(res);
		rc = nexsrv_db_exec(conn, select_user, 1, uparams, &res, err);
		if (rc == 0) /* and deleted since: start over */
			rc = nx_err_set(err, EAGAIN, "user %s vanished while being created",
					p->sub);
		if (rc > 0)
			copy_text(pv->id, sizeof(pv->id), res, 0, 0);
		PQclear(res);
		return rc < 0 ? rc : 0;
	}
	if (rc < 0)
		return rc;
	copy_text(pv->id, sizeof(pv->id), res, 0, 0);
	PQclear(res);
	pv->created = true;
	rc = create_default_org(conn, pv, err);
	if (rc == 0)
		rc = nexsrv_db_exec(conn, insert_membership, 1, idparam, NULL, err);
	if (rc >= 0)
		rc = nexsrv_db_exec(conn, insert_vpc, 1, idparam, NULL, err);
	if (rc >= 0)
		rc = nexsrv_db_exec(conn, insert_group, 1, idparam, NULL, err);
	if (rc >= 0)
		rc = claim_invitations(conn, pv->id, p->email, err);
	return rc < 0 ? rc : 0;
}

struct profile_update {
	const struct profile *p;
	const char *id;
	bool email_changed;
};

static int update_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	static const char sql[] =
		"UPDATE users SET username = $2, full_name = $3, picture = $4,"
		" email = NULLIF($5, ''), email_verified = $5 <> '' WHERE id = $1";
	struct profile_update *u = arg;
	const char *params[] = { u->id, u->p->username, u->p->full_name, u->p->picture,
				 u->p->email };
	int rc = nexsrv_db_exec(conn, sql, 5, params, NULL, err);

	if (rc >= 0 && u->email_changed)
		rc = claim_invitations(conn, u->id, u->p->email, err);
	return rc < 0 ? rc : 0;
}

/* The user of profile p, created with their defaults on first sight, kept up to date with
 * what the provider says about them afterwards. */
static int user_ensure(PGconn *conn, const struct profile *p, char id[NEXSRV_UUID_LEN],
		       struct nx_err *err)
{
	static const char sql[] = "SELECT id, username, full_name, picture, coalesce(email, '')"
				  " FROM users WHERE idp_subject = $1";
	const char *params[] = { p->sub };
	struct provision pv = { .p = p };
	PGresult *res = NULL;
	int rc = nexsrv_db_exec(conn, sql, 1, params, &res, err);

	if (rc < 0)
		return rc;
	if (rc > 0) {
		struct profile_update u = { .p = p, .id = id };
		const char *email = nexsrv_db_text(res, 0, 4);

		copy_text(id, NEXSRV_UUID_LEN, res, 0, 0);
		u.email_changed = strcmp(email, p->email) != 0;
		if (strcmp(nexsrv_db_text(res, 0, 1), p->username) != 0 ||
		    strcmp(nexsrv_db_text(res, 0, 2), p->full_name) != 0 ||
		    strcmp(nexsrv_db_text(res, 0, 3), p->picture) != 0 || u.email_changed)
			rc = nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, update_txn, &u, err);
		PQclear(res);
		return rc < 0 ? rc : 0;
	}
	PQclear(res);
	rc = nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, provision_txn, &pv, err);
	if (rc < 0)
		return rc;
	nx_strlcpy(id, pv.id, NEXSRV_UUID_LEN);
	if (pv.created)
		nx_info("new user %s (%s): default organization, VPC and security group created",
			pv.id, p->username);
	return 0;
}

static int auth_user(struct nexsrv_req *req, struct nexsrv *srv, const char *bearer,
		     struct nexsrv_caller *c)
{
	struct nexsrv_claims claims;
	struct profile *p = NULL;
	struct nx_err err = { "" };
	PGconn *conn;
	int rc;

	if (!srv->oidc)
		return refuse(req, "user tokens are not accepted: no OIDC provider is configured");
	rc = nexsrv_oidc_validate(srv->oidc, bearer, &claims, &err);
	if (rc == -NEXSRV_OIDC_EREJECTED)
		return refuse(req, "%s", err.msg);
	if (rc == -NEXSRV_OIDC_EUNAVAILABLE)
		return unavailable(req, "the OIDC provider is unavailable", &err);
	if (rc < 0) {
		nexsrv_reply_error(req, 500, "internal server error");
		return rc;
	}
	if (strncmp(claims.sub, NEXSRV_RESERVED_SUBJECT_PREFIX,
		    strlen(NEXSRV_RESERVED_SUBJECT_PREFIX)) == 0) {
		char shown[64];

		return refuse(req,
			      "subject \"%s\" is reserved for built-in users: subjects beginning "
			      "with \"" NEXSRV_RESERVED_SUBJECT_PREFIX
			      "\" are not accepted from the OIDC provider",
			      nx_str_printable(shown, sizeof(shown), claims.sub));
	}
	p = malloc(sizeof(*p));
	if (!p) {
		nexsrv_reply_error(req, 500, "internal server error");
		return -ENOMEM;
	}
	profile_from_claims(bearer, &claims, p);
	if (!srv->db) {
		rc = unavailable(req, "database unavailable", NULL);
		goto out;
	}
	conn = nexsrv_db_acquire(srv->db, NEXSRV_DB_ACQUIRE_TIMEOUT_MS, &err);
	if (!conn) {
		rc = unavailable(req, "database unavailable", &err);
		goto out;
	}
	rc = user_ensure(conn, p, c->user_id, &err);
	nexsrv_db_release(srv->db, conn);
	if (rc < 0) {
		if (rc == -ENOTCONN || rc == -ETIMEDOUT || rc == -EAGAIN || rc == -EBUSY) {
			rc = unavailable(req, "database unavailable", &err);
		} else {
			nx_err("user %s: %s", claims.sub, err.msg);
			nexsrv_reply_error(req, 500, "internal server error");
		}
		goto out;
	}
	c->kind = NEXSRV_CALLER_USER;
	nx_strlcpy(c->username, p->username, sizeof(c->username));
out:
	free(p);
	return rc;
}

/* The caller tier's key: the kind and the verified id ("u<user id>", "k<registration key
 * id>", "d<device id>"). */
static int set_rate_key(struct nexsrv_req *req, const struct nexsrv_caller *c)
{
	char key[1 + NEXSRV_UUID_LEN];
	const char *id;
	char kind;

	switch (c->kind) {
	case NEXSRV_CALLER_USER:
		kind = 'u';
		id = c->user_id;
		break;
	case NEXSRV_CALLER_REG_KEY:
		kind = 'k';
		id = c->reg_key_id;
		break;
	case NEXSRV_CALLER_DEVICE:
		kind = 'd';
		id = c->device_id;
		break;
	default:
		return -EINVAL;
	}
	if (!id[0])
		return -EINVAL;
	snprintf(key, sizeof(key), "%c%s", kind, id);
	return nexsrv_req_set_caller_key(req, key, strlen(key));
}

int nexsrv_auth_hook(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	const char *bearer = nexsrv_req_bearer(req);
	enum nexsrv_token_kind kind;
	struct nexsrv_caller *c;
	int rc;

	if (!bearer || !bearer[0])
		return -EACCES; /* the server's plain 401 */
	c = calloc(1, sizeof(*c));
	if (!c) {
		nexsrv_reply_error(req, 500, "internal server error");
		return -ENOMEM;
	}
	kind = nexsrv_token_kind_of(bearer);
	if (kind != NEXSRV_TOKEN_NONE)
		rc = auth_opaque(req, srv, bearer, kind, c);
	else
		rc = auth_user(req, srv, bearer, c);
	if (rc < 0) {
		free(c);
		return rc;
	}
	rc = set_rate_key(req, c);
	if (rc < 0) { /* a lookup that filled no id: an invariant broken, not the client's fault */
		nx_err("%s %s: caller without an id", nexsrv_req_method(req), nexsrv_req_path(req));
		free(c);
		nexsrv_reply_error(req, 500, "internal server error");
		return rc;
	}
	nexsrv_req_set_caller(req, c, free);
	return 0;
}

/* --- tenancy --------------------------------------------------------------------------- */

/* Appends value to params and checks what snprintf wrote (n) into size bytes. */
static int scope_done(int n, size_t size, const char **params, int *nparams, const char *value)
{
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	params[(*nparams)++] = value;
	return 0;
}

int nexsrv_scope_org(const struct nexsrv_caller *c, const char *column, char *sql, size_t size,
		     const char **params, int *nparams)
{
	int n;

	if (c->kind == NEXSRV_CALLER_USER) {
		n = snprintf(sql, size,
			     "%s IN (SELECT nx_sm.organization_id FROM memberships nx_sm"
			     " WHERE nx_sm.user_id = $%d)",
			     column, *nparams + 1);
		return scope_done(n, size, params, nparams, c->user_id);
	}
	n = snprintf(sql, size, "%s = $%d", column, *nparams + 1);
	return scope_done(n, size, params, nparams, c->organization_id);
}

int nexsrv_scope_vpc(const struct nexsrv_caller *c, const char *column, char *sql, size_t size,
		     const char **params, int *nparams)
{
	int n;

	if (c->kind == NEXSRV_CALLER_USER) {
		n = snprintf(sql, size,
			     "%s IN (SELECT nx_sv.id FROM vpcs nx_sv JOIN memberships nx_sm"
			     " ON nx_sm.organization_id = nx_sv.organization_id"
			     " WHERE nx_sm.user_id = $%d)",
			     column, *nparams + 1);
		return scope_done(n, size, params, nparams, c->user_id);
	}
	n = snprintf(sql, size, "%s = $%d", column, *nparams + 1);
	return scope_done(n, size, params, nparams, c->vpc_id);
}

int nexsrv_caller_is_owner(PGconn *conn, const struct nexsrv_caller *c, const char *org_id,
			   bool *owner, struct nx_err *err)
{
	static const char sql[] = "SELECT 1 FROM memberships WHERE organization_id = $1"
				  " AND user_id = $2 AND 'owner' = ANY (roles)";
	const char *params[] = { org_id, c->user_id };
	int rc;

	*owner = false;
	if (c->kind != NEXSRV_CALLER_USER)
		return 0;
	rc = nexsrv_db_exec(conn, sql, 2, params, NULL, err);
	if (rc < 0)
		return rc;
	*owner = rc > 0;
	return 0;
}
