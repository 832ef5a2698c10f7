/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexsrv's libpq connection pool, its health thread, the query and transaction helpers and
 * the LISTEN threads (see nexsrv_db.h).
 *
 * HTTP handlers run on libmicrohttpd's threads and block on the database, so the pool is a
 * plain mutex + condition variable over a fixed array of slots; connections open on demand.
 * Whether the database answers is found out by one small thread that pings it every few
 * seconds while it is up and reconnects with backoff while it is down, so that
 * /private/ready is a memory read and no request waits for a connect timeout to learn the
 * database is gone.  The same thread passes the gate (schema migration) once the database
 * is first reached, if it was not reachable at start-up.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libpq-events.h>

#include "lib/log.h"
#include "lib/strutil.h"
#include "nexsrv/nexsrv_db.h"

NX_DEBUG_DECLARE(nexsrv_database);

#define RETRY_MIN_MS 100

struct slot {
	PGconn *conn; /* NULL: not connected */
	bool busy;
};

struct nexsrv_db {
	char *conninfo; /* a secret: zeroed before it is freed */
	char target[256];
	unsigned connect_timeout_s;
	unsigned check_ms;
	unsigned retry_max_ms;
	nexsrv_db_gate_fn gate;
	void *gate_arg;
	const char *gate_name;

	pthread_mutex_t lock;
	pthread_cond_t freed; /* a slot became free (or the pool closes) */
	pthread_cond_t wake;  /* the health thread has something to do */
	struct slot *slots;
	unsigned size;
	enum nexsrv_db_state state;
	char why[NX_ERR_MAX]; /* why not ready */
	bool gate_passed;
	bool check_requested;
	bool stopping;
	pthread_t checker;
	bool checker_started;
};

/* --- small helpers -------------------------------------------------------------------------- */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int rc;

	if (pthread_condattr_init(&attr) != 0)
		return -ENOMEM;
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	rc = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return rc ? -rc : 0;
}

/* Threads of this module take no signals: they belong to the main loop. */
static int start_thread(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -rc;
}

/* PostgreSQL's messages end in a newline and may go on over indented lines: one line,
 * control characters replaced. */
static void one_line(char *dst, size_t size, const char *src)
{
	size_t n = 0;
	bool space = false;

	if (size == 0)
		return;
	for (; src && *src && n + 1 < size; src++) {
		unsigned char c = (unsigned char)*src;

		if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
			space = n > 0;
			continue;
		}
		if (space) {
			dst[n++] = ' ';
			space = false;
			if (n + 1 >= size)
				break;
		}
		dst[n++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	dst[n] = '\0';
}

static void notice_processor(void *arg, const char *message)
{
	char line[NX_ERR_MAX];

	if (!nx_debug_on(&dbg_nexsrv_database))
		return;
	one_line(line, sizeof(line), message);
	nx_debug(&dbg_nexsrv_database, "server says: %s", line);
}

char *nexsrv_db_describe(const char *conninfo, char *buf, size_t size)
{
	static const char *const shown[] = { "host", "hostaddr", "port", "dbname", "user" };
	PQconninfoOption *opts;
	struct nx_sbuf b;
	char *errmsg = NULL;

	nx_sbuf_init(&b, buf, size);
	opts = PQconninfoParse(conninfo ? conninfo : "", &errmsg);
	if (!opts) {
		/* The message may quote part of the string, password included: not shown. */
		PQfreemem(errmsg);
		nx_sbuf_puts(&b, "(invalid conninfo)");
		return buf;
	}
	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
		for (PQconninfoOption *o = opts; o->keyword; o++)
			if (strcmp(o->keyword, shown[i]) == 0 && o->val && o->val[0] &&
			    strchr(o->dispchar, '*') == NULL)
				nx_sbuf_printf(&b, "%s%s=%s", nx_sbuf_len(&b) ? " " : "",
					       o->keyword, o->val);
	if (nx_sbuf_len(&b) == 0)
		nx_sbuf_puts(&b, "(libpq defaults)");
	PQconninfoFree(opts);
	return buf;
}

const char *nexsrv_db_target(const struct nexsrv_db *db)
{
	return db ? db->target : "(none)";
}

/* A new connection, or NULL with err set (-ENOTCONN: the database did not accept it). */
/* --- prepared statements ------------------------------------------------------------------
 *
 * Every statement with parameters is prepared on first use on each connection and executed
 * by name from then on: the server parses it once per connection, and after a few runs
 * plans it once too, instead of on every call (what an enrolment spent most of its
 * database time on).  A plan made once for all parameter values suits the tables as they
 * were then: one made while a table was small (a fresh database) could read every device of
 * a VPC where an index finds one after the table has grown.  So a statement is prepared
 * again after 64, 256, 1024, ... runs, and its plan chosen anew, at a cost that shrinks
 * with its use.  The cache lives with the connection (libpq instance data), is used by one
 * thread at a time like the connection itself, and is forgotten when the connection is
 * reset or closed.  When it is full, or a statement cannot be prepared, the statement runs
 * unprepared as before.
 */

#define STMT_SLOTS	  512 /* a power of two; at most STMT_MAX of them used */
#define STMT_MAX	  384
#define STMT_RENEW_FIRST  64	     /* runs before a statement is first prepared again */
#define STMT_RENEW_FACTOR 4	     /* ... then after this many times as many */
#define STMT_RENEW_LAST	  (1u << 22) /* ... and no more after this many */

/* What nexsrv keeps with each connection: its prepared statements, and where its
 * transaction is (see "transactions" below). */
struct conn_state {
	unsigned n;
	struct stmt_slot {
		char *sql; /* NULL: free */
		uint32_t hash;
		unsigned id;
		unsigned runs, renew_at;
		bool broken; /* could not be prepared again: runs unprepared */
	} slot[STMT_SLOTS];
	const char *begin; /* a BEGIN not sent yet: it goes with the first statement */
	bool committed;	   /* the transaction was committed with its last statements */
};

static uint32_t stmt_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static void conn_state_clear(struct conn_state *c)
{
	for (unsigned i = 0; i < STMT_SLOTS; i++) {
		free(c->slot[i].sql);
		c->slot[i].sql = NULL;
	}
	c->n = 0;
	c->begin = NULL;
	c->committed = false;
}

static int conn_event(PGEventId id, void *info, void *pass)
{
	(void)pass;
	if (id == PGEVT_REGISTER) {
		PGEventRegister *e = info;
		struct conn_state *c = calloc(1, sizeof(*c));

		return c && PQsetInstanceData(e->conn, conn_event, c);
	}
	if (id == PGEVT_CONNRESET) {
		PGEventConnReset *e = info;
		struct conn_state *c = PQinstanceData(e->conn, conn_event);

		if (c)
			conn_state_clear(c);
	} else if (id == PGEVT_CONNDESTROY) {
		PGEventConnDestroy *e = info;
		struct conn_state *c = PQinstanceData(e->conn, conn_event);

		if (c) {
			conn_state_clear(c);
			free(c);
		}
	}
	return 1;
}

static struct conn_state *conn_state(PGconn *conn)
{
	return PQinstanceData(conn, conn_event);
}

/* The name sql is prepared under on conn (preparing it now if need be) into name: 1, 0 when
 * it is to run unprepared, or -1 when it cannot be prepared: *failed is then the result that
 * says why (the statement itself would have failed the same way). */
static int stmt_prepared(PGconn *conn, const char *sql, int nparams, char *name, size_t size,
			 PGresult **failed)
{
	struct conn_state *c = conn_state(conn);
	uint32_t h;
	unsigned i;
	PGresult *r;

	if (!c || nparams <= 0 || PQtransactionStatus(conn) == PQTRANS_INERROR)
		return 0;
	h = stmt_hash(sql);
	for (i = h & (STMT_SLOTS - 1); c->slot[i].sql; i = (i + 1) & (STMT_SLOTS - 1)) {
		struct stmt_slot *e = &c->slot[i];
		char dealloc[32];

		if (e->hash != h || strcmp(e->sql, sql) != 0)
			continue;
		if (e->broken)
			return 0;
		snprintf(name, size, "nx%u", e->id);
		if (++e->runs < e->renew_at || e->renew_at >= STMT_RENEW_LAST)
			return 1;
		/* Time to plan it anew (see above). */
		e->renew_at *= STMT_RENEW_FACTOR;
		snprintf(dealloc, sizeof(dealloc), "DEALLOCATE %s", name);
		PQclear(PQexec(conn, dealloc));
		r = PQprepare(conn, name, sql, nparams, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			e->broken = true;
			*failed = r;
			return -1;
		}
		PQclear(r);
		return 1;
	}
	if (c->n >= STMT_MAX)
		return 0;
	snprintf(name, size, "nx%u", c->n);
	r = PQprepare(conn, name, sql, nparams, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		*failed = r;
		return -1;
	}
	PQclear(r);
	/* Out of memory: prepared but not remembered, so the name is not used again. */
	if (!(c->slot[i].sql = strdup(sql))) {
		c->n++;
		return 1;
	}
	c->slot[i].hash = h;
	c->slot[i].id = c->n++;
	c->slot[i].runs = 1;
	c->slot[i].renew_at = STMT_RENEW_FIRST;
	c->slot[i].broken = false;
	return 1;
}

static PGconn *db_connect(struct nexsrv_db *db, struct nx_err *err)
{
	char timeout[16];
	char msg[NX_ERR_MAX];
	/* Defaults first: the conninfo (expanded from dbname) overrides them. */
	const char *const keys[] = { "connect_timeout", "fallback_application_name", "dbname",
				     NULL };
	const char *const vals[] = { timeout, "nexsrv", db->conninfo, NULL };
	PGconn *conn;

	snprintf(timeout, sizeof(timeout), "%u", db->connect_timeout_s);
	conn = PQconnectdbParams(keys, vals, 1);
	if (!conn) {
		nx_err_set(err, ENOMEM, "database %s: out of memory", db->target);
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		one_line(msg, sizeof(msg), PQerrorMessage(conn));
		PQfinish(conn);
		nx_err_set(err, ENOTCONN, "%s", msg);
		return NULL;
	}
	PQsetNoticeProcessor(conn, notice_processor, NULL);
	if (!PQregisterEventProc(conn, conn_event, "nexsrv connection state", NULL))
		nx_debug(&dbg_nexsrv_database, "no statement cache on this connection");
	nx_debug(&dbg_nexsrv_database, "connected to %s (server %d, backend pid %d)", db->target,
		 PQserverVersion(conn), PQbackendPID(conn));
	return conn;
}

static bool conn_ok(PGconn *conn)
{
	return conn && PQstatus(conn) == CONNECTION_OK;
}

/* "SELECT 1" that gives up after timeout_ms (a server that stopped answering on a live TCP
 * connection would block PQexec for ever).  0, or -ENOTCONN with err set; the connection is
 * not usable after a failure.  Notifications read meanwhile stay queued for PQnotifies(). */
static int ping(PGconn *conn, unsigned timeout_ms, struct nx_err *err)
{
	uint64_t deadline = mono_ms() + timeout_ms;
	char msg[NX_ERR_MAX];
	PGresult *res;
	bool ok = true;

	if (!PQsendQuery(conn, "SELECT 1"))
		goto fail;
	while (PQisBusy(conn)) {
		struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
		uint64_t now = mono_ms();
		int n;

		if (now >= deadline)
			return nx_err_set(err, ENOTCONN, "no answer within %u ms", timeout_ms);
		n = poll(&pfd, 1, (int)(deadline - now));
		if (n < 0 && errno != EINTR)
			return nx_err_set(err, ENOTCONN, "poll: %s", strerror(errno));
		if (n > 0 && !PQconsumeInput(conn))
			goto fail;
	}
	while ((res = PQgetResult(conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_TUPLES_OK)
			ok = false;
		PQclear(res);
	}
	if (ok && conn_ok(conn))
		return 0;
fail:
	one_line(msg, sizeof(msg), PQerrorMessage(conn));
	return nx_err_set(err, ENOTCONN, "%s", msg[0] ? msg : "health check failed");
}

/* --- health -------------------------------------------------------------------------------- */

const char *nexsrv_db_state_name(enum nexsrv_db_state state)
{
	switch (state) {
	case NEXSRV_DB_STARTING:
		return "starting";
	case NEXSRV_DB_READY:
		return "ready";
	case NEXSRV_DB_DOWN:
		return "down";
	case NEXSRV_DB_GATE_FAILED:
		return "gate-failed";
	}
	return "unknown";
}

/* With the lock held: records a state, logging transitions (and a changed reason). */
static void set_state(struct nexsrv_db *db, enum nexsrv_db_state state, const char *why)
{
	bool changed = state != db->state || strcmp(why ? why : "", db->why) != 0;

	if (changed) {
		if (state == NEXSRV_DB_READY)
			nx_notice("database %s: ready", db->target);
		else if (state == NEXSRV_DB_GATE_FAILED)
			nx_err("database %s: %s failed: %s", db->target, db->gate_name, why);
		else if (state == NEXSRV_DB_DOWN)
			nx_warn("database %s: not available, retrying: %s", db->target, why);
	}
	__atomic_store_n(&db->state, state, __ATOMIC_RELEASE);
	nx_strlcpy(db->why, why ? why : "", sizeof(db->why));
}

bool nexsrv_db_ready(struct nexsrv_db *db)
{
	return db && __atomic_load_n(&db->state, __ATOMIC_ACQUIRE) == NEXSRV_DB_READY;
}

enum nexsrv_db_state nexsrv_db_state(struct nexsrv_db *db, char *msg, size_t size)
{
	enum nexsrv_db_state state;

	pthread_mutex_lock(&db->lock);
	state = db->state;
	if (msg && size)
		nx_strlcpy(msg, db->why, size);
	pthread_mutex_unlock(&db->lock);
	return state;
}

bool nexsrv_db_ready_check(void *arg, char *why, size_t why_size)
{
	struct nexsrv_db *db = arg;
	enum nexsrv_db_state state = db ? nexsrv_db_state(db, NULL, 0) : NEXSRV_DB_DOWN;

	if (state == NEXSRV_DB_READY) {
		if (why_size)
			why[0] = '\0';
		return true;
	}
	if (state == NEXSRV_DB_GATE_FAILED)
		snprintf(why, why_size, "database %s failed", db->gate_name);
	else
		snprintf(why, why_size, "database %s", nexsrv_db_state_name(state));
	return false;
}

void nexsrv_db_check_now(struct nexsrv_db *db)
{
	pthread_mutex_lock(&db->lock);
	db->check_requested = true;
	pthread_cond_signal(&db->wake);
	pthread_mutex_unlock(&db->lock);
}

/* Runs the gate on conn: 0, or the gate's error (-ENOTCONN when the connection died). */
static int run_gate(struct nexsrv_db *db, PGconn *conn, struct nx_err *err)
{
	int rc;

	if (!db->gate)
		return 0;
	rc = db->gate(conn, db->gate_arg, err);
	if (rc < 0 && !conn_ok(conn))
		rc = -ENOTCONN;
	if (conn_ok(conn) && PQtransactionStatus(conn) != PQTRANS_IDLE)
		nexsrv_db_rollback(conn);
	return rc;
}

/* Closes the idle pooled connections: after an outage they are most likely dead. */
static void drop_idle(struct nexsrv_db *db)
{
	PGconn *dead[32];
	size_t n;

	do { /* a batch at a time, closed outside the lock */
		n = 0;
		pthread_mutex_lock(&db->lock);
		for (unsigned i = 0; i < db->size && n < sizeof(dead) / sizeof(dead[0]); i++) {
			struct slot *s = &db->slots[i];

			if (!s->busy && s->conn) {
				dead[n++] = s->conn;
				s->conn = NULL;
			}
		}
		pthread_mutex_unlock(&db->lock);
		for (size_t i = 0; i < n; i++)
			PQfinish(dead[i]);
	} while (n == sizeof(dead) / sizeof(dead[0]));
}

/* One check with the health thread's own connection *connp: 0 when up and gated. */
static int check_once(struct nexsrv_db *db, PGconn **connp, bool gated, struct nx_err *err)
{
	int rc;

	if (*connp && !conn_ok(*connp)) {
		PQfinish(*connp);
		*connp = NULL;
	}
	if (!*connp) {
		*connp = db_connect(db, err);
		if (!*connp)
			return -ENOTCONN;
	}
	if (!gated) {
		rc = run_gate(db, *connp, err);
		if (rc < 0)
			return rc;
		return 0;
	}
	rc = ping(*connp, db->connect_timeout_s * 1000, err);
	if (rc < 0) {
		PQfinish(*connp);
		*connp = NULL;
	}
	return rc;
}

static void *checker_main(void *arg)
{
	struct nexsrv_db *db = arg;
	PGconn *conn = NULL;
	unsigned backoff = 0;
	struct nx_err err;

	pthread_mutex_lock(&db->lock);
	while (!db->stopping) {
		bool gated = db->gate_passed;
		bool was_ready = db->state == NEXSRV_DB_READY;
		unsigned wait_ms;
		struct timespec until;
		int rc;

		pthread_mutex_unlock(&db->lock);
		nx_err_clear(&err);
		rc = check_once(db, &conn, gated, &err);
		if (rc < 0 && was_ready)
			drop_idle(db);
		pthread_mutex_lock(&db->lock);
		if (db->stopping)
			break;
		if (rc == 0) {
			if (!gated)
				db->gate_passed = true;
			set_state(db, NEXSRV_DB_READY, NULL);
			backoff = 0;
			wait_ms = db->check_ms;
		} else {
			set_state(db, rc == -ENOTCONN ? NEXSRV_DB_DOWN : NEXSRV_DB_GATE_FAILED,
				  err.msg);
			backoff = backoff ? backoff * 2 : RETRY_MIN_MS;
			if (backoff > db->retry_max_ms)
				backoff = db->retry_max_ms;
			wait_ms = backoff;
		}
		deadline_after(&until, wait_ms);
		while (!db->stopping && !db->check_requested &&
		       pthread_cond_timedwait(&db->wake, &db->lock, &until) != ETIMEDOUT)
			;
		db->check_requested = false;
	}
	pthread_mutex_unlock(&db->lock);
	PQfinish(conn);
	return NULL;
}

/* --- the pool ------------------------------------------------------------------------------ */

struct nexsrv_db *nexsrv_db_open(const char *conninfo, unsigned size, struct nx_err *err)
{
	struct nexsrv_db_options opts = { .size = size };

	return nexsrv_db_open_opts(conninfo, &opts, err);
}

static void db_free(struct nexsrv_db *db)
{
	if (!db)
		return;
	for (unsigned i = 0; db->slots && i < db->size; i++)
		PQfinish(db->slots[i].conn);
	free(db->slots);
	if (db->conninfo) {
		nx_memzero_explicit(db->conninfo, strlen(db->conninfo));
		free(db->conninfo);
	}
	pthread_cond_destroy(&db->wake);
	pthread_cond_destroy(&db->freed);
	pthread_mutex_destroy(&db->lock);
	free(db);
}

struct nexsrv_db *nexsrv_db_open_opts(const char *conninfo, const struct nexsrv_db_options *opts,
				      struct nx_err *err)
{
	PQconninfoOption *parsed;
	struct nexsrv_db *db;
	struct nx_err cerr;
	char *errmsg = NULL;
	PGconn *conn;
	int rc;

	if (!conninfo || !conninfo[0]) {
		nx_err_set(err, EINVAL, "database: empty connection string");
		return NULL;
	}
	parsed = PQconninfoParse(conninfo, &errmsg);
	if (!parsed) {
		PQfreemem(errmsg);
		nx_err_set(err, EINVAL,
			   "database: not a valid libpq connection string (key=value ... or "
			   "postgresql://...)");
		return NULL;
	}
	PQconninfoFree(parsed);
	if (!PQisthreadsafe()) {
		nx_err_set(err, ENOTSUP, "database: this libpq is not thread-safe");
		return NULL;
	}

	db = calloc(1, sizeof(*db));
	if (!db) {
		nx_err_set(err, ENOMEM, "database: out of memory");
		return NULL;
	}
	pthread_mutex_init(&db->lock, NULL);
	if (cond_init_monotonic(&db->freed) < 0 || cond_init_monotonic(&db->wake) < 0) {
		nx_err_set(err, ENOMEM, "database: cannot create condition variables");
		free(db);
		return NULL;
	}
	db->size = opts && opts->size ? opts->size : NEXSRV_DB_DEFAULT_SIZE;
	db->connect_timeout_s = opts && opts->connect_timeout_s
					? opts->connect_timeout_s
					: NEXSRV_DB_DEFAULT_CONNECT_TIMEOUT_S;
	db->check_ms = opts && opts->check_ms ? opts->check_ms : NEXSRV_DB_DEFAULT_CHECK_MS;
	db->retry_max_ms =
		opts && opts->retry_max_ms ? opts->retry_max_ms : NEXSRV_DB_DEFAULT_RETRY_MAX_MS;
	if (db->retry_max_ms < RETRY_MIN_MS)
		db->retry_max_ms = RETRY_MIN_MS;
	db->gate = opts ? opts->gate : NULL;
	db->gate_arg = opts ? opts->gate_arg : NULL;
	db->gate_name = opts && opts->gate_name ? opts->gate_name : "preparation";
	db->state = NEXSRV_DB_STARTING;
	db->conninfo = strdup(conninfo);
	db->slots = calloc(db->size, sizeof(*db->slots));
	if (!db->conninfo || !db->slots) {
		nx_err_set(err, ENOMEM, "database: out of memory");
		goto fail;
	}
	nexsrv_db_describe(conninfo, db->target, sizeof(db->target));

	/* One attempt now: a database that answers is gated here, so that a gate failure (a
	 * schema newer than this nexsrv) stops the start-up. */
	nx_err_clear(&cerr);
	conn = db_connect(db, &cerr);
	if (conn) {
		rc = run_gate(db, conn, &cerr);
		if (rc < 0 && rc != -ENOTCONN) {
			PQfinish(conn);
			nx_err_set(err, -rc, "%s", cerr.msg);
			goto fail;
		}
		if (rc == 0) {
			db->gate_passed = true;
			db->slots[0].conn = conn;
			set_state(db, NEXSRV_DB_READY, NULL);
		} else {
			PQfinish(conn);
			set_state(db, NEXSRV_DB_DOWN, cerr.msg);
		}
	} else {
		set_state(db, NEXSRV_DB_DOWN, cerr.msg);
	}

	rc = start_thread(&db->checker, checker_main, db);
	if (rc < 0) {
		nx_err_set(err, -rc, "database: cannot start the health thread: %s", strerror(-rc));
		goto fail;
	}
	db->checker_started = true;
	return db;
fail:
	db_free(db);
	return NULL;
}

void nexsrv_db_close(struct nexsrv_db *db)
{
	if (!db)
		return;
	pthread_mutex_lock(&db->lock);
	db->stopping = true;
	pthread_cond_broadcast(&db->wake);
	pthread_cond_broadcast(&db->freed);
	pthread_mutex_unlock(&db->lock);
	if (db->checker_started)
		pthread_join(db->checker, NULL);
	for (unsigned i = 0; i < db->size; i++)
		if (db->slots[i].busy)
			nx_err("database %s: connection still borrowed at close", db->target);
	db_free(db);
}

PGconn *nexsrv_db_acquire(struct nexsrv_db *db, unsigned timeout_ms, struct nx_err *err)
{
	struct timespec until;
	struct slot *slot = NULL;
	PGconn *conn;

	deadline_after(&until, timeout_ms);
	pthread_mutex_lock(&db->lock);
	for (;;) {
		if (db->stopping) {
			pthread_mutex_unlock(&db->lock);
			nx_err_set(err, ESHUTDOWN, "database: shutting down");
			return NULL;
		}
		if (db->state != NEXSRV_DB_READY) {
			nx_err_set(err, ENOTCONN, "database not ready: %s",
				   db->why[0] ? db->why : nexsrv_db_state_name(db->state));
			pthread_mutex_unlock(&db->lock);
			return NULL;
		}
		/* A free slot, one already connected if there is one. */
		for (unsigned i = 0; i < db->size; i++) {
			struct slot *s = &db->slots[i];

			if (!s->busy && (!slot || (!slot->conn && s->conn)))
				slot = s;
		}
		if (slot)
			break;
		if (pthread_cond_timedwait(&db->freed, &db->lock, &until) == ETIMEDOUT) {
			pthread_mutex_unlock(&db->lock);
			nx_err_set(err, ETIMEDOUT, "database: all %u connections busy for %u ms",
				   db->size, timeout_ms);
			return NULL;
		}
	}
	slot->busy = true;
	conn = slot->conn;
	slot->conn = NULL;
	pthread_mutex_unlock(&db->lock);

	if (conn && !conn_ok(conn)) {
		nx_debug(&dbg_nexsrv_database, "resetting a broken pooled connection");
		PQfinish(conn);
		conn = NULL;
	}
	if (!conn) {
		struct nx_err cerr;

		nx_err_clear(&cerr);
		conn = db_connect(db, &cerr);
		if (!conn) {
			pthread_mutex_lock(&db->lock);
			slot->busy = false;
			db->check_requested = true;
			pthread_cond_signal(&db->wake);
			pthread_cond_signal(&db->freed);
			pthread_mutex_unlock(&db->lock);
			nx_err_set(err, ENOTCONN, "%s", cerr.msg);
			return NULL;
		}
	}
	pthread_mutex_lock(&db->lock);
	slot->conn = conn;
	pthread_mutex_unlock(&db->lock);
	return conn;
}

void nexsrv_db_release(struct nexsrv_db *db, PGconn *conn)
{
	bool broken;

	if (!conn)
		return;
	broken = !conn_ok(conn);
	if (!broken) {
		struct conn_state *cs = conn_state(conn);

		if (cs) { /* a transaction that never sent its BEGIN needs no rollback */
			cs->begin = NULL;
			cs->committed = false;
		}
		switch (PQtransactionStatus(conn)) {
		case PQTRANS_IDLE:
			break;
		case PQTRANS_INTRANS:
		case PQTRANS_INERROR:
			nx_debug(&dbg_nexsrv_database, "connection released inside a transaction: "
						       "rolling back");
			nexsrv_db_rollback(conn);
			broken = !conn_ok(conn) || PQtransactionStatus(conn) != PQTRANS_IDLE;
			break;
		default: /* a query still running, or unknown */
			broken = true;
			break;
		}
	}
	pthread_mutex_lock(&db->lock);
	for (unsigned i = 0; i < db->size; i++) {
		struct slot *s = &db->slots[i];

		if (s->busy && s->conn == conn) {
			s->busy = false;
			if (broken)
				s->conn = NULL;
			break;
		}
	}
	if (broken) {
		db->check_requested = true;
		pthread_cond_signal(&db->wake);
	}
	pthread_cond_signal(&db->freed);
	pthread_mutex_unlock(&db->lock);
	if (broken)
		PQfinish(conn);
}

/* --- queries ------------------------------------------------------------------------------- */

int nexsrv_db_sqlstate_errno(const char *sqlstate)
{
	static const struct {
		const char *state; /* exact, or a 2-character class */
		int code;
	} map[] = {
		{ "23505", EEXIST },
		{ "23503", ENOENT },
		{ "23502", EINVAL },
		{ "23514", EINVAL },
		{ "23P01", EEXIST },
		{ "40001", EAGAIN },
		{ "40P01", EAGAIN },
		{ "55P03", EBUSY },
		{ "57014", ETIMEDOUT },
		{ "57P01", ENOTCONN },
		{ "57P02", ENOTCONN },
		{ "57P03", ENOTCONN },
		{ "22", EINVAL },
		{ "08", ENOTCONN },
		/* nexsrv's own: no address at the pool's cursor (migration 0004) */
		{ "NXI01", ENOSPC },
	};

	if (!sqlstate || strlen(sqlstate) != 5)
		return -EIO;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strncmp(sqlstate, map[i].state, strlen(map[i].state)) == 0)
			return -map[i].code;
	return -EIO;
}

/* The errno and message for a failed result (res may be NULL). */
static int result_error(PGconn *conn, const PGresult *res, struct nx_err *err)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char msg[NX_ERR_MAX];
	int rc;

	if (!conn_ok(conn)) {
		one_line(msg, sizeof(msg), PQerrorMessage(conn));
		return nx_err_set(err, ENOTCONN, "database connection lost: %s", msg);
	}
	one_line(msg, sizeof(msg), primary ? primary : PQerrorMessage(conn));
	rc = nexsrv_db_sqlstate_errno(state);
	nx_debug(&dbg_nexsrv_database, "error %s: %s", state ? state : "-", msg);
	nx_err_set(err, -rc, "%s", msg[0] ? msg : "database error");
	return rc;
}

static int cmd_rows(const PGresult *res)
{
	const char *n = PQcmdTuples((PGresult *)res);
	unsigned long long v;

	if (nx_parse_uint(n, 0, INT32_MAX, &v, NULL) < 0)
		return 0;
	return (int)v;
}

static void debug_query(const char *sql, int nparams)
{
	if (nx_debug_on(&dbg_nexsrv_database)) {
		char line[160];

		one_line(line, sizeof(line), sql);
		nx_debug(&dbg_nexsrv_database, "query: %s (%d parameters)", line, nparams);
	}
}

int nexsrv_db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   PGresult **res, struct nx_err *err)
{
	struct conn_state *cs;
	char name[16];
	PGresult *r;
	int rc;

	if (res)
		*res = NULL;
	if (!conn)
		return nx_err_set(err, ENOTCONN, "database: no connection");
	cs = conn_state(conn);
	if (cs && cs->begin) { /* the transaction's first statement: with its BEGIN */
		struct nexsrv_db_stmt one = { .sql = sql, .nparams = nparams, .params = params };

		rc = nexsrv_db_pipeline(conn, &one, 1, false, err);
		if (rc < 0)
			return rc;
		if (res)
			*res = one.res;
		else
			PQclear(one.res);
		return one.rows;
	}
	debug_query(sql, nparams);
	r = NULL;
	switch (stmt_prepared(conn, sql, nparams, name, sizeof(name), &r)) {
	case 1:
		r = PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
		break;
	case 0:
		r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
		break;
	default: /* r is the failed PREPARE */
		break;
	}
	switch (PQresultStatus(r)) {
	case PGRES_TUPLES_OK:
		rc = PQntuples(r);
		break;
	case PGRES_COMMAND_OK:
		rc = cmd_rows(r);
		break;
	default:
		rc = result_error(conn, r, err);
		PQclear(r);
		return rc;
	}
	if (res)
		*res = r;
	else
		PQclear(r);
	return rc;
}

/* The result of the next statement of a pipeline, and the NULL that ends it. */
static PGresult *pipeline_result(PGconn *conn)
{
	PGresult *r = PQgetResult(conn), *more;

	for (int i = 0; r && i < 4 && (more = PQgetResult(conn)); i++)
		PQclear(more); /* (a statement has one result here) */
	return r;
}

/* Reads the result of one statement of a pipeline into *rc_out (rows, or the errno of its
 * failure, the pipeline's first failure for those it aborted); first_rc gets the first
 * failure.  Returns the result when it holds rows or a command's outcome. */
static PGresult *pipeline_read(PGconn *conn, int *rc_out, int *first_rc, struct nx_err *err)
{
	PGresult *r = pipeline_result(conn);

	switch (PQresultStatus(r)) {
	case PGRES_TUPLES_OK:
		*rc_out = PQntuples(r);
		return r;
	case PGRES_COMMAND_OK:
		*rc_out = cmd_rows(r);
		return r;
	case PGRES_PIPELINE_ABORTED:
		break;
	default:
		if (*first_rc == 0)
			*first_rc = result_error(conn, r, err);
		break;
	}
	PQclear(r);
	if (*first_rc == 0) /* aborted, yet nothing failed before: the connection broke */
		*first_rc = result_error(conn, NULL, err);
	*rc_out = *first_rc;
	return NULL;
}

int nexsrv_db_pipeline(PGconn *conn, struct nexsrv_db_stmt *st, size_t n, bool commit,
		       struct nx_err *err)
{
	char names[NEXSRV_DB_PIPELINE_MAX][16];
	struct conn_state *cs;
	const char *begin;
	PGresult *r = NULL;
	int rc = 0, ignored;
	bool sent;

	for (size_t i = 0; i < n; i++) {
		st[i].res = NULL;
		st[i].rows = 0;
	}
	if (!conn)
		return nx_err_set(err, ENOTCONN, "database: no connection");
	if (n > NEXSRV_DB_PIPELINE_MAX)
		return nx_err_set(err, EINVAL, "database: %zu statements in one pipeline", n);
	cs = conn_state(conn);
	begin = cs ? cs->begin : NULL;
	/* Named before the pipeline starts: preparing is a round trip of its own. */
	for (size_t i = 0; i < n; i++) {
		debug_query(st[i].sql, st[i].nparams);
		switch (stmt_prepared(conn, st[i].sql, st[i].nparams, names[i], sizeof(names[i]),
				      &r)) {
		case 0:
			names[i][0] = '\0';
			break;
		case -1:
			rc = result_error(conn, r, err);
			PQclear(r);
			return rc;
		}
	}
	if (!PQenterPipelineMode(conn))
		return result_error(conn, NULL, err);
	sent = !begin || PQsendQueryParams(conn, begin, 0, NULL, NULL, NULL, NULL, 0);
	for (size_t i = 0; sent && i < n; i++)
		sent = names[i][0] ? PQsendQueryPrepared(conn, names[i], st[i].nparams,
							 st[i].params, NULL, NULL, 0)
				   : PQsendQueryParams(conn, st[i].sql, st[i].nparams, NULL,
						       st[i].params, NULL, NULL, 0);
	if (sent && commit)
		sent = PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
	if (!sent || !PQpipelineSync(conn)) /* the connection is left busy: release drops it */
		return result_error(conn, NULL, err);
	if (cs)
		cs->begin = NULL;

	if (begin)
		PQclear(pipeline_read(conn, &ignored, &rc, err));
	for (size_t i = 0; i < n; i++)
		st[i].res = pipeline_read(conn, &st[i].rows, &rc, err);
	if (commit) {
		r = pipeline_read(conn, &ignored, &rc, err);
		/* A COMMIT of a failed transaction answers ROLLBACK. */
		if (r && rc == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0)
			rc = nx_err_set(err, EIO,
					"database: transaction rolled back instead of "
					"committed");
		PQclear(r);
	}
	for (int i = 0; i < 4 && (r = PQgetResult(conn)); i++) {
		bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;

		PQclear(r);
		if (sync)
			break;
	}
	if (!PQexitPipelineMode(conn) && rc == 0)
		rc = result_error(conn, NULL, err);
	if (rc < 0) {
		for (size_t i = 0; i < n; i++) {
			PQclear(st[i].res);
			st[i].res = NULL;
		}
		return rc;
	}
	if (commit && cs)
		cs->committed = true;
	return 0;
}

int nexsrv_db_col(const PGresult *res, const char *name)
{
	return res && name ? PQfnumber(res, name) : -1;
}

bool nexsrv_db_is_null(const PGresult *res, int row, int col)
{
	return !res || row < 0 || row >= PQntuples(res) || col < 0 || col >= PQnfields(res) ||
	       PQgetisnull(res, row, col);
}

const char *nexsrv_db_text(const PGresult *res, int row, int col)
{
	return nexsrv_db_is_null(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* The value at (row, col) as text, or an error naming the column. */
static int cell(const PGresult *res, int row, int col, const char **out, struct nx_err *err)
{
	if (!res || row < 0 || row >= PQntuples(res) || col < 0 || col >= PQnfields(res))
		return nx_err_set(err, ERANGE, "database result has no row %d column %d", row, col);
	if (PQgetisnull(res, row, col))
		return nx_err_set(err, ENODATA, "column %s is NULL", PQfname(res, col));
	*out = PQgetvalue(res, row, col);
	return 0;
}

int nexsrv_db_get_int64(const PGresult *res, int row, int col, int64_t *out, struct nx_err *err)
{
	const char *s;
	char *end;
	long long v;
	int rc = cell(res, row, col, &s, err);

	if (rc < 0)
		return rc;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return nx_err_set(err, EINVAL, "column %s: \"%s\" is not a 64-bit integer",
				  PQfname(res, col), s);
	*out = v;
	return 0;
}

int nexsrv_db_get_bool(const PGresult *res, int row, int col, bool *out, struct nx_err *err)
{
	const char *s;
	int rc = cell(res, row, col, &s, err);

	if (rc < 0)
		return rc;
	if (strcmp(s, "t") == 0)
		*out = true;
	else if (strcmp(s, "f") == 0)
		*out = false;
	else
		return nx_err_set(err, EINVAL, "column %s: \"%s\" is not a boolean",
				  PQfname(res, col), s);
	return 0;
}

int nexsrv_db_get_bytea(const PGresult *res, int row, int col, uint8_t *buf, size_t size,
			struct nx_err *err)
{
	const char *s;
	unsigned char *raw;
	size_t len;
	int rc = cell(res, row, col, &s, err);

	if (rc < 0)
		return rc;
	raw = PQunescapeBytea((const unsigned char *)s, &len);
	if (!raw)
		return nx_err_set(err, EINVAL, "column %s: not a bytea value", PQfname(res, col));
	if (len > size || len > INT32_MAX) {
		PQfreemem(raw);
		return nx_err_set(err, ENOSPC, "column %s: %zu bytes where at most %zu fit",
				  PQfname(res, col), len, size);
	}
	if (len)
		memcpy(buf, raw, len);
	PQfreemem(raw);
	return (int)len;
}

int nexsrv_db_get_json(const PGresult *res, int row, int col, struct json_object **out,
		       struct nx_err *err)
{
	enum json_tokener_error jerr = json_tokener_success;
	const char *s;
	int rc = cell(res, row, col, &s, err);

	if (rc < 0)
		return rc;
	*out = json_tokener_parse_verbose(s, &jerr);
	if (jerr != json_tokener_success)
		return nx_err_set(err, EINVAL, "column %s: not JSON: %s", PQfname(res, col),
				  json_tokener_error_desc(jerr));
	return 0;
}

int nexsrv_db_bytea_param(const uint8_t *data, size_t len, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	if (size < NEXSRV_DB_BYTEA_PARAM_SIZE(len))
		return -ENOSPC;
	buf[n++] = '\\';
	buf[n++] = 'x';
	for (size_t i = 0; i < len; i++) {
		buf[n++] = hex[data[i] >> 4];
		buf[n++] = hex[data[i] & 0xf];
	}
	buf[n] = '\0';
	return (int)n;
}

/* --- transactions -------------------------------------------------------------------------- */

/*
 * nexsrv_db_run_txn() does not send its BEGIN on its own: the transaction's first statement
 * takes it along (one round trip for both), and a body may end the transaction with its last
 * statements (nexsrv_db_pipeline() with commit), so that a transaction holding locks does not
 * wait for nexsrv between its last statement and its COMMIT.  The connection's state says
 * which; nexsrv_db_begin() sends its BEGIN at once, for callers that talk to libpq directly.
 */
static const char *begin_sql(enum nexsrv_db_isolation iso, struct nx_err *err)
{
	static const char *const sql[] = {
		[NEXSRV_DB_READ_COMMITTED] = "BEGIN ISOLATION LEVEL READ COMMITTED",
		[NEXSRV_DB_REPEATABLE_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ",
		[NEXSRV_DB_SERIALIZABLE] = "BEGIN ISOLATION LEVEL SERIALIZABLE",
	};

	if ((unsigned)iso >= sizeof(sql) / sizeof(sql[0])) {
		nx_err_set(err, EINVAL, "database: unknown isolation level %d", (int)iso);
		return NULL;
	}
	return sql[iso];
}

int nexsrv_db_begin(PGconn *conn, enum nexsrv_db_isolation iso, struct nx_err *err)
{
	const char *sql = begin_sql(iso, err);
	int rc;

	if (!sql)
		return -EINVAL;
	rc = nexsrv_db_exec(conn, sql, 0, NULL, NULL, err);
	return rc < 0 ? rc : 0;
}

/* BEGIN with the first statement, when the connection can keep it until then. */
static int begin_deferred(PGconn *conn, enum nexsrv_db_isolation iso, struct nx_err *err)
{
	struct conn_state *cs = conn ? conn_state(conn) : NULL;
	const char *sql;

	if (!cs)
		return nexsrv_db_begin(conn, iso, err);
	sql = begin_sql(iso, err);
	if (!sql)
		return -EINVAL;
	cs->begin = sql;
	cs->committed = false;
	return 0;
}

int nexsrv_db_commit(PGconn *conn, struct nx_err *err)
{
	struct conn_state *cs = conn ? conn_state(conn) : NULL;
	PGresult *res = NULL;
	int rc;

	if (cs && (cs->begin || cs->committed)) { /* nothing ran, or it is committed already */
		cs->begin = NULL;
		cs->committed = false;
		return 0;
	}
	if (conn_ok(conn) && PQtransactionStatus(conn) == PQTRANS_INERROR) {
		nexsrv_db_rollback(conn);
		return nx_err_set(err, EIO, "database: transaction failed earlier, rolled back");
	}
	rc = nexsrv_db_exec(conn, "COMMIT", 0, NULL, &res, err);
	if (rc < 0)
		return rc;
	/* A COMMIT of a failed transaction answers ROLLBACK. */
	if (strcmp(PQcmdStatus(res), "COMMIT") != 0)
		rc = nx_err_set(err, EIO, "database: transaction rolled back instead of committed");
	else
		rc = 0;
	PQclear(res);
	return rc;
}

void nexsrv_db_rollback(PGconn *conn)
{
	struct conn_state *cs = conn ? conn_state(conn) : NULL;

	if (cs) {
		cs->begin = NULL;
		cs->committed = false;
	}
	if (conn_ok(conn) && PQtransactionStatus(conn) != PQTRANS_IDLE)
		PQclear(PQexec(conn, "ROLLBACK"));
}

int nexsrv_db_run_txn(PGconn *conn, enum nexsrv_db_isolation iso, nexsrv_db_txn_fn fn, void *arg,
		      struct nx_err *err)
{
	int rc;

	for (unsigned attempt = 1;; attempt++) {
		rc = begin_deferred(conn, iso, err);
		if (rc < 0)
			return rc;
		rc = fn(conn, arg, err);
		if (rc >= 0) {
			int c = nexsrv_db_commit(conn, err);

			if (c == 0)
				return rc;
			rc = c;
		} else {
			nexsrv_db_rollback(conn);
		}
		if (rc != -EAGAIN || attempt >= NEXSRV_DB_TXN_ATTEMPTS)
			return rc;
		nx_debug(&dbg_nexsrv_database, "transaction attempt %u: %s; again", attempt,
			 err ? err->msg : "retry");
		/* A little random pause, growing with the attempts, to break the tie. */
		sleep_ms(attempt * (1 + (unsigned)(mono_ms() % 7)));
	}
}

int nexsrv_db_transaction(struct nexsrv_db *db, enum nexsrv_db_isolation iso, nexsrv_db_txn_fn fn,
			  void *arg, struct nx_err *err)
{
	PGconn *conn = nexsrv_db_acquire(db, NEXSRV_DB_ACQUIRE_TIMEOUT_MS, err);
	int rc;

	if (!conn)
		return -ENOTCONN;
	rc = nexsrv_db_run_txn(conn, iso, fn, arg, err);
	nexsrv_db_release(db, conn);
	return rc;
}

/* --- LISTEN -------------------------------------------------------------------------------- */

struct nexsrv_db_listener {
	struct nexsrv_db *db;
	char channel[64];
	nexsrv_db_notify_fn fn;
	void *arg;
	int wake[2]; /* a byte on wake[1] stops the thread */
	pthread_t thread;
	bool connected;
};

/* LISTEN on a fresh connection; 0 or -errno with err set. */
static int listen_on(struct nexsrv_db_listener *l, PGconn *conn, struct nx_err *err)
{
	char sql[160];
	char *ident = PQescapeIdentifier(conn, l->channel, strlen(l->channel));
	int rc;

	if (!ident)
		return nx_err_set(err, ENOMEM, "LISTEN %s: cannot quote the channel", l->channel);
	snprintf(sql, sizeof(sql), "LISTEN %s", ident);
	PQfreemem(ident);
	rc = nexsrv_db_exec(conn, sql, 0, NULL, NULL, err);
	return rc < 0 ? rc : 0;
}

/* Waits up to ms (-1: for ever) for the socket fd (-1: none) or the stop pipe.  Returns 1
 * when fd is readable, 0 on timeout, -1 when asked to stop. */
static int listener_wait(struct nexsrv_db_listener *l, int fd, int ms)
{
	struct pollfd pfd[2] = {
		{ .fd = l->wake[0], .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};
	int n;

	do
		n = poll(pfd, fd >= 0 ? 2 : 1, ms);
	while (n < 0 && errno == EINTR);
	if (n < 0 || pfd[0].revents)
		return -1;
	return n > 0 && (pfd[1].revents & (POLLIN | POLLERR | POLLHUP)) ? 1 : 0;
}

static void *listener_main(void *arg)
{
	struct nexsrv_db_listener *l = arg;
	struct nexsrv_db *db = l->db;
	unsigned backoff = 0;
	PGconn *conn = NULL;
	bool reported = false;
	struct nx_err err;

	for (;;) {
		PGnotify *n;
		bool lost;
		int w;

		if (!conn) {
			nx_err_clear(&err);
			conn = db_connect(db, &err);
			if (conn && listen_on(l, conn, &err) < 0) {
				PQfinish(conn);
				conn = NULL;
			}
			if (!conn) {
				if (!reported)
					nx_warn("database %s: LISTEN %s: %s; retrying", db->target,
						l->channel, err.msg);
				reported = true;
				backoff = backoff ? backoff * 2 : RETRY_MIN_MS;
				if (backoff > db->retry_max_ms)
					backoff = db->retry_max_ms;
				if (listener_wait(l, -1, (int)backoff) < 0)
					break;
				continue;
			}
			backoff = 0;
			if (reported)
				nx_notice("database %s: listening on %s again", db->target,
					  l->channel);
			else
				nx_debug(&dbg_nexsrv_database, "listening on %s", l->channel);
			reported = false;
			__atomic_store_n(&l->connected, true, __ATOMIC_RELEASE);
			l->fn(NULL, l->arg);
		}

		w = listener_wait(l, PQsocket(conn), (int)db->check_ms);
		if (w < 0)
			break;
		nx_err_clear(&err);
		if (w == 0) /* quiet for a while: does the connection still work? */
			lost = ping(conn, db->connect_timeout_s * 1000, &err) < 0;
		else
			lost = !PQconsumeInput(conn);
		while ((n = PQnotifies(conn)) != NULL) {
			nx_debug(&dbg_nexsrv_database, "notification on %s: %s", n->relname,
				 n->extra);
			l->fn(n->extra, l->arg);
			PQfreemem(n);
		}
		if (lost || !conn_ok(conn)) {
			if (!err.msg[0])
				one_line(err.msg, sizeof(err.msg), PQerrorMessage(conn));
			nx_warn("database %s: LISTEN %s: connection lost: %s; reconnecting",
				db->target, l->channel, err.msg);
			reported = true;
			__atomic_store_n(&l->connected, false, __ATOMIC_RELEASE);
			PQfinish(conn);
			conn = NULL;
		}
	}
	__atomic_store_n(&l->connected, false, __ATOMIC_RELEASE);
	PQfinish(conn);
	return NULL;
}

struct nexsrv_db_listener *nexsrv_db_listen(struct nexsrv_db *db, const char *channel,
					    nexsrv_db_notify_fn fn, void *arg, struct nx_err *err)
{
	struct nexsrv_db_listener *l;
	int rc;

	if (!db || !fn) {
		nx_err_set(err, EINVAL, "LISTEN: no database or no callback");
		return NULL;
	}
	if (!channel || !channel[0] || strlen(channel) > 63) {
		nx_err_set(err, EINVAL, "LISTEN: the channel name must have 1 to 63 bytes");
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		nx_err_set(err, ENOMEM, "LISTEN %s: out of memory", channel);
		return NULL;
	}
	l->db = db;
	nx_strlcpy(l->channel, channel, sizeof(l->channel));
	l->fn = fn;
	l->arg = arg;
	if (pipe2(l->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		nx_err_set(err, errno, "LISTEN %s: pipe: %s", channel, strerror(errno));
		free(l);
		return NULL;
	}
	rc = start_thread(&l->thread, listener_main, l);
	if (rc < 0) {
		nx_err_set(err, -rc, "LISTEN %s: cannot start a thread: %s", channel,
			   strerror(-rc));
		close(l->wake[0]);
		close(l->wake[1]);
		free(l);
		return NULL;
	}
	return l;
}

bool nexsrv_db_listener_connected(struct nexsrv_db_listener *l)
{
	return l && __atomic_load_n(&l->connected, __ATOMIC_ACQUIRE);
}

void nexsrv_db_listener_free(struct nexsrv_db_listener *l)
{
	char byte = 1;

	if (!l)
		return;
	while (write(l->wake[1], &byte, 1) < 0 && errno == EINTR)
		;
	pthread_join(l->thread, NULL);
	close(l->wake[0]);
	close(l->wake[1]);
	free(l);
}
