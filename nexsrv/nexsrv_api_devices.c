/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Devices: the agents of a VPC, with their keys, endpoints, tunnel addresses and advertised
 * prefixes, and the metadata they publish to their peers.
 *
 *   GET    /api/devices                       a user's own devices; a device or registration
 *                                             key: the devices of its VPC
 *   POST   /api/devices                       enrolment (models.AddDevice) -> 201 models.Device
 *                                             with bearer_token "DT:..." (only here)
 *   GET    /api/devices/{id}
 *   PATCH  /api/devices/{id}                  models.UpdateDevice
 *   DELETE /api/devices/{id}                  200 with the device as it was
 *   GET    /api/devices/{id}/metadata         ?gt_revision, prefix, key
 *   DELETE /api/devices/{id}/metadata         all of it; 204
 *   GET    /api/devices/{id}/metadata/{key}
 *   PUT    /api/devices/{id}/metadata/{key}   the body is the value -> 200 models.DeviceMetadata
 *   DELETE /api/devices/{id}/metadata/{key}   204
 *
 * Enrolment is one transaction: the registration key is claimed first (a single-use key
 * with UPDATE ... WHERE used_at IS NULL, so of many concurrent enrolments exactly one
 * finds it unused: the row lock makes the others wait and then see it spent), then the VPC
 * row is locked: FOR SHARE by an enrolment that advertises no prefix, so that those run
 * side by side, FOR NO KEY UPDATE by one that does and by advertised-prefix changes, which
 * thus take turns with every enrolment of the VPC (keeping the "no route over a tunnel
 * address" rule exact).  Then the device is inserted under an id chosen beforehand, its
 * INSERT taking its addresses for that id (nexsrv_ipam.h: the enrolments of a VPC take them
 * in turn, from there to their commit; the allocations' foreign key is checked at commit),
 * the key is marked with the device it made, and the transaction commits, all in one round
 * trip (nexsrv_db_pipeline()), so that the next enrolment does not wait for nexsrv.  The
 * statements before it go in one round trip too.  Any failure rolls all of it back.  Two
 * concurrent enrolments of the same public key both pass the check for it; the loser's
 * INSERT meets the unique constraint and the transaction is run again, which then answers
 * 409 with the winner.
 *
 * Prefixes several devices advertise have one active holder each (active_cidrs, elected by
 * the triggers of migrations/0003_active_prefixes.sql within the change's transaction, under
 * the VPC's writer lock, the advisory lock revisions are handed out under).  An election
 * updates other devices of the VPC, so a change takes that lock before it locks any device
 * row (vpc_writer_lock()), as the watch hub does when it marks devices online and offline;
 * a change that also locks the VPC row (advertised prefixes, see above) locks it first, as
 * enrolments do.  The response is read after the election.
 *
 * Who may do what: users who reach the VPC enrol devices into it and read its devices; the
 * device's owner and the organization's owners change and delete it.  A registration key
 * enrols into its own VPC only.  A device token reads its VPC and changes only its own
 * device (not its security group), and its own metadata.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonutil.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_api_net.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_ipam.h"
#include "nexsrv/nexsrv_token.h"
#include "nexsrv/nexsrv_watch.h"

static const struct nexsrv_list_field device_fields[] = {
	{ "id", "d.id" },
	{ "owner_id", "d.owner_id" },
	{ "vpc_id", "d.vpc_id" },
	{ "public_key", "d.public_key" },
	{ "hostname", "d.hostname" },
	{ "os", "d.os" },
	{ "relay", "d.relay" },
	{ "symmetric_nat", "d.symmetric_nat" },
	{ "security_group_id", "d.security_group_id" },
	{ "online", "d.online" },
	{ "revision", "d.revision" },
	{ NULL, NULL },
};

const struct nexsrv_api_list nexsrv_device_list = {
	.json = NEXSRV_DEVICE_JSON,
	.from = "devices d",
	.fields = device_fields,
	.default_order = "d.created_at",
	.tiebreak = "d.id",
};

static const struct nexsrv_list_field metadata_fields[] = {
	{ "device_id", "m.device_id" },
	{ "key", "m.key" },
	{ "revision", "m.revision" },
	{ NULL, NULL },
};

const struct nexsrv_api_list nexsrv_metadata_list = {
	.json = NEXSRV_METADATA_JSON,
	.from = "device_metadata m",
	.fields = metadata_fields,
	.default_order = "m.device_id, m.key",
	.tiebreak = "m.device_id, m.key",
};

#define METADATA_MAX_PREFIXES 16

static int devices_list(struct nexsrv_req *req, void *arg)
{
	struct nexsrv *srv = arg;
	const struct nexsrv_caller *c = nexsrv_api_caller(req);
	struct nexsrv_sql where;
	PGconn *conn;
	int rc;

	if (!c)
		return 0;
	conn = nexsrv_api_db_acquire(req, srv);
	if (!conn)
		return 0;
	nexsrv_sql_init(&where);
	nexsrv_sql_scope_vpc(&where, c, "d.vpc_id");
	if (c->kind == NEXSRV_CALLER_USER) { /* as the original: one's own devices */
		nexsrv_sql_add(&where, " AND d.owner_id = ");
		nexsrv_sql_param(&where, c->user_id);
	}
	rc = nexsrv_api_list(req, conn, &nexsrv_device_list, &where);
	nexsrv_db_release(srv->db, conn);
	return rc;
}

static int devices_get(struct nexsrv_req *req, void *arg)
{
	return nexsrv_api_get_in_vpc(
		req, arg, "SELECT " NEXSRV_DEVICE_JSON " FROM devices d WHERE d.id = ", "d.vpc_id",
		"device");
}

/* --- enrolment ----------------------------------------------------------------------------- */

struct device_create {
	struct nexsrv_api_reply reply;
	const struct nexsrv_caller *caller;
	struct nexsrv_device_input *in;
	char vpc_id[NEXSRV_INPUT_UUID_LEN];
	char *endpoints;	  /* JSON text */
	struct nx_sbuf advertise; /* PostgreSQL array literal */
	char grace_ms[16];	  /* the prefix failover grace, as text */
	char token[NEXSRV_TOKEN_BUFSIZE];
	char hash[NEXSRV_DB_BYTEA_PARAM_SIZE(NEXSRV_TOKEN_HASH_LEN)];
	bool search_pools; /* a pool's cursor had no address: allocate the long way */
	int64_t revision;  /* the new device's, once committed */
};

/* The statement claiming the registration key the caller presents ($1 its id), which
 * returns the security group the key assigns. */
static const char *claim_sql(const struct nexsrv_caller *c)
{
	if (c->single_use)
		return "UPDATE reg_keys SET used_at = now() WHERE id = $1 AND used_at IS NULL AND "
		       "(expires_at IS NULL OR expires_at > now()) RETURNING security_group_id";
	/* KEY SHARE: the key cannot be deleted under the enrolment */
	return "SELECT security_group_id FROM reg_keys WHERE id = $1 AND "
	       "(expires_at IS NULL OR expires_at > now()) FOR KEY SHARE";
}

/* What the claim found: 1 with the security group the key assigns in sg (maybe ""), or a
 * rejection. */
static int claim_result(PGconn *conn, struct device_create *t, const struct nexsrv_db_stmt *st,
			char *sg, struct nx_err *err)
{
	const char *params[] = { t->caller->reg_key_id };
	int rc;

	sg[0] = '\0';
	if (st->rows == 1) {
		if (nexsrv_db_text(st->res, 0, 0))
			nx_strlcpy(sg, nexsrv_db_text(st->res, 0, 0), NEXSRV_INPUT_UUID_LEN);
		return 1;
	}
	/* Why not: spent, expired or gone. */
	rc = nexsrv_db_exec(conn,
			    "SELECT 1 FROM reg_keys WHERE id = $1 AND used_at IS NOT NULL AND "
			    "(expires_at IS NULL OR expires_at > now())",
			    1, params, NULL, err);
	if (rc < 0)
		return rc;
	if (rc == 1)
		return nexsrv_api_reply_error(&t->reply, 400, "single use reg key exhausted");
	return nexsrv_api_reply_error(&t->reply, 401, "invalid reg key");
}

/* 409 when one of the prefixes the device is to advertise holds another device's tunnel
 * address (exclude: the device itself, or NULL). */
static int check_advertise(PGconn *conn, struct nexsrv_api_reply *r, const char *vpc,
			   const char *advertise, const char *exclude, struct nx_err *err)
{
	const char *params[] = { vpc, advertise, exclude };
	PGresult *res = NULL;
	char holder[NEXSRV_INPUT_UUID_LEN] = "", addr[NX_ADDR_STRLEN] = "";
	int rc;

	/* (A default route, an exit node's, covers every address: it is not a route to one.) */
	rc = nexsrv_db_exec(conn,
			    "SELECT device_id, host(address) FROM ipam_allocations WHERE vpc_id = "
			    "$1 AND address <<= ANY (ARRAY(SELECT a FROM unnest($2::cidr[]) AS a "
			    "WHERE masklen(a) > 0)) AND device_id IS DISTINCT FROM $3::uuid "
			    "ORDER BY address LIMIT 1",
			    3, params, &res, err);
	if (rc == 1) {
		if (nexsrv_db_text(res, 0, 0))
			nx_strlcpy(holder, nexsrv_db_text(res, 0, 0), sizeof(holder));
		nx_strlcpy(addr, nexsrv_db_text(res, 0, 1), sizeof(addr));
	}
	PQclear(res);
	if (rc == 1) {
		char msg[160];

		snprintf(msg, sizeof(msg),
			 "advertise_cidrs covers %s, the tunnel address of another device", addr);
		return nexsrv_api_reply_conflict(r, msg, holder, "advertise_cidrs");
	}
	return rc;
}

/*
 * The writer lock of device_id's VPC (the advisory lock of nexodus_next_revision(), held
 * until the transaction ends), before any device row is locked (see the top of the file),
 * and the prefix failover grace (milliseconds, text) of the transaction; first, with
 * lock_vpc, the VPC's row (FOR NO KEY UPDATE).  Only in c's reach.  0 (also when there is
 * no such device there: device_lock() answers that next), or an error.
 */
static int vpc_writer_lock(PGconn *conn, const struct nexsrv_caller *c, const char *device_id,
			   bool lock_vpc, const char *grace_ms, struct nx_err *err)
{
	struct nexsrv_sql q;
	int rc = 0;

	nexsrv_sql_init(&q);
	if (lock_vpc) {
		nexsrv_sql_add(&q, "SELECT 1 FROM vpcs v WHERE v.id = (SELECT d.vpc_id FROM "
				   "devices d WHERE d.id = ");
		nexsrv_sql_param(&q, device_id);
		nexsrv_sql_add(&q, ") AND ");
		nexsrv_sql_scope_vpc(&q, c, "v.id");
		nexsrv_sql_add(&q, " FOR NO KEY UPDATE OF v");
		rc = nexsrv_sql_exec(conn, &q, NULL, err);
		nexsrv_sql_fini(&q);
		nexsrv_sql_init(&q);
	}
	if (rc >= 0) {
		nexsrv_sql_add(&q, "SELECT pg_advisory_xact_lock(1853387382, "
				   "hashtext(d.vpc_id::text)), "
				   "set_config('nexodus.prefix_failover_grace_ms', ");
		nexsrv_sql_param(&q, grace_ms);
		nexsrv_sql_add(&q, ", true) FROM devices d WHERE d.id = ");
		nexsrv_sql_param(&q, device_id);
		nexsrv_sql_add(&q, " AND ");
		nexsrv_sql_scope_vpc(&q, c, "d.vpc_id");
		rc = nexsrv_sql_exec(conn, &q, NULL, err);
	}
	nexsrv_sql_fini(&q);
	return rc < 0 ? rc : 0;
}

/* The device as the API renders it, read again (after the elections of its change). */
#define DEVICE_REREAD_SQL "SELECT " NEXSRV_DEVICE_JSON " FROM devices d WHERE d.id = $1"

static int device_reread(PGconn *conn, const char *id, struct json_object **obj, struct nx_err *err)
{
	const char *params[] = { id };
	PGresult *res = NULL;
	int rc;

	rc = nexsrv_db_exec(conn, DEVICE_REREAD_SQL, 1, params, &res, err);
	if (rc == 1) {
		json_object_put(*obj);
		*obj = NULL;
		rc = nexsrv_api_row_json(res, 0, obj, err);
	} else if (rc >= 0) {
		rc = nx_err_set(err, EIO, "device %s vanished", id);
	}
	PQclear(res);
	return rc;
}

/* The security group a new device gets: 0 with sg set (maybe ""), or a rejection.
 * has_default: whether the VPC has its default group. */
static int choose_secgroup(PGconn *conn, struct device_create *t, const char *key_sg, char *sg,
			   bool has_default, struct nx_err *err)
{
	const char *params[2] = { NULL, t->vpc_id };
	int rc;

	if (key_sg[0]) {
		nx_strlcpy(sg, key_sg, NEXSRV_INPUT_UUID_LEN);
		return 0;
	}
	if ((t->in->present & NEXSRV_DEV_SECURITY_GROUP) && t->in->security_group_id[0]) {
		params[0] = t->in->security_group_id;
		rc = nexsrv_db_exec(conn,
				    "SELECT 1 FROM security_groups WHERE id = $1 AND vpc_id = $2",
				    2, params, NULL, err);
		if (rc == 0)
			return nexsrv_api_reply_not_found(&t->reply, "security group");
		if (rc < 0)
			return rc;
		nx_strlcpy(sg, t->in->security_group_id, NEXSRV_INPUT_UUID_LEN);
		return 0;
	}
	/* The VPC's default group, when it has one. */
	nx_strlcpy(sg, has_default ? t->vpc_id : "", NEXSRV_INPUT_UUID_LEN);
	return 0;
}

/* The IPAM outcome as a reply (rc from nexsrv_ipam_allocate). */
static int ipam_failed(struct nexsrv_api_reply *r, int rc, const char *holder,
		       const struct nx_err *why)
{
	switch (rc) {
	case -EADDRNOTAVAIL:
		return nexsrv_api_reply_validation(r, 400, NEXSRV_ERR_FIELD_INVALID,
						   "ipv4_tunnel_ips", why->msg);
	case -EEXIST:
		return nexsrv_api_reply_conflict(r, why->msg, holder, "ipv4_tunnel_ips");
	case -ENOSPC:
		return nexsrv_api_reply_error(r, 409, "%s", why->msg);
	default:
		return rc;
	}
}

/* A tunnel address of the new device: known already (requested, or found by searching the
 * pool), or taken by the INSERT itself (nexsrv_ipam.h). */
struct tunnel_addr {
	struct nexsrv_ipam_request req;
	struct nx_addr addr;
	bool known;
	struct nexsrv_ipam_take_args take; /* when not known */
	char addr_s[NX_ADDR_STRLEN], pool_s[NX_PREFIX_STRLEN];
};

/* The INSERT's value for one address family: [{"address": ..., "cidr": pool}]. */
static void tunnel_ips_sql(struct nexsrv_sql *q, struct tunnel_addr *a)
{
	nexsrv_sql_add(q, "jsonb_build_array(jsonb_build_object('address', host(");
	if (a->known) {
		nexsrv_sql_param(q, nx_addr_format(&a->addr, a->addr_s, sizeof(a->addr_s)));
		nexsrv_sql_add(q, "::inet");
	} else {
		nexsrv_sql_add(q, "nexodus_ipam_take_or_fail(");
		nexsrv_sql_param(q, a->req.vpc_id);
		nexsrv_sql_add(q, "::uuid, ");
		nexsrv_sql_param(q, a->take.first);
		nexsrv_sql_add(q, "::inet, ");
		nexsrv_sql_param(q, a->take.last);
		nexsrv_sql_add(q, "::inet, ");
		nexsrv_sql_param(q, nx_sbuf_str(&a->take.avoid));
		nexsrv_sql_add(q, "::cidr[], ");
		nexsrv_sql_param(q, a->req.device_id);
		nexsrv_sql_add(q, "::uuid)");
	}
	nexsrv_sql_add(q, "), 'cidr', ");
	nexsrv_sql_param(q, nx_prefix_format(&a->req.pool, a->pool_s, sizeof(a->pool_s)));
	nexsrv_sql_add(q, "::text))");
}

/* The addresses known before the INSERT: a requested one (which may be refused), or, when a
 * pool's cursor could not give one last time, all of them, searching the pools. */
static int tunnel_addrs_known(PGconn *conn, struct device_create *t, struct tunnel_addr *a,
			      struct nx_err *err)
{
	char holder[NEXSRV_INPUT_UUID_LEN] = "";
	struct nexsrv_ipam_request ir[2] = { a[0].req, a[1].req };
	struct nx_addr out[2];
	size_t failed = 0;
	int rc = 0;

	if (t->search_pools) {
		rc = nexsrv_ipam_allocate_set(conn, ir, 2, out, &failed, holder, sizeof(holder),
					      err);
		for (int fam = 0; rc == 0 && fam < 2; fam++) {
			a[fam].addr = out[fam];
			a[fam].known = true;
		}
	} else {
		for (int fam = 0; rc == 0 && fam < 2; fam++) {
			if (!a[fam].req.requested)
				continue;
			rc = nexsrv_ipam_allocate(conn, &a[fam].req, &a[fam].addr, holder,
						  sizeof(holder), err);
			a[fam].known = rc == 0;
		}
	}
	return rc < 0 ? ipam_failed(&t->reply, rc, holder, err) : 0;
}

static int device_create_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	struct device_create *t = arg;
	const struct nexsrv_caller *c = t->caller;
	char key_sg[NEXSRV_INPUT_UUID_LEN] = "", sg[NEXSRV_INPUT_UUID_LEN],
	     org[NEXSRV_INPUT_UUID_LEN], dev[NEXSRV_INPUT_UUID_LEN];
	const char *key_params[] = { c->reg_key_id, dev }, *vpc_params[] = { t->vpc_id, NULL },
		   *dev_params[] = { dev }, *grace_params[] = { t->grace_ms };
	struct nexsrv_db_stmt first[3] = { { NULL } }, last[4] = { { NULL } };
	size_t n_first = 0, n_last = 0, i_vpc, i_json;
	struct nexsrv_ipam_avoid *avoid = NULL;
	struct tunnel_addr addrs[2];
	struct json_object *obj = NULL;
	struct nexsrv_sql q, ins;
	struct nx_prefix pool4, pool6;
	const PGresult *res;
	size_t n_avoid = 0;
	bool has_default_sg = false;
	int rc;

	nexsrv_api_reply_reset(&t->reply);
	nexsrv_sql_init(&q);
	nexsrv_sql_init(&ins);
	memset(addrs, 0, sizeof(addrs));
	for (int fam = 0; fam < 2; fam++)
		nx_sbuf_init(&addrs[fam].take.avoid, NULL, 0);

	/* In one round trip, with the transaction's BEGIN: the registration key claimed; the
	 * VPC, within reach, locked against other enrolments until commit, with the new
	 * device's id (its addresses are taken for it before it exists), the device that has
	 * this public key already (one per VPC) and whether the VPC has its default security
	 * group; the prefixes the VPC's devices advertise, which addresses stay out of. */
	if (c->kind == NEXSRV_CALLER_REG_KEY)
		first[n_first++] = (struct nexsrv_db_stmt){ .sql = claim_sql(c),
							    .nparams = 1,
							    .params = key_params };
	nexsrv_sql_add(&q, "SELECT v.organization_id, v.ipv4_cidr::text, v.ipv6_cidr::text, "
			   "gen_random_uuid(), (SELECT x.id FROM devices x WHERE x.vpc_id = v.id "
			   "AND x.public_key = ");
	nexsrv_sql_param(&q, t->in->public_key);
	nexsrv_sql_add(&q, "), EXISTS (SELECT 1 FROM security_groups s WHERE s.id = v.id "
			   "AND s.vpc_id = v.id) FROM vpcs v WHERE v.id = ");
	nexsrv_sql_param(&q, t->vpc_id);
	nexsrv_sql_add(&q, " AND ");
	nexsrv_sql_scope_vpc(&q, c, "v.id");
	nexsrv_sql_add(&q, t->in->n_advertise ? " FOR NO KEY UPDATE OF v" : " FOR SHARE OF v");
	i_vpc = n_first;
	rc = nexsrv_sql_stmt(&q, &first[n_first++], err);
	if (rc < 0)
		goto out;
	first[n_first++] = (struct nexsrv_db_stmt){ .sql = nexsrv_ipam_advertised_sql,
						    .nparams = 2,
						    .params = vpc_params };
	rc = nexsrv_db_pipeline(conn, first, n_first, false, err);
	if (rc < 0)
		goto out;
	if (c->kind == NEXSRV_CALLER_REG_KEY) {
		rc = claim_result(conn, t, &first[0], key_sg, err);
		if (rc < 0)
			goto out;
	}
	res = first[i_vpc].res;
	if (first[i_vpc].rows == 0) {
		rc = nexsrv_api_reply_not_found(&t->reply, "vpc");
		goto out;
	}
	nx_strlcpy(org, nexsrv_db_text(res, 0, 0), sizeof(org));
	nx_strlcpy(dev, nexsrv_db_text(res, 0, 3), sizeof(dev));
	if (nexsrv_db_text(res, 0, 4)) {
		rc = nexsrv_api_reply_conflict(&t->reply, "resource already exists",
					       nexsrv_db_text(res, 0, 4), "public_key");
		goto out;
	}
	if (nexsrv_db_get_bool(res, 0, 5, &has_default_sg, NULL) < 0)
		has_default_sg = false;
	if (nx_prefix_parse(nexsrv_db_text(res, 0, 1), &pool4, 0, err) < 0 ||
	    nx_prefix_parse(nexsrv_db_text(res, 0, 2), &pool6, 0, err) < 0) {
		rc = -EIO;
		goto out;
	}
	rc = nexsrv_ipam_advertised_read(first[i_vpc + 1].res, first[i_vpc + 1].rows, &avoid,
					 &n_avoid, err);
	if (rc < 0)
		goto out;

	rc = choose_secgroup(conn, t, key_sg, sg, has_default_sg, err);
	if (rc < 0)
		goto out;
	if (t->in->n_advertise) {
		rc = check_advertise(conn, &t->reply, t->vpc_id, nx_sbuf_str(&t->advertise), NULL,
				     err);
		if (rc < 0)
			goto out;
	}

	/* Addresses: never one another device (or this one) advertises a route over. */
	for (int fam = 0; fam < 2; fam++)
		addrs[fam].req = (struct nexsrv_ipam_request){
			.vpc_id = t->vpc_id,
			.device_id = dev,
			.pool = fam == 0 ? pool4 : pool6,
			.requested = fam == 0 && (t->in->present & NEXSRV_DEV_IPV4_REQUEST)
					     ? &t->in->ipv4_request
					     : NULL,
			.avoid = avoid,
			.n_avoid = n_avoid,
			.avoid_extra = t->in->advertise,
			.n_avoid_extra = t->in->n_advertise,
		};
	rc = tunnel_addrs_known(conn, t, addrs, err);
	for (int fam = 0; rc >= 0 && fam < 2; fam++)
		if (!addrs[fam].known)
			rc = nexsrv_ipam_take_args(&addrs[fam].req, &addrs[fam].take, err);
	if (rc < 0)
		goto out;

	/* In one round trip, so that the pools' cursors are locked no longer than the database
	 * needs: the device inserted, taking its addresses; read back after the election of
	 * its prefixes' holders, when it advertises some; the key marked with the device it
	 * made; COMMIT. */
	if (t->in->n_advertise)
		last[n_last++] = (struct nexsrv_db_stmt){
			.sql = "SELECT set_config('nexodus.prefix_failover_grace_ms', $1, true)",
			.nparams = 1,
			.params = grace_params,
		};
	nexsrv_sql_add(&ins,
		       "INSERT INTO devices AS d (id, vpc_id, organization_id, owner_id, "
		       "public_key, hostname, os, endpoints, ipv4_tunnel_ips, ipv6_tunnel_ips, "
		       "advertise_cidrs, relay, symmetric_nat, security_group_id, "
		       "bearer_token_hash, reg_key_id, priority, exit_node) VALUES (");
	nexsrv_sql_param(&ins, dev);
	nexsrv_sql_add(&ins, "::uuid, ");
	nexsrv_sql_param(&ins, t->vpc_id);
	nexsrv_sql_add(&ins, ", ");
	nexsrv_sql_param(&ins, org);
	nexsrv_sql_add(&ins, ", ");
	nexsrv_sql_param(&ins, c->user_id);
	nexsrv_sql_add(&ins, ", ");
	nexsrv_sql_param(&ins, t->in->public_key);
	nexsrv_sql_add(&ins, ", ");
	nexsrv_sql_param(&ins, t->in->hostname);
	nexsrv_sql_add(&ins, ", ");
	nexsrv_sql_param(&ins, t->in->os);
	nexsrv_sql_add(&ins, ", ");
	nexsrv_sql_param(&ins, t->endpoints);
	nexsrv_sql_add(&ins, "::jsonb, ");
	tunnel_ips_sql(&ins, &addrs[0]); /* IPv4 first: the cursors are locked in this order */
	nexsrv_sql_add(&ins, ", ");
	tunnel_ips_sql(&ins, &addrs[1]);
	nexsrv_sql_add(&ins, ", ");
	nexsrv_sql_param(&ins, nx_sbuf_str(&t->advertise));
	nexsrv_sql_add(&ins, "::cidr[], ");
	nexsrv_sql_param(&ins, t->in->relay ? "true" : "false");
	nexsrv_sql_add(&ins, ", ");
	nexsrv_sql_param(&ins, t->in->symmetric_nat ? "true" : "false");
	nexsrv_sql_add(&ins, ", ");
	nexsrv_sql_param(&ins, sg[0] ? sg : NULL);
	nexsrv_sql_add(&ins, "::uuid, ");
	nexsrv_sql_param(&ins, t->hash);
	nexsrv_sql_add(&ins, "::bytea, ");
	nexsrv_sql_param(&ins, c->kind == NEXSRV_CALLER_REG_KEY ? c->reg_key_id : NULL);
	nexsrv_sql_add(&ins, "::uuid, %u, %s) RETURNING " NEXSRV_DEVICE_JSON ", d.id",
		       t->in->priority, t->in->exit_node ? "true" : "false");
	i_json = n_last;
	rc = nexsrv_sql_stmt(&ins, &last[n_last++], err);
	if (rc < 0)
		goto out;
	if (t->in->n_advertise) {
		i_json = n_last;
		last[n_last++] = (struct nexsrv_db_stmt){ .sql = DEVICE_REREAD_SQL,
							  .nparams = 1,
							  .params = dev_params };
	}
	if (c->kind == NEXSRV_CALLER_REG_KEY && c->single_use)
		last[n_last++] = (struct nexsrv_db_stmt){
			.sql = "UPDATE reg_keys SET device_id = $2 WHERE id = $1",
			.nparams = 2,
			.params = key_params,
		};
	rc = nexsrv_db_pipeline(conn, last, n_last, true, err);
	if (rc == -EEXIST) /* the same public key, enrolled meanwhile: again, for the 409 */
		rc = -EAGAIN;
	if (rc == -ENOSPC && !t->search_pools) { /* a cursor had no address: again, searching */
		t->search_pools = true;
		rc = -EAGAIN;
	}
	if (rc < 0)
		goto out;
	/* Committed: what is left cannot fail but for want of memory. */
	if (last[i_json].rows != 1)
		rc = nx_err_set(err, EIO, "device %s: not read back", dev);
	else
		rc = nexsrv_api_row_json(last[i_json].res, 0, &obj, err);
	if (rc < 0)
		goto out;
	if (nx_json_get_int64(obj, "revision", &t->revision, NULL) < 0)
		t->revision = 0;
	/* The device token, this once, to the caller that enrolled the device. */
	nx_json_object_add_string(obj, "bearer_token", t->token);
	rc = nexsrv_api_reply_set(&t->reply, 201, obj);
	obj = NULL;
out:
	for (size_t i = 0; i < n_first; i++)
		PQclear(first[i].res);
	for (size_t i = 0; i < n_last; i++)
		PQclear(last[i].res);
	for (int fam = 0; fam < 2; fam++)
		nexsrv_ipam_take_args_fini(&addrs[fam].take);
	json_object_put(obj);
	free(avoid);
	nexsrv_sql_fini(&q);
	nexsrv_sql_fini(&ins);
	return rc;
}

static int devices_create(struct nexsrv_req *req, void *arg)
{
	struct device_create *t = calloc(1, sizeof(*t));
	struct nexsrv_input_error e = { "", { "" } };
	uint8_t hash[NEXSRV_TOKEN_HASH_LEN];
	struct json_object *body, *eps = NULL;
	const struct nexsrv_caller *c;
	int rc = 0;

	if (!t)
		return -ENOMEM;
	nx_sbuf_init(&t->advertise, NULL, 0);
	t->in = calloc(1, sizeof(*t->in));
	if (!t->in) {
		rc = -ENOMEM;
		goto out;
	}
	c = t->caller = nexsrv_api_caller(req);
	if (!c)
		goto out;
	if (c->kind == NEXSRV_CALLER_DEVICE) {
		rc = nexsrv_api_forbid(req, "a device token cannot create devices");
		goto out;
	}
	if (nexsrv_api_body_object(req, &body) < 0)
		goto out;
	rc = nexsrv_device_input_parse(body, NEXSRV_DEVICE_CREATE, t->in, &e);
	if (rc < 0) {
		nexsrv_api_reply_input(&t->reply, 400, rc, &e);
		rc = nexsrv_api_send(req, &t->reply);
		goto out;
	}
	/* The VPC: as given, else the key's, else the user's default one (id = user id). */
	if (c->kind == NEXSRV_CALLER_REG_KEY) {
		if ((t->in->present & NEXSRV_DEV_VPC_ID) && strcmp(t->in->vpc_id, c->vpc_id) != 0) {
			rc = nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_INVALID, "vpc_id",
						     "does not match the reg key vpc_id");
			goto out;
		}
		nx_strlcpy(t->vpc_id, c->vpc_id, sizeof(t->vpc_id));
	} else {
		nx_strlcpy(t->vpc_id,
			   (t->in->present & NEXSRV_DEV_VPC_ID) ? t->in->vpc_id : c->user_id,
			   sizeof(t->vpc_id));
	}
	eps = nexsrv_device_endpoints_json(t->in);
	t->endpoints = eps ? nx_json_to_string(eps, NX_JSON_PLAIN) : NULL;
	snprintf(t->grace_ms, sizeof(t->grace_ms), "%u", nexsrv_prefix_grace_ms(arg));
	if (!t->endpoints || nexsrv_device_advertise_literal(t->in, &t->advertise) < 0 ||
	    nexsrv_token_new(NEXSRV_TOKEN_DEVICE, t->token, sizeof(t->token), hash) < 0 ||
	    nexsrv_db_bytea_param(hash, sizeof(hash), t->hash, sizeof(t->hash)) < 0) {
		rc = nexsrv_reply_error(req, 500, "out of memory");
		goto out;
	}
	rc = nexsrv_api_txn(req, arg, device_create_txn, t, &t->reply);
	if (t->revision)
		nexsrv_watch_changed(arg, t->vpc_id, t->revision);
out:
	json_object_put(eps);
	nx_memzero_explicit(t->token, sizeof(t->token));
	nexsrv_api_reply_reset(&t->reply);
	nx_sbuf_fini(&t->advertise);
	free(t->endpoints);
	free(t->in);
	free(t);
	return rc;
}

/* --- changes to one device ----------------------------------------------------------------- */

struct device_target {
	char id[NEXSRV_INPUT_UUID_LEN];
	char vpc[NEXSRV_INPUT_UUID_LEN];
	char org[NEXSRV_INPUT_UUID_LEN];
	char owner[NEXSRV_INPUT_UUID_LEN];
	bool exit_node;		 /* as it is */
	bool advertises_default; /* it advertises a default route */
};

/*
 * Locks device d->id for a change by c: 1 when found and c may change it, else a rejection
 * in r (404 out of reach, 403 not allowed) or an error.  A device token may change only its
 * own device, a registration key none.
 */
static int device_lock(PGconn *conn, const struct nexsrv_caller *c, struct device_target *d,
		       struct nexsrv_api_reply *r, struct nx_err *err)
{
	struct nexsrv_sql q;
	PGresult *res = NULL;
	bool may = false;
	int rc;

	nexsrv_sql_init(&q);
	nexsrv_sql_add(&q, "SELECT d.vpc_id, d.organization_id, d.owner_id, d.exit_node, "
			   "EXISTS (SELECT 1 FROM unnest(d.advertise_cidrs) AS a WHERE "
			   "masklen(a) = 0) FROM devices d WHERE d.id = ");
	nexsrv_sql_param(&q, d->id);
	nexsrv_sql_add(&q, " AND ");
	nexsrv_sql_scope_vpc(&q, c, "d.vpc_id");
	if (c->kind == NEXSRV_CALLER_DEVICE) {
		nexsrv_sql_add(&q, " AND d.id = ");
		nexsrv_sql_param(&q, c->device_id);
	}
	nexsrv_sql_add(&q, " FOR UPDATE OF d");
	rc = nexsrv_sql_exec(conn, &q, &res, err);
	if (rc == 1) {
		nx_strlcpy(d->vpc, nexsrv_db_text(res, 0, 0), sizeof(d->vpc));
		nx_strlcpy(d->org, nexsrv_db_text(res, 0, 1), sizeof(d->org));
		nx_strlcpy(d->owner, nexsrv_db_text(res, 0, 2), sizeof(d->owner));
		if (nexsrv_db_get_bool(res, 0, 3, &d->exit_node, NULL) < 0)
			d->exit_node = false;
		if (nexsrv_db_get_bool(res, 0, 4, &d->advertises_default, NULL) < 0)
			d->advertises_default = false;
	}
	PQclear(res);
	nexsrv_sql_fini(&q);
	if (rc == 0)
		return nexsrv_api_reply_not_found(r, "device");
	if (rc < 0)
		return rc;
	switch (c->kind) {
	case NEXSRV_CALLER_DEVICE:
		return 1;
	case NEXSRV_CALLER_USER:
		rc = nexsrv_api_may_modify(conn, c, d->org, d->owner, &may, err);
		if (rc < 0)
			return rc;
		if (may)
			return 1;
		return nexsrv_api_reply_not_allowed(
			r, 403, "only the device's owner or an owner of the organization");
	default:
		return nexsrv_api_reply_not_allowed(r, 403, "a registration key changes no device");
	}
}

struct device_change {
	struct nexsrv_api_reply reply;
	const struct nexsrv_caller *caller;
	struct device_target d;
	bool delete;
	struct nexsrv_device_input *in; /* PATCH */
	char *endpoints;
	struct nx_sbuf advertise;
	char grace_ms[16]; /* the prefix failover grace, as text */
	int64_t revision;  /* the changed device's, once committed */
};

static void set_column(struct nexsrv_sql *q, bool *first, const char *column, const char *value,
		       const char *cast)
{
	nexsrv_sql_add(q, "%s%s = ", *first ? "" : ", ", column);
	*first = false;
	if (value) {
		nexsrv_sql_param(q, value);
		nexsrv_sql_add(q, "%s", cast);
	} else {
		nexsrv_sql_add(q, "NULL");
	}
}

/* The UPDATE of a PATCH into q, after the checks it needs (a rejection or an error). */
static int device_update(PGconn *conn, struct device_change *t, struct nexsrv_sql *q,
			 struct nx_err *err)
{
	const struct nexsrv_device_input *in = t->in;
	bool first = true;
	int rc;

	if ((in->present & NEXSRV_DEV_VPC_ID) && strcmp(in->vpc_id, t->d.vpc) != 0)
		return nexsrv_api_reply_validation(
			&t->reply, 400, NEXSRV_ERR_FIELD_INVALID, "vpc_id",
			"moving a device to another VPC is not supported");
	if (in->present & NEXSRV_DEV_SECURITY_GROUP) {
		const char *params[] = { in->security_group_id, t->d.vpc };

		if (t->caller->kind == NEXSRV_CALLER_DEVICE)
			return nexsrv_api_reply_not_allowed(
				&t->reply, 403, "a device cannot change its own security group");
		if (in->security_group_id[0]) {
			rc = nexsrv_db_exec(conn,
					    "SELECT 1 FROM security_groups WHERE id = $1 AND "
					    "vpc_id = $2",
					    2, params, NULL, err);
			if (rc == 0)
				return nexsrv_api_reply_not_found(&t->reply, "security group");
			if (rc < 0)
				return rc;
		}
	}
	/* A default route is an exit node's (as the device is to be after this change). */
	if (!((in->present & NEXSRV_DEV_EXIT_NODE) ? in->exit_node : t->d.exit_node)) {
		if ((in->present & NEXSRV_DEV_ADVERTISE) && in->n_default) {
			struct nexsrv_input_error e = { "", { "" } };

			nexsrv_device_default_route_refused(in, &e);
			return nexsrv_api_reply_input(&t->reply, 400, -EINVAL, &e);
		}
		if (!(in->present & NEXSRV_DEV_ADVERTISE) && t->d.advertises_default)
			return nexsrv_api_reply_validation(
				&t->reply, 400, NEXSRV_ERR_FIELD_INVALID, "exit_node",
				"the device advertises a default route: withdraw it from "
				"advertise_cidrs to stop being an exit node");
	}
	/* (The VPC row is locked already: device_change_txn.) */
	if ((in->present & NEXSRV_DEV_ADVERTISE) && in->n_advertise) {
		rc = check_advertise(conn, &t->reply, t->d.vpc, nx_sbuf_str(&t->advertise), t->d.id,
				     err);
		if (rc < 0)
			return rc;
	}

	nexsrv_sql_add(q, "UPDATE devices d SET ");
	if (in->present & NEXSRV_DEV_HOSTNAME)
		set_column(q, &first, "hostname", in->hostname, "");
	if (in->present & NEXSRV_DEV_ENDPOINTS)
		set_column(q, &first, "endpoints", t->endpoints, "::jsonb");
	if (in->present & NEXSRV_DEV_ADVERTISE)
		set_column(q, &first, "advertise_cidrs", nx_sbuf_str(&t->advertise), "::cidr[]");
	if (in->present & NEXSRV_DEV_RELAY)
		set_column(q, &first, "relay", in->relay ? "true" : "false", "");
	if (in->present & NEXSRV_DEV_SYMMETRIC_NAT)
		set_column(q, &first, "symmetric_nat", in->symmetric_nat ? "true" : "false", "");
	if (in->present & NEXSRV_DEV_SECURITY_GROUP)
		set_column(q, &first, "security_group_id",
			   in->security_group_id[0] ? in->security_group_id : NULL, "::uuid");
	if (in->present & NEXSRV_DEV_EXIT_NODE)
		set_column(q, &first, "exit_node", in->exit_node ? "true" : "false", "");
	if (in->present & NEXSRV_DEV_PRIORITY) {
		char priority[16];

		snprintf(priority, sizeof(priority), "%u", in->priority);
		nexsrv_sql_add(q, "%spriority = %s", first ? "" : ", ", priority);
		first = false;
	}
	if (first) /* nothing to change: a no-op, which the triggers see as such */
		nexsrv_sql_add(q, "hostname = d.hostname");
	nexsrv_sql_add(q, " WHERE d.id = ");
	nexsrv_sql_param(q, t->d.id);
	return 0;
}

static int device_change_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	struct device_change *t = arg;
	unsigned present = t->delete ? 0 : t->in->present;
	bool advertising = (present & NEXSRV_DEV_ADVERTISE) && t->in->n_advertise;
	bool reelected = present & (NEXSRV_DEV_ADVERTISE | NEXSRV_DEV_PRIORITY);
	struct json_object *obj = NULL;
	struct nexsrv_sql q;
	PGresult *res = NULL;
	int rc;

	nexsrv_api_reply_reset(&t->reply);
	nexsrv_sql_init(&q);
	t->revision = 0;
	/* The locks in their order (see the top of the file): the VPC row when prefixes are
	 * advertised (taking turns with enrolments), the VPC's writer lock, the device. */
	rc = vpc_writer_lock(conn, t->caller, t->d.id, advertising, t->grace_ms, err);
	if (rc < 0)
		goto out;
	rc = device_lock(conn, t->caller, &t->d, &t->reply, err);
	if (rc < 0)
		goto out;
	if (t->delete) {
		if (t->caller->kind != NEXSRV_CALLER_USER) {
			rc = nexsrv_api_reply_not_allowed(&t->reply, 403,
							  "only users delete devices");
			goto out;
		}
		/* Its addresses, metadata and reg key link go with it (foreign keys). */
		nexsrv_sql_add(&q, "DELETE FROM devices d WHERE d.id = ");
		nexsrv_sql_param(&q, t->d.id);
	} else {
		rc = device_update(conn, t, &q, err);
		if (rc < 0)
			goto out;
	}
	nexsrv_sql_add(&q, " RETURNING " NEXSRV_DEVICE_JSON);
	rc = nexsrv_sql_exec(conn, &q, &res, err);
	if (rc == 1)
		rc = nexsrv_api_row_json(res, 0, &obj, err);
	else if (rc >= 0)
		rc = nx_err_set(err, EIO, "device %s vanished", t->d.id);
	if (rc >= 0 && reelected) /* the response shows the outcome */
		rc = device_reread(conn, t->d.id, &obj, err);
	if (rc < 0)
		goto out;
	if (!t->delete &&nx_json_get_int64(obj, "revision", &t->revision, NULL) < 0)
		t->revision = 0;
	rc = nexsrv_api_reply_set(&t->reply, 200, obj);
	obj = NULL;
out:
	json_object_put(obj);
	PQclear(res);
	nexsrv_sql_fini(&q);
	return rc;
}

static int device_change(struct nexsrv_req *req, struct nexsrv *srv, bool delete)
{
	struct device_change *t = calloc(1, sizeof(*t));
	struct nexsrv_input_error e = { "", { "" } };
	struct json_object *body, *eps = NULL;
	int rc = 0;

	if (!t)
		return -ENOMEM;
	t->delete = delete;
	snprintf(t->grace_ms, sizeof(t->grace_ms), "%u", nexsrv_prefix_grace_ms(srv));
	nx_sbuf_init(&t->advertise, NULL, 0);
	t->caller = nexsrv_api_caller(req);
	if (!t->caller || nexsrv_api_path_uuid(req, "id", t->d.id) < 0)
		goto out;
	if (!delete) {
		t->in = calloc(1, sizeof(*t->in));
		if (!t->in) {
			rc = -ENOMEM;
			goto out;
		}
		if (nexsrv_api_body_object(req, &body) < 0)
			goto out;
		rc = nexsrv_device_input_parse(body, NEXSRV_DEVICE_UPDATE, t->in, &e);
		if (rc < 0) {
			nexsrv_api_reply_input(&t->reply, 400, rc, &e);
			rc = nexsrv_api_send(req, &t->reply);
			goto out;
		}
		eps = nexsrv_device_endpoints_json(t->in);
		t->endpoints = eps ? nx_json_to_string(eps, NX_JSON_PLAIN) : NULL;
		if (!t->endpoints || nexsrv_device_advertise_literal(t->in, &t->advertise) < 0) {
			rc = nexsrv_reply_error(req, 500, "out of memory");
			goto out;
		}
	}
	rc = nexsrv_api_txn(req, srv, device_change_txn, t, &t->reply);
	if (t->revision) /* its streams need not wait for the database's notification */
		nexsrv_watch_changed(srv, t->d.vpc, t->revision);
out:
	json_object_put(eps);
	nexsrv_api_reply_reset(&t->reply);
	nx_sbuf_fini(&t->advertise);
	free(t->endpoints);
	free(t->in);
	free(t);
	return rc;
}

static int devices_patch(struct nexsrv_req *req, void *arg)
{
	return device_change(req, arg, false);
}

static int devices_delete(struct nexsrv_req *req, void *arg)
{
	return device_change(req, arg, true);
}

/* --- metadata ------------------------------------------------------------------------------ */

int nexsrv_api_metadata_list(struct nexsrv_req *req, PGconn *conn, const char *column,
			     const char *id)
{
	struct nexsrv_api_list list = nexsrv_metadata_list;
	char *fields[METADATA_MAX_PREFIXES], *copy = NULL, rev[24];
	const char *prefix = nexsrv_req_query(req, "prefix");
	const char *key = nexsrv_req_query(req, "key");
	struct nexsrv_sql where;
	int64_t gt = 0;
	int rc, has_gt, n = 0;

	has_gt = nexsrv_api_gt_revision(req, &gt);
	if (has_gt < 0)
		return 0;
	if (prefix && prefix[0]) {
		n = nx_str_split(prefix, ',', fields, METADATA_MAX_PREFIXES, &copy);
		if (n < 0)
			return nexsrv_reply_validation(req, NEXSRV_ERR_FIELD_INVALID, "prefix",
						       "at most 16 prefixes");
	}
	nexsrv_sql_init(&where);
	nexsrv_sql_add(&where, "%s = ", column);
	nexsrv_sql_param(&where, id);
	if (has_gt) {
		snprintf(rev, sizeof(rev), "%" PRId64, gt);
		nexsrv_sql_add(&where, " AND m.revision > ");
		nexsrv_sql_param(&where, rev);
		list.default_order = "m.revision";
	}
	if (key) {
		nexsrv_sql_add(&where, " AND m.key = ");
		nexsrv_sql_param(&where, key);
	}
	if (n > 0) {
		nexsrv_sql_add(&where, " AND (");
		for (int i = 0; i < n; i++) {
			nexsrv_sql_add(&where, "%sstarts_with(m.key, ", i ? " OR " : "");
			nexsrv_sql_param(&where, fields[i]);
			nexsrv_sql_add(&where, ")");
		}
		nexsrv_sql_add(&where, ")");
	}
	rc = nexsrv_api_list(req, conn, &list, &where);
	free(copy);
	return rc;
}

enum metadata_op {
	MD_LIST,
	MD_GET,
	MD_PUT,
	MD_DELETE_KEY,
	MD_DELETE_ALL,
};

struct metadata_change {
	struct nexsrv_api_reply reply;
	const struct nexsrv_caller *caller;
	struct device_target d;
	enum metadata_op op;
	const char *key;
	char *value; /* PUT: JSON text */
	char grace_ms[16];
};

static int metadata_change_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	struct metadata_change *t = arg;
	const char *params[] = { t->d.id, t->key, t->value };
	struct json_object *obj = NULL;
	PGresult *res = NULL;
	int rc;

	nexsrv_api_reply_reset(&t->reply);
	rc = vpc_writer_lock(conn, t->caller, t->d.id, false, t->grace_ms, err);
	if (rc >= 0)
		rc = device_lock(conn, t->caller, &t->d, &t->reply, err);
	if (rc < 0)
		return rc;
	switch (t->op) {
	case MD_PUT:
		rc = nexsrv_db_exec(
			conn,
			"INSERT INTO device_metadata AS m (device_id, key, value) VALUES "
			"($1, $2, $3::jsonb) ON CONFLICT (device_id, key) DO UPDATE SET "
			"value = EXCLUDED.value RETURNING " NEXSRV_METADATA_JSON,
			3, params, &res, err);
		if (rc == 1)
			rc = nexsrv_api_row_json(res, 0, &obj, err);
		else if (rc >= 0)
			rc = nx_err_set(err, EIO, "metadata upsert returned no row");
		if (rc >= 0)
			rc = nexsrv_api_reply_set(&t->reply, 200, obj);
		else
			json_object_put(obj);
		break;
	case MD_DELETE_KEY:
		rc = nexsrv_db_exec(conn,
				    "DELETE FROM device_metadata WHERE device_id = $1 AND key = $2",
				    2, params, NULL, err);
		if (rc == 0)
			rc = nexsrv_api_reply_not_found(&t->reply, "device metadata");
		else if (rc > 0)
			rc = nexsrv_api_reply_set(&t->reply, 204, json_object_new_object());
		break;
	case MD_DELETE_ALL:
		rc = nexsrv_db_exec(conn, "DELETE FROM device_metadata WHERE device_id = $1", 1,
				    params, NULL, err);
		if (rc >= 0)
			rc = nexsrv_api_reply_set(&t->reply, 204, json_object_new_object());
		break;
	default:
		rc = -EINVAL;
		break;
	}
	PQclear(res);
	return rc;
}

static int metadata_read(struct nexsrv_req *req, struct nexsrv *srv, struct metadata_change *t)
{
	struct json_object *obj = NULL;
	struct nx_err err = { "" };
	struct nexsrv_sql q;
	PGresult *res = NULL;
	PGconn *conn = nexsrv_api_db_acquire(req, srv);
	int rc;

	if (!conn)
		return 0;
	nexsrv_sql_init(&q);
	nexsrv_sql_add(&q, "SELECT 1 FROM devices d WHERE d.id = ");
	nexsrv_sql_param(&q, t->d.id);
	nexsrv_sql_add(&q, " AND ");
	nexsrv_sql_scope_vpc(&q, t->caller, "d.vpc_id");
	rc = nexsrv_sql_exec(conn, &q, NULL, &err);
	if (rc <= 0) {
		rc = rc == 0 ? nexsrv_reply_not_found(req, "device")
			     : nexsrv_api_db_failed(req, rc, &err);
		goto out;
	}
	if (t->op == MD_LIST) {
		rc = nexsrv_api_metadata_list(req, conn, "m.device_id", t->d.id);
		goto out;
	}
	{
		const char *params[] = { t->d.id, t->key };

		rc = nexsrv_db_exec(conn,
				    "SELECT " NEXSRV_METADATA_JSON " FROM device_metadata m WHERE "
				    "m.device_id = $1 AND m.key = $2",
				    2, params, &res, &err);
	}
	if (rc == 1)
		rc = nexsrv_api_row_json(res, 0, &obj, &err);
	if (rc == 0)
		rc = nexsrv_reply_not_found(req, "device metadata");
	else if (rc < 0)
		rc = nexsrv_api_db_failed(req, rc, &err);
	else
		rc = nexsrv_reply_json(req, 200, obj);
out:
	PQclear(res);
	nexsrv_sql_fini(&q);
	nexsrv_db_release(srv->db, conn);
	return rc;
}

static int metadata(struct nexsrv_req *req, struct nexsrv *srv, enum metadata_op op)
{
	struct metadata_change t = { .reply = { 0 }, .op = op };
	struct nexsrv_input_error e = { "", { "" } };
	struct json_object *value;
	int rc;

	t.caller = nexsrv_api_caller(req);
	if (!t.caller || nexsrv_api_path_uuid(req, "id", t.d.id) < 0)
		return 0;
	snprintf(t.grace_ms, sizeof(t.grace_ms), "%u", nexsrv_prefix_grace_ms(srv));
	if (op != MD_LIST && op != MD_DELETE_ALL) {
		t.key = nexsrv_req_param(req, "key");
		if (nexsrv_metadata_key_check(t.key, &e) < 0)
			return nexsrv_reply_validation(req, NEXSRV_ERR_PATH_PARAM, "key",
						       e.err.msg);
	}
	if (op == MD_LIST || op == MD_GET)
		return metadata_read(req, srv, &t);
	if (op == MD_PUT) {
		if (nexsrv_req_json(req, &value) < 0)
			return 0;
		t.value = nx_json_to_string(value, NX_JSON_PLAIN);
		if (!t.value)
			return nexsrv_reply_error(req, 500, "out of memory");
	}
	rc = nexsrv_api_txn(req, srv, metadata_change_txn, &t, &t.reply);
	free(t.value);
	return rc;
}

static int metadata_list(struct nexsrv_req *req, void *arg)
{
	return metadata(req, arg, MD_LIST);
}

static int metadata_get(struct nexsrv_req *req, void *arg)
{
	return metadata(req, arg, MD_GET);
}

static int metadata_put(struct nexsrv_req *req, void *arg)
{
	return metadata(req, arg, MD_PUT);
}

static int metadata_delete(struct nexsrv_req *req, void *arg)
{
	return metadata(req, arg, MD_DELETE_KEY);
}

static int metadata_delete_all(struct nexsrv_req *req, void *arg)
{
	return metadata(req, arg, MD_DELETE_ALL);
}

int nexsrv_api_devices_init(struct nexsrv_http *http, struct nexsrv *srv, struct nx_err *err)
{
	static const struct nexsrv_route routes[] = {
		NEXSRV_API_ROUTE("GET", "/api/devices", devices_list),
		NEXSRV_API_ROUTE("POST", "/api/devices", devices_create),
		NEXSRV_API_ROUTE("GET", "/api/devices/{id}", devices_get),
		NEXSRV_API_ROUTE("PATCH", "/api/devices/{id}", devices_patch),
		NEXSRV_API_ROUTE("DELETE", "/api/devices/{id}", devices_delete),
		NEXSRV_API_ROUTE("GET", "/api/devices/{id}/metadata", metadata_list),
		NEXSRV_API_ROUTE("DELETE", "/api/devices/{id}/metadata", metadata_delete_all),
		NEXSRV_API_ROUTE("GET", "/api/devices/{id}/metadata/{key}", metadata_get),
		NEXSRV_API_ROUTE("PUT", "/api/devices/{id}/metadata/{key}", metadata_put),
		NEXSRV_API_ROUTE("DELETE", "/api/devices/{id}/metadata/{key}", metadata_delete),
	};

	return nexsrv_api_routes_add(http, routes, sizeof(routes) / sizeof(routes[0]), srv, err);
}
