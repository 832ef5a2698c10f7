/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for nexsrv's database layer (nexsrv/nexsrv_db.c, nexsrv_migrate.c).
 *
 * Without a server: the embedded migrations, conninfo redaction, the SQLSTATE mapping, the
 * bytea parameters, and a pool whose database is unreachable.  With a server, when
 * NEXSRV_TEST_DB holds the conninfo of an empty database (the lab's test_nexsrv_db.py runs
 * this binary so against a fresh database): migrations, the pool (exhaustion, broken
 * connections, transactions left open), queries and typed results, the transaction retry on
 * a real serialization failure, and LISTEN with a reconnect.  Otherwise those are left out.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "nexsrv/nexsrv_db.h"

#define USER1 "11111111-1111-1111-1111-111111111111"
#define USER2 "11111111-1111-1111-1111-111111111122"
#define DEV1  "22222222-2222-2222-2222-222222222222"

static const char *test_db(void)
{
	const char *c = getenv("NEXSRV_TEST_DB");

	return c && c[0] ? c : NULL;
}

/* The tests that need a server are only registered when there is one (see main). */
#define NEED_DB() assert_non_null(test_db())

/* --- without a server ---------------------------------------------------------------------- */

static void test_embedded(void **state)
{
	(void)state;
	assert_true(nexsrv_migrations_count >= 1);
	for (size_t i = 0; i < nexsrv_migrations_count; i++) {
		assert_int_equal(nexsrv_migrations[i].version, i + 1);
		assert_non_null(nexsrv_migrations[i].name);
		assert_int_equal(strspn(nexsrv_migrations[i].name, "0123456789"), 4);
		assert_non_null(nexsrv_migrations[i].sql);
	}
	assert_int_equal(nexsrv_migrate_latest(), nexsrv_migrations_count);
	assert_string_equal(nexsrv_migrations[0].name, "0001_initial");
	assert_non_null(strstr(nexsrv_migrations[0].sql, "CREATE TABLE schema_version"));
	assert_non_null(strstr(nexsrv_migrations[0].sql, "CREATE SEQUENCE revision_seq"));
	/* Quotes and backslashes survive the embedding. */
	assert_non_null(strstr(nexsrv_migrations[0].sql, "'nexodus_changes'"));
}

static void test_describe(void **state)
{
	char buf[256];

	(void)state;
	nexsrv_db_describe("host=/run/pg port=5433 dbname=nx user=me password=s3cret", buf,
			   sizeof(buf));
	assert_string_equal(buf, "host=/run/pg port=5433 dbname=nx user=me");
	nexsrv_db_describe("postgresql://me:s3cret@db.example:5432/nx?sslmode=require", buf,
			   sizeof(buf));
	assert_null(strstr(buf, "s3cret"));
	assert_non_null(strstr(buf, "host=db.example"));
	assert_non_null(strstr(buf, "dbname=nx"));
	nexsrv_db_describe("password=s3cret", buf, sizeof(buf));
	assert_string_equal(buf, "(libpq defaults)");
	/* A malformed string is not quoted back: it may hold a password. */
	nexsrv_db_describe("host=x password='s3cret", buf, sizeof(buf));
	assert_string_equal(buf, "(invalid conninfo)");
	nexsrv_db_describe("host=a dbname=b", buf, 8);
	assert_true(strlen(buf) < 8);
}

static void test_sqlstate(void **state)
{
	(void)state;
	assert_int_equal(nexsrv_db_sqlstate_errno("23505"), -EEXIST);
	assert_int_equal(nexsrv_db_sqlstate_errno("23503"), -ENOENT);
	assert_int_equal(nexsrv_db_sqlstate_errno("23514"), -EINVAL);
	assert_int_equal(nexsrv_db_sqlstate_errno("23502"), -EINVAL);
	assert_int_equal(nexsrv_db_sqlstate_errno("22P02"), -EINVAL);
	assert_int_equal(nexsrv_db_sqlstate_errno("40001"), -EAGAIN);
	assert_int_equal(nexsrv_db_sqlstate_errno("40P01"), -EAGAIN);
	assert_int_equal(nexsrv_db_sqlstate_errno("55P03"), -EBUSY);
	assert_int_equal(nexsrv_db_sqlstate_errno("57014"), -ETIMEDOUT);
	assert_int_equal(nexsrv_db_sqlstate_errno("NXI01"), -ENOSPC);
	assert_int_equal(nexsrv_db_sqlstate_errno("08006"), -ENOTCONN);
	assert_int_equal(nexsrv_db_sqlstate_errno("57P01"), -ENOTCONN);
	assert_int_equal(nexsrv_db_sqlstate_errno("42P01"), -EIO);
	assert_int_equal(nexsrv_db_sqlstate_errno(NULL), -EIO);
	assert_int_equal(nexsrv_db_sqlstate_errno("235"), -EIO);
}

static void test_bytea_param(void **state)
{
	const uint8_t data[] = { 0x00, 0x7f, 0xab, 0xff };
	char buf[NEXSRV_DB_BYTEA_PARAM_SIZE(4)];

	(void)state;
	assert_int_equal(nexsrv_db_bytea_param(data, sizeof(data), buf, sizeof(buf)), 10);
	assert_string_equal(buf, "\\x007fabff");
	assert_int_equal(nexsrv_db_bytea_param(data, sizeof(data), buf, sizeof(buf) - 1), -ENOSPC);
	assert_int_equal(nexsrv_db_bytea_param(data, 0, buf, sizeof(buf)), 2);
	assert_string_equal(buf, "\\x");
}

static void test_open_invalid(void **state)
{
	struct nx_err err = { "" };

	(void)state;
	assert_null(nexsrv_db_open("host=x password='s3cret", 2, &err));
	assert_non_null(strstr(err.msg, "not a valid libpq connection string"));
	assert_null(strstr(err.msg, "s3cret"));
	nx_err_clear(&err);
	assert_null(nexsrv_db_open("", 2, &err));
	assert_non_null(strstr(err.msg, "empty"));
}

static void test_unreachable(void **state)
{
	struct nexsrv_db_options opts = { .size = 2, .check_ms = 100, .retry_max_ms = 100 };
	struct nx_err err = { "" };
	struct nexsrv_db *db;
	char why[NX_ERR_MAX];

	(void)state;
	db = nexsrv_db_open_opts("host=/nonexistent/nexsrv-test dbname=x password=s3cret", &opts,
				 &err);
	assert_non_null(db);
	assert_false(nexsrv_db_ready(db));
	assert_int_equal(nexsrv_db_state(db, why, sizeof(why)), NEXSRV_DB_DOWN);
	assert_non_null(strstr(why, "/nonexistent/nexsrv-test"));
	assert_string_equal(nexsrv_db_target(db), "host=/nonexistent/nexsrv-test dbname=x");
	assert_null(nexsrv_db_acquire(db, 100, &err));
	assert_non_null(strstr(err.msg, "database not ready"));
	assert_null(strstr(err.msg, "s3cret"));
	nexsrv_db_close(db);
	nexsrv_db_close(NULL);
}

static void never_called(const char *payload, void *arg)
{
	fail_msg("notification callback called");
}

static void test_listen_bad_channel(void **state)
{
	struct nexsrv_db_options opts = { .size = 1, .retry_max_ms = 100 };
	struct nx_err err = { "" };
	struct nexsrv_db *db;

	(void)state;
	db = nexsrv_db_open_opts("host=/nonexistent/nexsrv-test", &opts, &err);
	assert_non_null(db);
	assert_null(nexsrv_db_listen(db, "", never_called, NULL, &err));
	assert_non_null(strstr(err.msg, "1 to 63 bytes"));
	assert_null(nexsrv_db_listen(db,
				     "a_channel_name_that_is_much_longer_than_the_sixty_three_"
				     "bytes_postgres_allows",
				     never_called, NULL, &err));
	nexsrv_db_close(db);
}

/* --- with a server ------------------------------------------------------------------------- */

static struct nexsrv_db *open_test_db(unsigned size)
{
	struct nexsrv_db_options opts = {
		.size = size,
		.check_ms = 60000, /* the listener's idle ping stays out of the way */
		.retry_max_ms = 200,
		.gate = nexsrv_migrate_gate,
		.gate_name = "schema migration",
	};
	struct nx_err err = { "" };
	struct nexsrv_db *db = nexsrv_db_open_opts(test_db(), &opts, &err);

	if (!db)
		fail_msg("open: %s", err.msg);
	assert_true(nexsrv_db_ready(db));
	return db;
}

/* One statement that must succeed; returns the row count. */
static int must(PGconn *conn, const char *sql)
{
	struct nx_err err = { "" };
	int rc = nexsrv_db_exec(conn, sql, 0, NULL, NULL, &err);

	if (rc < 0)
		fail_msg("%s: %s", sql, err.msg);
	return rc;
}

static void test_migrate(void **state)
{
	/* The real migrations, then one that fails. */
	struct nexsrv_migration broken[16];
	const size_t n_broken = nexsrv_migrations_count + 1;
	char version_sql[80];
	struct nx_err err = { "" };
	struct nexsrv_db *db;
	PGresult *res;
	PGconn *conn;
	int64_t v;

	(void)state;
	NEED_DB();
	assert_true(n_broken <= sizeof(broken) / sizeof(broken[0]));
	memcpy(broken, nexsrv_migrations, nexsrv_migrations_count * sizeof(broken[0]));
	broken[n_broken - 1] =
		(struct nexsrv_migration){ (unsigned)n_broken, "9999_broken",
					   "CREATE TABLE half_done (x int);\nSELECT 1/0;\n" };
	snprintf(version_sql, sizeof(version_sql),
		 "SELECT 1 FROM schema_version WHERE version = %zu", n_broken);
	db = open_test_db(2);
	conn = nexsrv_db_acquire(db, 1000, &err);
	assert_non_null(conn);

	assert_int_equal(nexsrv_db_exec(conn, "SELECT max(version) FROM schema_version", 0, NULL,
					&res, &err),
			 1);
	assert_int_equal(nexsrv_db_get_int64(res, 0, 0, &v, &err), 0);
	assert_int_equal(v, nexsrv_migrate_latest());
	PQclear(res);

	/* Up to date: nothing to do. */
	assert_int_equal(nexsrv_migrate(conn, &err), 0);

	/* A failing migration changes nothing and says which one failed. */
	assert_true(nexsrv_migrate_list(conn, broken, n_broken, &err) < 0);
	assert_non_null(strstr(err.msg, "9999_broken"));
	assert_non_null(strstr(err.msg, "division by zero"));
	assert_int_equal(must(conn, "SELECT 1 FROM pg_tables WHERE tablename = 'half_done'"), 0);
	assert_int_equal(must(conn, version_sql), 0);
	assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);

	/* A database newer than what this nexsrv knows is refused. */
	nx_err_clear(&err);
	assert_int_equal(nexsrv_migrate_list(conn, nexsrv_migrations, 0, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "is newer than this nexsrv knows (0); upgrade nexsrv"));

	/* A list out of order is a programming error. */
	assert_int_equal(nexsrv_migrate_list(conn, broken + n_broken - 1, 1, &err), -EINVAL);

	nexsrv_db_release(db, conn);
	nexsrv_db_close(db);
}

static void test_pool(void **state)
{
	struct nx_err err = { "" };
	struct nexsrv_db *db;
	PGconn *a, *b, *c;
	int pid_a;

	(void)state;
	NEED_DB();
	db = open_test_db(2);
	a = nexsrv_db_acquire(db, 1000, &err);
	b = nexsrv_db_acquire(db, 1000, &err);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);

	/* Exhausted: waits, then says so. */
	nx_err_clear(&err);
	assert_null(nexsrv_db_acquire(db, 100, &err));
	assert_non_null(strstr(err.msg, "all 2 connections busy"));

	/* Given back, it is reused as it is. */
	pid_a = PQbackendPID(a);
	nexsrv_db_release(db, a);
	c = nexsrv_db_acquire(db, 100, &err);
	assert_ptr_equal(c, a);
	assert_int_equal(PQbackendPID(c), pid_a);

	/* A transaction left open is rolled back at release. */
	must(c, "CREATE TABLE pool_t (x int)");
	must(c, "BEGIN");
	must(c, "INSERT INTO pool_t VALUES (1)");
	nexsrv_db_release(db, c);
	c = nexsrv_db_acquire(db, 100, &err);
	assert_non_null(c);
	assert_int_equal(PQtransactionStatus(c), PQTRANS_IDLE);
	assert_int_equal(must(c, "SELECT * FROM pool_t"), 0);

	/* A connection whose backend died fails its query, then is replaced. */
	{
		char sql[96];
		PGconn *d;

		snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", PQbackendPID(c));
		must(b, sql);
		nx_err_clear(&err);
		assert_int_equal(nexsrv_db_exec(c, "SELECT 1", 0, NULL, NULL, &err), -ENOTCONN);
		assert_non_null(strstr(err.msg, "connection lost"));
		nexsrv_db_release(db, c);
		d = nexsrv_db_acquire(db, 1000, &err);
		assert_non_null(d);
		assert_int_equal(PQstatus(d), CONNECTION_OK);
		assert_int_equal(must(d, "SELECT 1"), 1);
		nexsrv_db_release(db, d);
	}
	nexsrv_db_release(db, b);
	nexsrv_db_release(db, NULL);
	assert_true(nexsrv_db_ready(db));
	nexsrv_db_close(db);
}

static void test_queries(void **state)
{
	struct nx_err err = { "" };
	struct nexsrv_db *db;
	PGresult *res;
	PGconn *conn;
	uint8_t hash[32], back[32];
	char hashp[NEXSRV_DB_BYTEA_PARAM_SIZE(32)];
	struct json_object *obj;
	int64_t rev1, rev2;
	bool b;
	int col;

	(void)state;
	NEED_DB();
	for (size_t i = 0; i < sizeof(hash); i++)
		hash[i] = (uint8_t)(i * 7 + 1);
	nexsrv_db_bytea_param(hash, sizeof(hash), hashp, sizeof(hashp));

	db = open_test_db(1);
	conn = nexsrv_db_acquire(db, 1000, &err);
	assert_non_null(conn);
	{
		const char *p[] = { USER1, "sub-1", "bob" };

		assert_int_equal(nexsrv_db_exec(conn,
						"INSERT INTO users (id, idp_subject, username) "
						"VALUES ($1, $2, $3)",
						3, p, NULL, &err),
				 1);
		/* The same subject again: a unique violation. */
		nx_err_clear(&err);
		p[0] = "11111111-1111-1111-1111-111111111112";
		assert_int_equal(nexsrv_db_exec(conn,
						"INSERT INTO users (id, idp_subject, username) "
						"VALUES ($1, $2, $3)",
						3, p, NULL, &err),
				 -EEXIST);
		assert_non_null(strstr(err.msg, "users_idp_subject_key"));
	}
	must(conn, "INSERT INTO organizations (id, name, owner_id) VALUES ('" USER1
		   "', 'bob', '" USER1 "')");
	must(conn, "INSERT INTO vpcs (id, organization_id) VALUES ('" USER1 "', '" USER1 "')");

	/* A reference to nothing, an invalid value, a failed check. */
	nx_err_clear(&err);
	assert_int_equal(nexsrv_db_exec(conn,
					"INSERT INTO vpcs (organization_id) VALUES "
					"('33333333-3333-3333-3333-333333333333')",
					0, NULL, NULL, &err),
			 -ENOENT);
	assert_true(err.msg[0]);
	nx_err_clear(&err);
	assert_int_equal(nexsrv_db_exec(conn, "SELECT 'not-a-uuid'::uuid", 0, NULL, NULL, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "invalid input syntax for type uuid"));
	nx_err_clear(&err);
	assert_int_equal(
		nexsrv_db_exec(conn,
			       "INSERT INTO vpcs (organization_id, ipv4_cidr) VALUES ('" USER1
			       "', '200::/64')",
			       0, NULL, NULL, &err),
		-EINVAL);
	assert_non_null(strstr(err.msg, "check constraint"));
	nx_err_clear(&err);
	assert_int_equal(nexsrv_db_exec(conn, "SELEKT 1", 0, NULL, NULL, &err), -EIO);
	assert_non_null(strstr(err.msg, "syntax error"));

	/* A device with a token hash, read back with the typed getters. */
	{
		const char *p[] = { DEV1, USER1, hashp,
				    "[{\"source\":\"local\",\"address\":"
				    "\"10.0.0.1:51820\"}]" };

		assert_int_equal(
			nexsrv_db_exec(conn,
				       "INSERT INTO devices (id, vpc_id, organization_id, "
				       "owner_id, public_key, bearer_token_hash, endpoints) "
				       "VALUES ($1, $2, $2, $2, 'pk', $3, $4) RETURNING "
				       "revision, relay, bearer_token_hash, endpoints, "
				       "online_at",
				       4, p, &res, &err),
			1);
	}
	assert_int_equal(nexsrv_db_get_int64(res, 0, nexsrv_db_col(res, "revision"), &rev1, &err),
			 0);
	assert_true(rev1 > 0);
	assert_int_equal(nexsrv_db_get_bool(res, 0, nexsrv_db_col(res, "relay"), &b, &err), 0);
	assert_false(b);
	col = nexsrv_db_col(res, "bearer_token_hash");
	assert_int_equal(nexsrv_db_get_bytea(res, 0, col, back, sizeof(back), &err), 32);
	assert_memory_equal(back, hash, 32);
	assert_int_equal(nexsrv_db_get_bytea(res, 0, col, back, 16, &err), -ENOSPC);
	assert_int_equal(nexsrv_db_get_json(res, 0, nexsrv_db_col(res, "endpoints"), &obj, &err),
			 0);
	assert_true(json_object_is_type(obj, json_type_array));
	assert_int_equal(json_object_array_length(obj), 1);
	json_object_put(obj);
	col = nexsrv_db_col(res, "online_at");
	assert_true(nexsrv_db_is_null(res, 0, col));
	assert_null(nexsrv_db_text(res, 0, col));
	nx_err_clear(&err);
	assert_int_equal(nexsrv_db_get_int64(res, 0, col, &rev2, &err), -ENODATA);
	assert_non_null(strstr(err.msg, "online_at"));
	assert_int_equal(nexsrv_db_get_bool(res, 0, 0, &b, &err), -EINVAL);
	assert_int_equal(nexsrv_db_get_int64(res, 1, 0, &rev2, &err), -ERANGE);
	assert_int_equal(nexsrv_db_col(res, "nope"), -1);
	PQclear(res);

	/* Found by its hash; the revision moves on with an update, not with a no-op. */
	{
		const char *p[] = { hashp };

		assert_int_equal(
			nexsrv_db_exec(conn, "SELECT id FROM devices WHERE bearer_token_hash = $1",
				       1, p, &res, &err),
			1);
		assert_string_equal(nexsrv_db_text(res, 0, 0), DEV1);
		PQclear(res);
	}
	assert_int_equal(must(conn, "UPDATE devices SET hostname = 'h1'"), 1);
	assert_int_equal(nexsrv_db_exec(conn, "SELECT revision FROM devices", 0, NULL, &res, &err),
			 1);
	nexsrv_db_get_int64(res, 0, 0, &rev2, &err);
	PQclear(res);
	assert_true(rev2 > rev1);
	rev1 = rev2;
	must(conn, "UPDATE devices SET hostname = 'h1'");
	nexsrv_db_exec(conn, "SELECT revision FROM devices", 0, NULL, &res, &err);
	nexsrv_db_get_int64(res, 0, 0, &rev2, &err);
	PQclear(res);
	assert_true(rev2 == rev1);

	/* A NULL parameter is SQL NULL. */
	{
		const char *p[] = { NULL };

		assert_int_equal(nexsrv_db_exec(conn, "SELECT $1::text IS NULL", 1, p, &res, &err),
				 1);
		nexsrv_db_get_bool(res, 0, 0, &b, &err);
		assert_true(b);
		PQclear(res);
	}
	nexsrv_db_release(db, conn);
	nexsrv_db_close(db);
}

/* The transaction body of test_transactions: on its first attempt another connection
 * updates the row between this transaction's snapshot and its own update. */
struct txn_ctx {
	PGconn *other;
	int attempts;
};

static int bump_counter(PGconn *conn, void *arg, struct nx_err *err)
{
	struct txn_ctx *t = arg;
	int rc;

	t->attempts++;
	rc = nexsrv_db_exec(conn, "SELECT n FROM txn_t", 0, NULL, NULL, err);
	if (rc < 0)
		return rc;
	if (t->attempts == 1)
		must(t->other, "UPDATE txn_t SET n = n + 100");
	rc = nexsrv_db_exec(conn, "UPDATE txn_t SET n = n + 1", 0, NULL, NULL, err);
	return rc < 0 ? rc : 7;
}

static int fail_body(PGconn *conn, void *arg, struct nx_err *err)
{
	int *calls = arg;

	(*calls)++;
	return nexsrv_db_exec(conn, "INSERT INTO txn_t VALUES (NULL)", 0, NULL, NULL, err);
}

static int ignore_error_body(PGconn *conn, void *arg, struct nx_err *err)
{
	nexsrv_db_exec(conn, "SELECT 1/0", 0, NULL, NULL, NULL);
	return 0;
}

static void test_transactions(void **state)
{
	struct nx_err err = { "" };
	struct txn_ctx t = { 0 };
	struct nexsrv_db *db;
	PGresult *res;
	PGconn *conn;
	int64_t n;
	int calls = 0;

	(void)state;
	NEED_DB();
	db = open_test_db(2);
	conn = nexsrv_db_acquire(db, 1000, &err);
	t.other = nexsrv_db_acquire(db, 1000, &err);
	assert_non_null(conn);
	assert_non_null(t.other);
	must(conn, "CREATE TABLE txn_t (n int NOT NULL)");
	must(conn, "INSERT INTO txn_t VALUES (0)");

	/* A real serialization failure on the first attempt; the second one commits. */
	assert_int_equal(nexsrv_db_run_txn(conn, NEXSRV_DB_REPEATABLE_READ, bump_counter, &t, &err),
			 7);
	assert_int_equal(t.attempts, 2);
	nexsrv_db_exec(conn, "SELECT n FROM txn_t", 0, NULL, &res, &err);
	nexsrv_db_get_int64(res, 0, 0, &n, &err);
	PQclear(res);
	assert_int_equal(n, 101);

	/* Other errors are not retried, and roll back. */
	nx_err_clear(&err);
	assert_int_equal(nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, fail_body, &calls, &err),
			 -EINVAL);
	assert_int_equal(calls, 1);
	assert_non_null(strstr(err.msg, "null value"));
	assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);

	/* A body that ignored an error cannot commit. */
	nx_err_clear(&err);
	assert_int_equal(
		nexsrv_db_run_txn(conn, NEXSRV_DB_SERIALIZABLE, ignore_error_body, NULL, &err),
		-EIO);
	assert_non_null(strstr(err.msg, "rolled back"));
	assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);

	/* Explicit begin / commit / rollback. */
	assert_int_equal(nexsrv_db_begin(conn, NEXSRV_DB_SERIALIZABLE, &err), 0);
	must(conn, "UPDATE txn_t SET n = 5");
	nexsrv_db_rollback(conn);
	assert_int_equal(nexsrv_db_begin(conn, NEXSRV_DB_READ_COMMITTED, &err), 0);
	must(conn, "UPDATE txn_t SET n = n + 1");
	assert_int_equal(nexsrv_db_commit(conn, &err), 0);
	nexsrv_db_exec(conn, "SELECT n FROM txn_t", 0, NULL, &res, &err);
	nexsrv_db_get_int64(res, 0, 0, &n, &err);
	PQclear(res);
	assert_int_equal(n, 102);
	assert_int_equal(nexsrv_db_begin(conn, (enum nexsrv_db_isolation)9, &err), -EINVAL);

	nexsrv_db_release(db, t.other);
	nexsrv_db_release(db, conn);

	/* The pooled form. */
	t.attempts = 0;
	t.other = NULL;
	calls = 0;
	assert_int_equal(
		nexsrv_db_transaction(db, NEXSRV_DB_READ_COMMITTED, fail_body, &calls, &err),
		-EINVAL);
	assert_int_equal(calls, 1);
	nexsrv_db_close(db);
}

/* A body whose first statement reports the isolation level its transaction runs at (so
 * the BEGIN it carried along was the one asked for), and whose last statements commit. */
struct pipe_ctx {
	char isolation[32];
	bool fail_late; /* the second statement of the committing pipeline fails */
};

static int pipe_body(PGconn *conn, void *arg, struct nx_err *err)
{
	struct pipe_ctx *p = arg;
	const char *one[] = { "1" }, *two[] = { "2" };
	struct nexsrv_db_stmt st[] = {
		{ .sql = "INSERT INTO pipe_t VALUES ($1::int) RETURNING n",
		  .nparams = 1,
		  .params = one },
		{ .sql = p->fail_late ? "INSERT INTO pipe_t VALUES ($1::int / 0)"
				      : "INSERT INTO pipe_t VALUES ($1::int)",
		  .nparams = 1,
		  .params = two },
		{ .sql = "INSERT INTO pipe_t VALUES (3)" },
	};
	PGresult *res = NULL;
	int rc = nexsrv_db_exec(conn, "SHOW transaction_isolation", 0, NULL, &res, err);

	if (rc != 1)
		return rc < 0 ? rc : -EIO;
	snprintf(p->isolation, sizeof(p->isolation), "%s", nexsrv_db_text(res, 0, 0));
	PQclear(res);
	rc = nexsrv_db_pipeline(conn, st, 3, true, err);
	if (rc < 0) {
		for (size_t i = 0; i < 3; i++)
			assert_null(st[i].res);
		return rc;
	}
	assert_int_equal(st[0].rows, 1);
	assert_string_equal(nexsrv_db_text(st[0].res, 0, 0), "1");
	assert_int_equal(st[1].rows, 1);
	assert_int_equal(st[2].rows, 1);
	for (size_t i = 0; i < 3; i++)
		PQclear(st[i].res);
	return 5;
}

static int nothing_body(PGconn *conn, void *arg, struct nx_err *err)
{
	(void)conn, (void)arg, (void)err;
	return 0;
}

static int64_t count_rows(PGconn *conn, const char *sql)
{
	struct nx_err err = { "" };
	PGresult *res = NULL;
	int64_t n = -1;

	if (nexsrv_db_exec(conn, sql, 0, NULL, &res, &err) == 1)
		nexsrv_db_get_int64(res, 0, 0, &n, &err);
	PQclear(res);
	return n;
}

static void test_pipeline(void **state)
{
	struct nx_err err = { "" };
	struct pipe_ctx p = { "", false };
	struct nexsrv_db *db;
	struct nexsrv_db_stmt st[NEXSRV_DB_PIPELINE_MAX + 1] = { { .sql = "SELECT 1" } };
	const char *dup[] = { "7" };
	PGconn *conn;

	(void)state;
	NEED_DB();
	db = open_test_db(1);
	conn = nexsrv_db_acquire(db, 1000, &err);
	assert_non_null(conn);
	must(conn, "CREATE TABLE pipe_t (n int PRIMARY KEY)");

	/* Statements and COMMIT in one round trip; the transaction's own COMMIT is not sent
	 * again, and the first statement carried the BEGIN of the level asked for. */
	assert_int_equal(nexsrv_db_run_txn(conn, NEXSRV_DB_SERIALIZABLE, pipe_body, &p, &err), 5);
	assert_string_equal(p.isolation, "serializable");
	assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
	assert_int_equal(count_rows(conn, "SELECT count(*) FROM pipe_t"), 3);

	/* A failure stops the pipeline and rolls the whole transaction back. */
	must(conn, "DELETE FROM pipe_t");
	p.fail_late = true;
	nx_err_clear(&err);
	assert_int_equal(nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, pipe_body, &p, &err),
			 -EINVAL);
	assert_non_null(strstr(err.msg, "division by zero"));
	assert_string_equal(p.isolation, "read committed");
	assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
	assert_int_equal(count_rows(conn, "SELECT count(*) FROM pipe_t"), 0);

	/* A unique violation keeps its errno through the pipeline, outside a transaction too. */
	must(conn, "INSERT INTO pipe_t VALUES (7)");
	st[0] = (struct nexsrv_db_stmt){ .sql = "INSERT INTO pipe_t VALUES ($1::int)",
					 .nparams = 1,
					 .params = dup };
	assert_int_equal(nexsrv_db_pipeline(conn, st, 1, false, &err), -EEXIST);
	assert_null(st[0].res);
	assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);

	/* A transaction that ran nothing sent nothing, and the connection is as it was. */
	assert_int_equal(
		nexsrv_db_run_txn(conn, NEXSRV_DB_READ_COMMITTED, nothing_body, NULL, &err), 0);
	assert_int_equal(PQtransactionStatus(conn), PQTRANS_IDLE);
	assert_int_equal(count_rows(conn, "SELECT count(*) FROM pipe_t"), 1);

	/* Too many statements at once is refused before anything is sent. */
	for (size_t i = 0; i < NEXSRV_DB_PIPELINE_MAX + 1; i++)
		st[i] = (struct nexsrv_db_stmt){ .sql = "SELECT 1" };
	assert_int_equal(nexsrv_db_pipeline(conn, st, NEXSRV_DB_PIPELINE_MAX + 1, false, &err),
			 -EINVAL);
	assert_int_equal(nexsrv_db_pipeline(conn, st, NEXSRV_DB_PIPELINE_MAX, false, &err), 0);
	for (size_t i = 0; i < NEXSRV_DB_PIPELINE_MAX; i++) {
		assert_int_equal(st[i].rows, 1);
		PQclear(st[i].res);
	}
	must(conn, "DROP TABLE pipe_t");
	nexsrv_db_release(db, conn);
	nexsrv_db_close(db);
}

/* What the listener callback saw. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int connects;
	int count;
	char last[512];
} seen = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, "" };

static void on_notify(const char *payload, void *arg)
{
	pthread_mutex_lock(&seen.lock);
	if (payload) {
		seen.count++;
		snprintf(seen.last, sizeof(seen.last), "%s", payload);
	} else {
		seen.connects++;
	}
	pthread_cond_broadcast(&seen.cond);
	pthread_mutex_unlock(&seen.lock);
}

/* Waits up to 10 s until *counter reaches want. */
static bool wait_for(int *counter, int want)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&seen.lock);
	while (*counter < want &&
	       pthread_cond_timedwait(&seen.cond, &seen.lock, &until) != ETIMEDOUT)
		;
	ok = *counter >= want;
	pthread_mutex_unlock(&seen.lock);
	return ok;
}

/* Polls a one-number query on conn until it returns want (10 s at most). */
static bool poll_count(PGconn *conn, const char *sql, int64_t want)
{
	struct timespec pause = { .tv_nsec = 50 * 1000000L };

	for (int i = 0; i < 200; i++) {
		if (count_rows(conn, sql) == want)
			return true;
		nanosleep(&pause, NULL);
	}
	return false;
}

#define LISTEN_APP "nexsrv-listen-test"

static void test_listen(void **state)
{
	struct nexsrv_db_options opts = { .size = 1, .check_ms = 100, .retry_max_ms = 200 };
	struct nx_err err = { "" };
	struct nexsrv_db_listener *l;
	struct nexsrv_db *db, *ldb;
	char conninfo[1024];
	PGconn *conn;

	(void)state;
	NEED_DB();
	db = open_test_db(1);
	conn = nexsrv_db_acquire(db, 1000, &err);
	assert_non_null(conn);

	/* The listener on a pool of its own, named so that its backends can be found, with
	 * a short health period so that it pings while idle. */
	snprintf(conninfo, sizeof(conninfo), "%s application_name=" LISTEN_APP, test_db());
	ldb = nexsrv_db_open_opts(conninfo, &opts, &err);
	assert_non_null(ldb);
	l = nexsrv_db_listen(ldb, NEXSRV_DB_CHANGES_CHANNEL, on_notify, NULL, &err);
	assert_non_null(l);
	assert_true(wait_for(&seen.connects, 1));
	assert_true(nexsrv_db_listener_connected(l));

	must(conn, "NOTIFY " NEXSRV_DB_CHANGES_CHANNEL ", 'hello'");
	assert_true(wait_for(&seen.count, 1));
	pthread_mutex_lock(&seen.lock);
	assert_string_equal(seen.last, "hello");
	pthread_mutex_unlock(&seen.lock);

	/* The schema's triggers announce changes on the channel. */
	must(conn, "INSERT INTO users (id, idp_subject, username) VALUES ('" USER2 "', 's', 'u')");
	must(conn, "INSERT INTO organizations (id, name, owner_id) VALUES ('" USER2
		   "', 'o', '" USER2 "')");
	must(conn, "INSERT INTO vpcs (id, organization_id) VALUES ('" USER2 "', '" USER2 "')");
	assert_true(wait_for(&seen.count, 2));
	pthread_mutex_lock(&seen.lock);
	assert_non_null(strstr(seen.last, "\"kind\" : \"vpc\""));
	assert_non_null(strstr(seen.last, "\"type\" : \"change\""));
	assert_non_null(strstr(seen.last, USER2));
	pthread_mutex_unlock(&seen.lock);

	/* Idle, the listener pings (as the health thread does): both last ran SELECT 1. */
	assert_true(poll_count(
		conn,
		"SELECT count(*) FROM pg_stat_activity WHERE application_name = '" LISTEN_APP
		"' AND query = 'SELECT 1'",
		2));
	pthread_mutex_lock(&seen.lock);
	assert_int_equal(seen.connects, 1);
	pthread_mutex_unlock(&seen.lock);

	/* Its backend is killed: it reconnects, says so, and listens again. */
	must(conn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
		   "application_name = '" LISTEN_APP "'");
	assert_true(wait_for(&seen.connects, 2));
	assert_true(nexsrv_db_listener_connected(l));
	must(conn, "NOTIFY " NEXSRV_DB_CHANGES_CHANNEL ", 'again'");
	assert_true(wait_for(&seen.count, 3));
	pthread_mutex_lock(&seen.lock);
	assert_string_equal(seen.last, "again");
	pthread_mutex_unlock(&seen.lock);

	nexsrv_db_release(db, conn);
	nexsrv_db_listener_free(l);
	nexsrv_db_listener_free(NULL);
	nexsrv_db_close(ldb);
	nexsrv_db_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* without a server */
		cmocka_unit_test(test_embedded),
		cmocka_unit_test(test_describe),
		cmocka_unit_test(test_sqlstate),
		cmocka_unit_test(test_bytea_param),
		cmocka_unit_test(test_open_invalid),
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_listen_bad_channel),
		/* with NEXSRV_TEST_DB */
		cmocka_unit_test(test_migrate),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_queries),
		cmocka_unit_test(test_transactions),
		cmocka_unit_test(test_pipeline),
		cmocka_unit_test(test_listen),
	};
	const size_t offline = 7;

	/* Not cmocka's skip(): its TAP says "not ok ... # SKIP", which counts as a failure. */
	if (!test_db())
		fprintf(stderr,
			"test_nexsrv_db: NEXSRV_TEST_DB not set: the %zu tests that need "
			"a server are left out\n",
			sizeof(tests) / sizeof(tests[0]) - offline);
	return _cmocka_run_group_tests("test_nexsrv_db", tests,
				       test_db() ? sizeof(tests) / sizeof(tests[0]) : offline, NULL,
				       NULL);
}
