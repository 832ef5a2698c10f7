/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv's database layer on libpq: a thread-safe connection pool that HTTP handler threads
 * borrow from, a health state for /private/ready that a small thread of its own keeps up to
 * date (no main loop needed), query and transaction helpers that turn PostgreSQL errors into
 * an errno and a sentence, LISTEN connections for the watch fan-out across replicas, and the
 * schema migrations built into the binary.
 *
 * nexsrv_db.c       pool, health, queries, transactions, LISTEN
 * nexsrv_migrate.c  migrations (their SQL: nexsrv/migrations/NNNN_name.sql, embedded by
 *                   tools/embed-sql)
 *
 * The conninfo may carry a password: it is never logged; messages name the database by
 * nexsrv_db_target() (host, port, dbname, user).
 */
#ifndef NEXSRV_DB_H
#define NEXSRV_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/errmsg.h"

struct json_object;

/* --- the pool ------------------------------------------------------------------------------ */

struct nexsrv_db;

/*
 * A gate must succeed once on a fresh connection before the pool hands out any connection
 * (nexsrv uses it to migrate the schema).  It returns 0 or a negative errno with err set,
 * and must leave the connection idle (no transaction open).
 */
typedef int (*nexsrv_db_gate_fn)(PGconn *conn, void *arg, struct nx_err *err);

#define NEXSRV_DB_DEFAULT_SIZE		    8
#define NEXSRV_DB_DEFAULT_CONNECT_TIMEOUT_S 5
#define NEXSRV_DB_DEFAULT_CHECK_MS	    2000
#define NEXSRV_DB_DEFAULT_RETRY_MAX_MS	    5000

struct nexsrv_db_options {
	unsigned size;		    /* pooled connections (opened on demand); 0: default */
	unsigned connect_timeout_s; /* unless the conninfo sets connect_timeout; 0: default */
	unsigned check_ms;	    /* health check period while up; 0: default */
	unsigned retry_max_ms;	    /* reconnect backoff ceiling (from 100 ms, doubling) */
	nexsrv_db_gate_fn gate;	    /* optional */
	void *gate_arg;
	const char *gate_name; /* for messages, e.g. "schema migration" */
};

enum nexsrv_db_state {
	NEXSRV_DB_STARTING,    /* not yet reached */
	NEXSRV_DB_READY,       /* answers, gate passed: connections are handed out */
	NEXSRV_DB_DOWN,	       /* does not answer; being retried */
	NEXSRV_DB_GATE_FAILED, /* answers, but the gate failed; being retried */
};

/*
 * Opens a pool on conninfo (libpq key=value or URI).  It tries to connect once, at most the
 * connect timeout, on the calling thread: when the database answers, the gate runs there
 * and its failure fails the open (with the gate's message); when it does not answer, the
 * pool is returned anyway, not ready, and a background thread keeps trying (with backoff),
 * running the gate as soon as it gets through.  NULL with err set when conninfo does not
 * parse or on resource exhaustion.
 */
struct nexsrv_db *nexsrv_db_open(const char *conninfo, unsigned size, struct nx_err *err);
struct nexsrv_db *nexsrv_db_open_opts(const char *conninfo, const struct nexsrv_db_options *opts,
				      struct nx_err *err);

/* Stops the health thread, closes every connection (all must have been released), frees. */
void nexsrv_db_close(struct nexsrv_db *db);

/*
 * Borrows a connection, waiting up to timeout_ms for one to be free; connects it if needed
 * (a broken one is reset).  NULL with err set when the database is not ready, the pool is
 * exhausted or the connection fails.  Give it back with nexsrv_db_release() on every path,
 * outside any transaction (a transaction left open is rolled back there).
 */
PGconn *nexsrv_db_acquire(struct nexsrv_db *db, unsigned timeout_ms, struct nx_err *err);
void nexsrv_db_release(struct nexsrv_db *db, PGconn *conn);

/* Whether the database answers and the gate has passed (cheap: no I/O). */
bool nexsrv_db_ready(struct nexsrv_db *db);

/* The state and, when not ready, why (msg may be NULL). */
enum nexsrv_db_state nexsrv_db_state(struct nexsrv_db *db, char *msg, size_t size);
const char *nexsrv_db_state_name(enum nexsrv_db_state state);

/* A readiness check for /private/ready (nexsrv_ready_fn of nexsrv_http.h; arg is the pool):
 * true when ready, else false with the state ("database down") in why; the details are in
 * the log, not for unauthenticated callers. */
bool nexsrv_db_ready_check(void *arg, char *why, size_t why_size);

/* Asks the health thread to check now (e.g. after a query failed for a lost connection). */
void nexsrv_db_check_now(struct nexsrv_db *db);

/* "host=... port=... dbname=... user=...", never the password: what messages name. */
const char *nexsrv_db_target(const struct nexsrv_db *db);

/*
 * Writes the same description for any conninfo into buf (at most size - 1 characters),
 * or "(invalid conninfo)" when it does not parse; returns buf.
 */
char *nexsrv_db_describe(const char *conninfo, char *buf, size_t size);

/* --- queries ------------------------------------------------------------------------------- */

/*
 * Runs one parameterised statement ($1, $2, ...; params[i] NULL is SQL NULL; text format).
 * Returns the number of rows returned (or affected, for INSERT/UPDATE/DELETE) or a negative
 * errno with err set from PostgreSQL's message:
 *   -EEXIST     unique violation          -ENOENT   foreign key violation
 *   -EINVAL     check / not-null / invalid input (22xxx)
 *   -EAGAIN     serialization failure or deadlock: retry the transaction
 *   -EBUSY      lock not available        -ETIMEDOUT statement timeout / cancel
 *   -ENOTCONN   the connection is lost    -EIO      anything else
 *   -ENOSPC     nexsrv's own NXI01: no address at an address pool's cursor
 * With res non-NULL the result is stored there on success (PQclear it) and NULL on error.
 */
int nexsrv_db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   PGresult **res, struct nx_err *err);

/* One statement of nexsrv_db_pipeline(): what to run, and what it gave. */
struct nexsrv_db_stmt {
	const char *sql;
	int nparams;
	const char *const *params;
	PGresult *res; /* its result (PQclear it); NULL when the pipeline failed */
	int rows;      /* rows returned or affected, as nexsrv_db_exec() returns them */
};

#define NEXSRV_DB_PIPELINE_MAX 8

/*
 * Runs the n statements (at most NEXSRV_DB_PIPELINE_MAX) one after the other as
 * nexsrv_db_exec() would, but in one round trip to the server (libpq's pipeline mode); with
 * commit, inside a transaction, COMMIT follows them in the same round trip: the transaction
 * of nexsrv_db_run_txn() is then over, and its body must not fail after it.  A statement that
 * fails stops the ones after it (and fails the transaction).  0, or the first failure's
 * negative errno (as nexsrv_db_exec()) with err set and every res NULL.
 */
int nexsrv_db_pipeline(PGconn *conn, struct nexsrv_db_stmt *st, size_t n, bool commit,
		       struct nx_err *err);

/* The errno nexsrv_db_exec() uses for a SQLSTATE (5 characters; NULL -> -EIO). */
int nexsrv_db_sqlstate_errno(const char *sqlstate);

/* Column number of name in res, or -1. */
int nexsrv_db_col(const PGresult *res, const char *name);

/* Typed reads of a text-format result.  A NULL value is -ENODATA; an out-of-range row or
 * column -ERANGE; a value of the wrong shape -EINVAL.  err names the column. */
bool nexsrv_db_is_null(const PGresult *res, int row, int col);
const char *nexsrv_db_text(const PGresult *res, int row, int col); /* NULL for SQL NULL */
int nexsrv_db_get_int64(const PGresult *res, int row, int col, int64_t *out, struct nx_err *err);
int nexsrv_db_get_bool(const PGresult *res, int row, int col, bool *out, struct nx_err *err);
/* bytea into buf: returns its length (> size: -ENOSPC). */
int nexsrv_db_get_bytea(const PGresult *res, int row, int col, uint8_t *buf, size_t size,
			struct nx_err *err);
/* json/jsonb: a new json-c object (json_object_put it); JSON null gives *out NULL. */
int nexsrv_db_get_json(const PGresult *res, int row, int col, struct json_object **out,
		       struct nx_err *err);

/* A bytea parameter in text form: "\x" and two hex digits per byte, NUL-terminated (for
 * the token hashes of nexsrv_token.h, the only form secrets are stored in). */
#define NEXSRV_DB_BYTEA_PARAM_SIZE(n) (2 + 2 * (n) + 1)

/* Writes len bytes as a bytea text parameter; returns its length or -ENOSPC. */
int nexsrv_db_bytea_param(const uint8_t *data, size_t len, char *buf, size_t size);

/* --- transactions -------------------------------------------------------------------------- */

enum nexsrv_db_isolation {
	NEXSRV_DB_READ_COMMITTED,
	NEXSRV_DB_REPEATABLE_READ,
	NEXSRV_DB_SERIALIZABLE,
};

int nexsrv_db_begin(PGconn *conn, enum nexsrv_db_isolation iso, struct nx_err *err);
/* Commits; a transaction that had failed is rolled back and reported (-EIO, or -EAGAIN for
 * a serialization failure detected at commit). */
int nexsrv_db_commit(PGconn *conn, struct nx_err *err);
/* Best effort; leaves the connection idle or broken (then release resets it). */
void nexsrv_db_rollback(PGconn *conn);

/* The body of a transaction: returns >= 0 to commit (that value is passed back), < 0 to roll
 * back.  -EAGAIN (from nexsrv_db_exec) makes the whole transaction run again. */
typedef int (*nexsrv_db_txn_fn)(PGconn *conn, void *arg, struct nx_err *err);

#define NEXSRV_DB_TXN_ATTEMPTS	     5
#define NEXSRV_DB_ACQUIRE_TIMEOUT_MS 5000

/* Runs fn in a transaction on conn, again (with a short random pause) after a serialization
 * failure or a deadlock, up to NEXSRV_DB_TXN_ATTEMPTS times. */
int nexsrv_db_run_txn(PGconn *conn, enum nexsrv_db_isolation iso, nexsrv_db_txn_fn fn, void *arg,
		      struct nx_err *err);
/* The same on a connection borrowed from db (NEXSRV_DB_ACQUIRE_TIMEOUT_MS) for the duration. */
int nexsrv_db_transaction(struct nexsrv_db *db, enum nexsrv_db_isolation iso, nexsrv_db_txn_fn fn,
			  void *arg, struct nx_err *err);

/* --- LISTEN -------------------------------------------------------------------------------- */

struct nexsrv_db_listener;

/*
 * Called on the listener's own thread with each notification's payload, and with payload
 * NULL each time the listener has (re)connected and issued LISTEN: notifications sent while
 * it was away are lost, so a NULL means "resynchronise from the database".
 */
typedef void (*nexsrv_db_notify_fn)(const char *payload, void *arg);

/*
 * Starts a thread holding a connection of its own (outside the pool) that LISTENs on
 * channel (1 to 63 bytes) and calls fn; it reconnects with backoff and LISTENs again after
 * the database went away.  NULL with err set on a bad channel or resource exhaustion.
 */
struct nexsrv_db_listener *nexsrv_db_listen(struct nexsrv_db *db, const char *channel,
					    nexsrv_db_notify_fn fn, void *arg, struct nx_err *err);
/* Whether it currently holds a connection that LISTENs. */
bool nexsrv_db_listener_connected(struct nexsrv_db_listener *l);
/* Stops the thread (fn is not called after this returns) and frees. */
void nexsrv_db_listener_free(struct nexsrv_db_listener *l);

/* The channel the schema's triggers notify: {"kind","type","vpc_id","revision"}. */
#define NEXSRV_DB_CHANGES_CHANNEL "nexodus_changes"

/* --- migrations (nexsrv_migrate.c) --------------------------------------------------------- */

struct nexsrv_migration {
	unsigned version; /* 1, 2, 3, ... */
	const char *name; /* "0001_initial" */
	const char *sql;
};

/* Generated from nexsrv/migrations/ by tools/embed-sql, in version order. */
extern const struct nexsrv_migration nexsrv_migrations[];
extern const size_t nexsrv_migrations_count;

/* The newest version this nexsrv knows. */
unsigned nexsrv_migrate_latest(void);

/*
 * Brings the schema to the newest version: in one transaction, under an advisory lock (so
 * replicas starting together migrate once), applies every migration newer than the highest
 * version recorded in schema_version and records each.  Returns the number applied, or a
 * negative errno with err set; nothing is changed then:
 *   -EPROTO   "database schema N is newer than this nexsrv knows (M); upgrade nexsrv"
 *   -ENOTCONN the connection was lost
 *   others    a migration failed (err names it and gives PostgreSQL's message)
 */
int nexsrv_migrate(PGconn *conn, struct nx_err *err);

/* The same against another list (tests). */
int nexsrv_migrate_list(PGconn *conn, const struct nexsrv_migration *list, size_t n,
			struct nx_err *err);

/* nexsrv_migrate() as a pool gate (arg unused). */
int nexsrv_migrate_gate(PGconn *conn, void *arg, struct nx_err *err);

#endif /* NEXSRV_DB_H */
