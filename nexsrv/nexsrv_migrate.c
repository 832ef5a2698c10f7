/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Schema migrations: nexsrv brings the database to the schema it was built with when it
 * starts, so that an upgrade is "install the new nexsrv, restart it".  All of it happens in
 * one transaction under an advisory lock: replicas that start together queue up and the
 * first one migrates; a migration that fails leaves the database exactly as it was; a
 * database already migrated by a newer nexsrv is refused rather than used with a schema
 * this one does not understand.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>

#include "lib/log.h"
#include "nexsrv/nexsrv_db.h"

NX_DEBUG_DECLARE(nexsrv_database);

/* The advisory lock of migrations: "nxmigrat" in ASCII, as a bigint. */
#define MIGRATE_LOCK_KEY "7960232640851894644"

unsigned nexsrv_migrate_latest(void)
{
	return nexsrv_migrations_count ? nexsrv_migrations[nexsrv_migrations_count - 1].version : 0;
}

/* The highest version recorded (0 for a database without schema_version). */
static int current_version(PGconn *conn, unsigned *out, struct nx_err *err)
{
	PGresult *res;
	int64_t v;
	bool exists;
	int rc;

	rc = nexsrv_db_exec(conn, "SELECT to_regclass('schema_version') IS NOT NULL", 0, NULL, &res,
			    err);
	if (rc < 0)
		return rc;
	rc = nexsrv_db_get_bool(res, 0, 0, &exists, err);
	PQclear(res);
	if (rc < 0)
		return rc;
	if (!exists) {
		*out = 0;
		return 0;
	}
	rc = nexsrv_db_exec(conn, "SELECT coalesce(max(version), 0) FROM schema_version", 0, NULL,
			    &res, err);
	if (rc < 0)
		return rc;
	rc = nexsrv_db_get_int64(res, 0, 0, &v, err);
	PQclear(res);
	if (rc < 0)
		return rc;
	if (v < 0 || v > INT32_MAX)
		return nx_err_set(err, EPROTO, "schema_version holds an impossible version %lld",
				  (long long)v);
	*out = (unsigned)v;
	return 0;
}

/* Runs one migration's text (several statements) and records it. */
static int apply(PGconn *conn, const struct nexsrv_migration *m, struct nx_err *err)
{
	char version[16];
	const char *params[2] = { version, m->name };
	struct nx_err qerr;
	PGresult *res;
	int rc;

	nx_debug(&dbg_nexsrv_database, "applying migration %s", m->name);
	res = PQexec(conn, m->sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

		if (PQstatus(conn) != CONNECTION_OK)
			rc = nx_err_set(err, ENOTCONN, "migration %s: database connection lost",
					m->name);
		else
			rc = nx_err_set(err, -nexsrv_db_sqlstate_errno(state),
					"migration %s failed: %s", m->name,
					primary ? primary : "no message from the server");
		PQclear(res);
		return rc;
	}
	PQclear(res);
	snprintf(version, sizeof(version), "%u", m->version);
	rc = nexsrv_db_exec(conn, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", 2,
			    params, NULL, &qerr);
	if (rc < 0)
		return nx_err_set(err, -rc, "migration %s: cannot record it: %s", m->name,
				  qerr.msg);
	return 0;
}

int nexsrv_migrate_list(PGconn *conn, const struct nexsrv_migration *list, size_t n,
			struct nx_err *err)
{
	unsigned latest = n ? list[n - 1].version : 0;
	unsigned current = 0;
	struct nx_err qerr;
	int applied = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		if (list[i].version != i + 1 || !list[i].name || !list[i].sql)
			return nx_err_set(err, EINVAL,
					  "migration list: entry %zu is not version %zu", i, i + 1);

	nx_err_clear(&qerr);
	rc = nexsrv_db_begin(conn, NEXSRV_DB_READ_COMMITTED, &qerr);
	if (rc < 0)
		goto fail;
	/* Timeouts set for the API's queries (conninfo options) must not cut a migration
	 * short, nor the wait of a replica behind another one's migration. */
	rc = nexsrv_db_exec(conn, "SET LOCAL statement_timeout = 0", 0, NULL, NULL, &qerr);
	if (rc >= 0)
		rc = nexsrv_db_exec(conn, "SET LOCAL lock_timeout = 0", 0, NULL, NULL, &qerr);
	if (rc < 0)
		goto fail;
	/* Held to the end of the transaction: a second replica waits here, then finds the
	 * schema up to date. */
	rc = nexsrv_db_exec(conn, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", 0, NULL,
			    NULL, &qerr);
	if (rc < 0)
		goto fail;
	rc = current_version(conn, &current, &qerr);
	if (rc < 0)
		goto fail;
	if (current > latest) {
		nexsrv_db_rollback(conn);
		return nx_err_set(err, EPROTO,
				  "database schema %u is newer than this nexsrv knows (%u); "
				  "upgrade nexsrv",
				  current, latest);
	}
	for (size_t i = 0; i < n; i++) {
		if (list[i].version <= current)
			continue;
		rc = apply(conn, &list[i], err);
		if (rc < 0) {
			nexsrv_db_rollback(conn);
			return rc;
		}
		applied++;
	}
	rc = nexsrv_db_commit(conn, &qerr);
	if (rc < 0)
		goto fail;
	if (applied)
		nx_notice("database: schema migrated from version %u to %u", current, latest);
	else
		nx_info("database: schema up to date (version %u)", current);
	return applied;
fail:
	nexsrv_db_rollback(conn);
	return nx_err_set(err, -rc, "schema migration: %s", qerr.msg);
}

int nexsrv_migrate(PGconn *conn, struct nx_err *err)
{
	return nexsrv_migrate_list(conn, nexsrv_migrations, nexsrv_migrations_count, err);
}

int nexsrv_migrate_gate(PGconn *conn, void *arg, struct nx_err *err)
{
	int rc = nexsrv_migrate(conn, err);

	return rc < 0 ? rc : 0;
}
