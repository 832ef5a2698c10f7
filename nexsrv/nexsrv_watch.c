/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The watch hub: one per process, between the database's change notifications and every
 * open watch stream (nexsrv_watch.h).
 *
 * Fan-out without a query per stream.  The streams of one VPC share a "VPC entry" with a
 * bounded change log of rendered lines.  The one LISTEN connection only marks an entry as
 * due ("VPC v has revision r"); the hub's thread then reads, in one statement, everything
 * of that VPC newer than what its log last got, renders each object once (the REST API's
 * own SQL renderings), appends it to the log and writes its line to every live stream
 * whose filter matches.  A write never blocks: a stream whose client does not keep up (its
 * queue is full) is ended with an error line, and the client resumes from the revision it
 * last saw.  Changes made through another nexsrv sharing the database arrive the same way.
 *
 * A stream's life.  The handler thread marks the device online (public_key=), registers the
 * stream with its VPC entry (so the entry records notifications from then on), reads the
 * initial list in one REPEATABLE READ snapshot together with the VPC's newest visible
 * revision H, writes it, and hands the stream over: from the log, everything newer than H
 * is replayed to it, then it is live.  When the log does not reach back to H (the stream's
 * snapshot is older than what the log still holds), the handler reads the gap from the
 * database itself and tries again.  A stream ends when its client goes away (the HTTP
 * server's close callback), when it falls behind, when its VPC (or a device token's own
 * device) is deleted, or when the service stops; its device is then marked offline,
 * unless a newer stream marked it online since.
 *
 * Threads and locks.  hub->lock guards the entries, the streams' state and the queues; it
 * is taken before a stream's own lock (nexsrv_stream_write) and never held while a stream
 * is closed (nexsrv_stream_close waits for the close callback, which takes hub->lock).
 * The hub's thread does all database work of the hub (fetches, offline marks, tombstone
 * collection) and the heartbeats; the listener's thread only queues.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "lib/jsonutil.h"
#include "lib/log.h"
#include "lib/strutil.h"
#include "lib/worker.h"
#include "nexsrv/nexsrv.h"
#include "nexsrv/nexsrv_api_net.h"
#include "nexsrv/nexsrv_auth.h"
#include "nexsrv/nexsrv_db.h"
#include "nexsrv/nexsrv_http.h"
#include "nexsrv/nexsrv_watch.h"

NX_DEBUG_DECLARE(nexsrv_watch);

#define VPC_BUCKETS	  256
#define FETCH_RETRY_MS	  1000 /* after a failed fetch */
#define CATCH_UP_ATTEMPTS 4
#define HEARTBEAT_TICK_MS 100 /* heartbeats go out in slices this far apart */
/* A VPC with this many streams gets a change from two threads: the kernel's send is most
 * of a delivery, and one thread's sends leave a CPU idle.  The threads take the streams
 * FANOUT_BATCH at a time, so that neither idles while the other has streams left: halves
 * fixed in advance finished up to half a fan-out apart when the scheduler gave one of the
 * threads a CPU to itself and made the other share its CPU with the clients. */
#define FANOUT_SPLIT_MIN  2048
#define FANOUT_BATCH	  32
#define NEVER		  UINT64_MAX

#define MSG_BEHIND                                                                        \
	"the client does not read the stream fast enough: reconnect and resume from the " \
	"last revision received"
#define MSG_TOO_OLD                                                                       \
	"gt_revision is older than the tombstone horizon: deletes may have been missed; " \
	"re-list (watch again with gt_revision 0)"
#define MSG_VPC_GONE	"the VPC was deleted"
#define MSG_DEVICE_GONE "this device was deleted: its token is no longer valid"

struct watcher;

/* The streams of one VPC and its change log. */
struct watch_vpc {
	struct watch_vpc *hnext; /* hash chain */
	struct watch_vpc *qnext; /* the fetch queue */
	char id[NEXSRV_INPUT_UUID_LEN];
	struct nexsrv_watch_log *log; /* NULL until a stream goes live */
	int64_t notified;	      /* the newest revision announced */
	struct watcher **watchers;    /* its streams, in no order (an array: a fan-out shares
					 it out between threads) */
	size_t n_watchers, cap_watchers;
	bool queued;
	unsigned pins; /* the hub thread works on it without the lock */
};

struct watcher {
	size_t idx;		  /* in its VPC's watchers */
	struct watcher *end_next; /* a list of streams to finish */
	struct nexsrv_watch *hub;
	struct watch_vpc *vpc; /* NULL once ended */
	struct nexsrv_stream *stream;
	struct nexsrv_watch_filter filter;
	int64_t last; /* the newest revision given (or covered by the initial list) */
	bool live, ended;
	int gone; /* the error that ends it once the current batch is delivered */
	int caller_kind;
	char caller_id[NEXSRV_INPUT_UUID_LEN];
	char own_device[NEXSRV_INPUT_UUID_LEN]; /* a device token's device */
	char online_device[NEXSRV_INPUT_UUID_LEN];
	char online_at[64]; /* as the database returned it */
	char client[64];
	char kinds[160];
	time_t since;
	struct watcher *hb_prev, *hb_next; /* the streams of its heartbeat tick */
	unsigned hb_slot;
	struct watcher *fail_next; /* streams a delivery could not write to */
	int fail_rc;
};

struct offline_job {
	struct offline_job *next;
	char device[NEXSRV_INPUT_UUID_LEN];
	char online_at[64];
};

struct nexsrv_watch {
	struct nexsrv *srv;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	pthread_t thread;
	bool thread_started;
	bool stop, resync;
	struct watch_vpc *buckets[VPC_BUCKETS];
	struct watch_vpc *queue_head, *queue_tail;
	struct offline_job *offline;
	struct nexsrv_db_listener *listener;
	unsigned heartbeat_ms;
	struct watcher **heartbeat_slots; /* a list of streams per tick of the interval */
	unsigned n_slots, next_slot;	  /* ticks per interval; the next stream's */
	size_t n_streams, n_vpcs;
	uint64_t events, ended_behind;
	struct nx_worker *fanout; /* the second thread of a big delivery; NULL: none */
	size_t split_min;	  /* streams of a VPC from which it is used */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- SQL: the events of a VPC, rendered as the REST API renders its objects -------------- */

/* A tombstone's row, back in its table's type, carrying the delete's revision. */
#define TOMB_ROW(table)                      \
	"jsonb_populate_record(NULL::" table \
	", tb.value || jsonb_build_object('revision', tb.revision))"
#define TOMB_KIND(kind, json, table, alias) \
	" WHEN '" kind "' THEN (SELECT " json " FROM " TOMB_ROW(table) " " alias ")"
#define TOMBSTONE_JSON                                                                             \
	"CASE tb.kind" TOMB_KIND("device", NEXSRV_DEVICE_JSON, "devices", "d")                     \
		TOMB_KIND("security-group", NEXSRV_SECGROUP_JSON, "security_groups", "s")          \
			TOMB_KIND("device-metadata", NEXSRV_METADATA_JSON, "device_metadata", "m") \
				TOMB_KIND("vpc", NEXSRV_VPC_JSON, "vpcs", "v") " END"

/* Columns of every part: kind, deleted, revision, id, key, value. */
static const struct {
	const char *select; /* ... WHERE <the VPC is $1> */
	const char *revision;
	const char *key; /* the metadata key column, for prefixes */
} kind_sql[NEXSRV_WATCH_KINDS] = {
	[NEXSRV_WATCH_DEVICE] = { "SELECT 'device'::text, false, d.revision, d.id, "
				  "NULL::text, " NEXSRV_DEVICE_JSON
				  " FROM devices d WHERE d.vpc_id = $1",
				  "d.revision", NULL },
	[NEXSRV_WATCH_SECURITY_GROUP] = { "SELECT 'security-group'::text, false, s.revision, s.id, "
					  "NULL::text, " NEXSRV_SECGROUP_JSON
					  " FROM security_groups s WHERE s.vpc_id = $1",
					  "s.revision", NULL },
	[NEXSRV_WATCH_DEVICE_METADATA] = { "SELECT 'device-metadata'::text, false, m.revision, "
					   "m.device_id, m.key, " NEXSRV_METADATA_JSON
					   " FROM device_metadata m WHERE m.vpc_id = $1",
					   "m.revision", "m.key" },
	[NEXSRV_WATCH_VPC] = { "SELECT 'vpc'::text, false, v.revision, v.id, "
			       "NULL::text, " NEXSRV_VPC_JSON " FROM vpcs v WHERE v.id = $1",
			       "v.revision", NULL },
};

#define TOMB_SELECT                                                                             \
	"SELECT tb.kind, true, tb.revision, tb.id, tb.key, " TOMBSTONE_JSON " FROM tombstones " \
	"tb WHERE tb.vpc_id = $1"

/* Revision parameters, kept alive for the statement. */
struct rev_params {
	char text[NEXSRV_WATCH_KINDS + 1][24];
	int n;
};

static const char *rev_param(struct rev_params *p, int64_t rev)
{
	char *t = p->text[p->n++];

	snprintf(t, sizeof(p->text[0]), "%" PRId64, rev);
	return t;
}

static void add_prefixes(struct nexsrv_sql *q, const char *column,
			 const struct nexsrv_watch_spec *spec)
{
	if (!spec || !spec->n_prefixes)
		return;
	nexsrv_sql_add(q, " AND (");
	for (size_t i = 0; i < spec->n_prefixes; i++) {
		nexsrv_sql_add(q, "%sstarts_with(%s, ", i ? " OR " : "", column);
		nexsrv_sql_param(q, spec->prefixes[i]);
		nexsrv_sql_add(q, ")");
	}
	nexsrv_sql_add(q, ")");
}

/*
 * The events of VPC vpc as one statement into q: with wr, those of its kinds newer than
 * each kind's gt_revision (and its key prefixes); without, those of every kind newer than
 * since.  In revision order; at most limit rows (0: no limit).
 */
static void events_sql(struct nexsrv_sql *q, struct rev_params *p, const char *vpc,
		       const struct nexsrv_watch_request *wr, int64_t since, int limit)
{
	size_t n = wr ? wr->n : NEXSRV_WATCH_KINDS;

	nexsrv_sql_init(q);
	memset(p, 0, sizeof(*p));
	q->params[q->n++] = vpc; /* $1, written into the selects themselves */
	for (size_t i = 0; i < n; i++) {
		const struct nexsrv_watch_spec *spec = wr ? &wr->spec[i] : NULL;
		enum nexsrv_watch_kind k = spec ? spec->kind : (enum nexsrv_watch_kind)i;
		const char *rev = rev_param(p, spec ? spec->gt_revision : since);

		nexsrv_sql_add(q, "%s%s AND %s > ", i ? " UNION ALL " : "", kind_sql[k].select,
			       kind_sql[k].revision);
		nexsrv_sql_param(q, rev);
		if (kind_sql[k].key)
			add_prefixes(q, kind_sql[k].key, spec);
		if (!spec)
			continue;
		nexsrv_sql_add(q, " UNION ALL %s AND tb.kind = '%s' AND tb.revision > ",
			       TOMB_SELECT, nexsrv_watch_kind_name(k));
		nexsrv_sql_param(q, rev);
		add_prefixes(q, "tb.key", spec);
	}
	if (!wr) {
		nexsrv_sql_add(q, " UNION ALL %s AND tb.revision > ", TOMB_SELECT);
		nexsrv_sql_param(q, rev_param(p, since));
	}
	nexsrv_sql_add(q, " ORDER BY 3");
	if (limit > 0)
		nexsrv_sql_add(q, " LIMIT %d", limit);
}

/* The events of res as a new array (*out, *n); 0 or a negative errno with err set. */
static int events_from(const PGresult *res, struct nexsrv_watch_event ***out, size_t *n,
		       struct nx_err *err)
{
	int rows = PQntuples(res), rc = 0;
	struct nexsrv_watch_event **ev = calloc(rows > 0 ? (size_t)rows : 1, sizeof(*ev));

	*out = NULL;
	*n = 0;
	if (!ev)
		return nx_err_set(err, ENOMEM, "out of memory");
	for (int i = 0; i < rows; i++) {
		struct json_object *value = NULL;
		int64_t rev = 0;
		int kind = nexsrv_watch_kind_parse(nexsrv_db_text(res, i, 0));
		const char *deleted = nexsrv_db_text(res, i, 1);

		rc = nexsrv_db_get_int64(res, i, 2, &rev, err);
		if (rc == 0)
			rc = nexsrv_db_get_json(res, i, 5, &value, err);
		if (rc == 0 && (kind < 0 || !value || !nexsrv_db_text(res, i, 3)))
			rc = nx_err_set(err, EIO, "row %d: not an event", i);
		if (rc == 0) {
			ev[i] = nexsrv_watch_event_new(
				rev, (enum nexsrv_watch_kind)kind, deleted && deleted[0] == 't',
				nexsrv_db_text(res, i, 3), nexsrv_db_text(res, i, 4), value);
			if (!ev[i])
				rc = nx_err_set(err, ENOMEM, "out of memory");
		}
		json_object_put(value);
		if (rc < 0)
			break;
		*n = (size_t)i + 1;
	}
	if (rc < 0) {
		for (size_t i = 0; i < *n; i++)
			nexsrv_watch_event_free(ev[i]);
		free(ev);
		*n = 0;
		return rc;
	}
	*out = ev;
	return 0;
}

static void events_free(struct nexsrv_watch_event **ev, size_t n)
{
	for (size_t i = 0; ev && i < n; i++)
		nexsrv_watch_event_free(ev[i]);
	free(ev);
}

/* Everything of vpc newer than since (at most limit events); *more when there may be more. */
static int fetch_since(PGconn *conn, const char *vpc, int64_t since, int limit,
		       struct nexsrv_watch_event ***ev, size_t *n, bool *more, struct nx_err *err)
{
	struct nexsrv_sql q;
	struct rev_params p;
	PGresult *res = NULL;
	int rc;

	events_sql(&q, &p, vpc, NULL, since, limit);
	rc = nexsrv_sql_exec(conn, &q, &res, err);
	if (rc >= 0)
		rc = events_from(res, ev, n, err);
	*more = rc >= 0 && limit > 0 && *n == (size_t)limit;
	PQclear(res);
	nexsrv_sql_fini(&q);
	return rc < 0 ? rc : 0;
}

/* --- VPC entries (hub->lock held) ------------------------------------------------------- */

static unsigned vpc_hash(const char *id)
{
	uint32_t h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % VPC_BUCKETS;
}

static struct watch_vpc *vpc_find(struct nexsrv_watch *hub, const char *id)
{
	struct watch_vpc *v = hub->buckets[vpc_hash(id)];

	while (v && strcmp(v->id, id) != 0)
		v = v->hnext;
	return v;
}

static struct watch_vpc *vpc_get(struct nexsrv_watch *hub, const char *id)
{
	struct watch_vpc *v = vpc_find(hub, id);
	unsigned b;

	if (v)
		return v;
	v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	nx_strlcpy(v->id, id, sizeof(v->id));
	b = vpc_hash(id);
	v->hnext = hub->buckets[b];
	hub->buckets[b] = v;
	hub->n_vpcs++;
	return v;
}

/* Frees v once nothing refers to it. */
static void vpc_maybe_free(struct nexsrv_watch *hub, struct watch_vpc *v)
{
	struct watch_vpc **pp;

	if (v->n_watchers || v->queued || v->pins)
		return;
	for (pp = &hub->buckets[vpc_hash(v->id)]; *pp && *pp != v; pp = &(*pp)->hnext)
		;
	if (*pp)
		*pp = v->hnext;
	hub->n_vpcs--;
	nexsrv_watch_log_free(v->log);
	free(v->watchers);
	free(v);
}

static void vpc_queue(struct nexsrv_watch *hub, struct watch_vpc *v)
{
	if (v->queued)
		return;
	v->queued = true;
	v->qnext = NULL;
	if (hub->queue_tail)
		hub->queue_tail->qnext = v;
	else
		hub->queue_head = v;
	hub->queue_tail = v;
	pthread_cond_signal(&hub->cond);
}

static struct watch_vpc *vpc_dequeue(struct nexsrv_watch *hub)
{
	struct watch_vpc *v = hub->queue_head;

	if (!v)
		return NULL;
	hub->queue_head = v->qnext;
	if (!hub->queue_head)
		hub->queue_tail = NULL;
	v->qnext = NULL;
	v->queued = false;
	return v;
}

/* --- streams ----------------------------------------------------------------------------- */

/* Each stream goes to the heartbeat tick after the last one given. */
static void heartbeat_link(struct nexsrv_watch *hub, struct watcher *w)
{
	struct watcher **head = &hub->heartbeat_slots[hub->next_slot];

	w->hb_slot = hub->next_slot;
	hub->next_slot = (hub->next_slot + 1) % hub->n_slots;
	w->hb_prev = NULL;
	w->hb_next = *head;
	if (*head)
		(*head)->hb_prev = w;
	*head = w;
}

static void heartbeat_unlink(struct nexsrv_watch *hub, struct watcher *w)
{
	if (w->hb_prev)
		w->hb_prev->hb_next = w->hb_next;
	else
		hub->heartbeat_slots[w->hb_slot] = w->hb_next;
	if (w->hb_next)
		w->hb_next->hb_prev = w->hb_prev;
	w->hb_prev = w->hb_next = NULL;
}

/*
 * Ends w (hub->lock held): out of its VPC, and with an error line first when code is not 0.
 * Returns false when it had already ended.  The caller then finishes it (finish()) without
 * the lock.
 */
static bool end_locked(struct nexsrv_watch *hub, struct watcher *w, int code, const char *msg)
{
	struct watch_vpc *v = w->vpc;

	if (w->ended)
		return false;
	w->ended = true;
	w->live = false;
	if (code && w->stream) {
		char *line = NULL;
		size_t len = 0;

		/* Best effort: a full queue may not take even this. */
		if (nexsrv_watch_error_line(code, msg, &line, &len) == 0)
			nexsrv_stream_write(w->stream, line, len);
		free(line);
	}
	if (v) {
		struct watcher *last = v->watchers[--v->n_watchers];

		v->watchers[w->idx] = last; /* (w itself when it was the last) */
		last->idx = w->idx;
		heartbeat_unlink(hub, w);
		w->vpc = NULL;
		hub->n_streams--;
		vpc_maybe_free(hub, v);
	}
	return true;
}

static void offline_queue(struct nexsrv_watch *hub, const char *device, const char *online_at)
{
	struct offline_job *j = calloc(1, sizeof(*j));

	if (!j) {
		nx_err("watch: out of memory: device %s stays marked online", device);
		return;
	}
	nx_strlcpy(j->device, device, sizeof(j->device));
	nx_strlcpy(j->online_at, online_at, sizeof(j->online_at));
	pthread_mutex_lock(&hub->lock);
	j->next = hub->offline;
	hub->offline = j;
	pthread_cond_signal(&hub->cond);
	pthread_mutex_unlock(&hub->lock);
}

/* After end_locked(), without the lock: closes the stream, has the device marked offline,
 * frees. */
static void finish(struct watcher *w)
{
	if (w->stream)
		nexsrv_stream_close(w->stream);
	if (w->online_device[0])
		offline_queue(w->hub, w->online_device, w->online_at);
	nx_debug(&dbg_nexsrv_watch, "stream of %s (%s) ended at revision %" PRId64, w->client,
		 w->kinds, w->last);
	nexsrv_watch_filter_fini(&w->filter);
	free(w);
}

static void finish_all(struct watcher *list)
{
	while (list) {
		struct watcher *next = list->end_next;

		finish(list);
		list = next;
	}
}

/* Ends w (lock held) and puts it on *ending to be finished. */
static void end_into(struct nexsrv_watch *hub, struct watcher *w, int code, const char *msg,
		     struct watcher **ending)
{
	if (end_locked(hub, w, code, msg)) {
		w->end_next = *ending;
		*ending = w;
	}
}

/* A stream that could not take a line (rc from nexsrv_stream_write_shared()) ends (lock
 * held). */
static void send_failed(struct nexsrv_watch *hub, struct watcher *w, int rc,
			struct watcher **ending)
{
	if (rc == -ENOBUFS) {
		hub->ended_behind++;
		nx_info("watch: ending the stream of %s on VPC %s: its client does not keep up",
			w->client, w->vpc ? w->vpc->id : "-");
		end_into(hub, w, NEXSRV_WATCH_ERR_BEHIND, MSG_BEHIND, ending);
	} else {
		end_into(hub, w, 0, NULL, ending);
	}
}

/* Queues a line on a live stream (lock held), by reference: the same bytes for every
 * stream; a stream that cannot take it ends. */
static void send_line(struct nexsrv_watch *hub, struct watcher *w, struct nexsrv_shared *line,
		      struct watcher **ending)
{
	int rc = line ? nexsrv_stream_write_shared(w->stream, line) : -ENOMEM;

	if (rc != 0)
		send_failed(hub, w, rc, ending);
}

/* The close callback: the client went away or the server is stopping. */
static void stream_closed(struct nexsrv_stream *s, void *arg)
{
	struct watcher *w = arg;
	struct nexsrv_watch *hub = w->hub;
	bool mine;

	(void)s;
	pthread_mutex_lock(&hub->lock);
	mine = end_locked(hub, w, 0, NULL);
	pthread_mutex_unlock(&hub->lock);
	/* Otherwise whoever ended it is closing it, and waits for this callback to return. */
	if (mine)
		finish(w);
}

/*
 * Something done to every stream of a VPC (lock held), from two threads when it has many:
 * each thread takes the next FANOUT_BATCH streams until none are left.  A thread writes
 * only to the streams it took, and leaves those it could not write to on its part's failed
 * list: the VPC's streams must not change while both run.
 */
struct fanout;

struct fanout_part {
	struct fanout *f;
	struct watcher *failed;
	size_t gone; /* streams it marked to end */
};

struct fanout {
	void (*each)(struct fanout_part *p, struct watcher *w);
	const struct nexsrv_watch_event *ev; /* what deliver_to gives */
	bool vpc_gone;
	struct watcher *const *watchers;
	size_t n;
	size_t next; /* the first stream no thread has taken (atomic) */
	struct fanout_part part[2];
};

static void fanout_part(void *arg)
{
	struct fanout_part *p = arg;
	struct fanout *f = p->f;
	size_t i;

	while ((i = __atomic_fetch_add(&f->next, FANOUT_BATCH, __ATOMIC_RELAXED)) < f->n) {
		size_t end = f->n - i > FANOUT_BATCH ? i + FANOUT_BATCH : f->n;

		for (; i < end; i++)
			f->each(p, f->watchers[i]);
	}
}

/* Runs f->each on every stream of v; then ends those it could not write to, and returns
 * how many it marked to end. */
static size_t fanout_run(struct nexsrv_watch *hub, struct watch_vpc *v, struct fanout *f,
			 struct watcher **ending)
{
	bool split = hub->fanout && v->n_watchers >= hub->split_min;
	size_t gone = 0;

	f->watchers = v->watchers;
	f->n = v->n_watchers;
	f->next = 0;
	for (int h = 0; h < 2; h++)
		f->part[h] = (struct fanout_part){ .f = f };
	if (split)
		nx_worker_run(hub->fanout, fanout_part, &f->part[1]);
	fanout_part(&f->part[0]);
	if (split)
		nx_worker_wait(hub->fanout);
	for (int h = 0; h < 2; h++) {
		struct watcher *w, *next;

		for (w = f->part[h].failed; w; w = next) {
			next = w->fail_next;
			send_failed(hub, w, w->fail_rc, ending);
		}
		gone += f->part[h].gone;
	}
	return gone;
}

/* Gives the event f->ev to w.  A delete that ends streams (the VPC's own, a device token's
 * device) only marks them: the rest of the same commit (the cascaded deletes) still reaches
 * them first. */
static void deliver_to(struct fanout_part *p, struct watcher *w)
{
	const struct nexsrv_watch_event *ev = p->f->ev;

	if (!w->live || ev->revision <= w->last)
		return;
	w->last = ev->revision;
	if (nexsrv_watch_filter_match(&w->filter, ev->kind, ev->key)) {
		int rc = ev->shared ? nexsrv_stream_write_shared(w->stream, ev->shared) : -ENOMEM;

		if (rc != 0) {
			w->fail_rc = rc;
			w->fail_next = p->failed;
			p->failed = w;
			return;
		}
	}
	if (p->f->vpc_gone)
		w->gone = NEXSRV_WATCH_ERR_VPC_GONE;
	else if (ev->kind == NEXSRV_WATCH_DEVICE && ev->deleted && w->own_device[0] &&
		 strcmp(ev->id, w->own_device) == 0)
		w->gone = NEXSRV_WATCH_ERR_DEVICE_GONE;
	else
		return;
	p->gone++;
}

static void hold(struct fanout_part *p, struct watcher *w)
{
	(void)p;
	if (w->live)
		nexsrv_stream_hold(w->stream);
}

static void release(struct fanout_part *p, struct watcher *w)
{
	(void)p;
	if (w->stream)
		nexsrv_stream_release(w->stream);
}

/* Appends fetched events to v's log and gives them to its streams (lock held); takes the
 * events (the array stays the caller's). */
static void deliver(struct nexsrv_watch *hub, struct watch_vpc *v, struct nexsrv_watch_event **ev,
		    size_t n, struct watcher **ending)
{
	struct fanout f = { .each = hold };
	size_t gone = 0;

	/* Several events (one commit's, typically): each stream gets them in one send. */
	if (n > 1)
		fanout_run(hub, v, &f, ending);
	f.each = deliver_to;
	for (size_t i = 0; i < n; i++) {
		struct nexsrv_watch_event *e = ev[i];

		ev[i] = NULL;
		if (!v->log || nexsrv_watch_log_append(v->log, e) < 0) {
			nexsrv_watch_event_free(e); /* a duplicate */
			continue;
		}
		hub->events++;
		f.ev = e;
		f.vpc_gone = e->kind == NEXSRV_WATCH_VPC && e->deleted && strcmp(e->id, v->id) == 0;
		gone += fanout_run(hub, v, &f, ending);
	}
	if (n > 1) {
		f.each = release;
		fanout_run(hub, v, &f, ending);
	}
	/* Backwards: ending a stream moves the last one into its place. */
	for (size_t i = v->n_watchers; gone && i-- > 0;) {
		struct watcher *w = v->watchers[i];

		if (w->gone)
			end_into(hub, w, w->gone,
				 w->gone == NEXSRV_WATCH_ERR_VPC_GONE ? MSG_VPC_GONE
								      : MSG_DEVICE_GONE,
				 ending);
	}
}

/* --- the hub's thread ---------------------------------------------------------------------- */

/* VPC vpc has revision rev (notified, or committed here): its log is to be read on. */
static void changed(struct nexsrv_watch *hub, const char *vpc, int64_t rev)
{
	struct watch_vpc *v;

	pthread_mutex_lock(&hub->lock);
	v = vpc_find(hub, vpc);
	if (v) {
		if (rev > v->notified)
			v->notified = rev;
		if (v->log && rev > nexsrv_watch_log_last(v->log))
			vpc_queue(hub, v);
	}
	pthread_mutex_unlock(&hub->lock);
}

static void on_notify(const char *payload, void *arg)
{
	struct nexsrv_watch *hub = arg;
	struct json_object *obj;
	const char *vpc = NULL;
	int64_t rev = 0;

	if (!payload) { /* (re)connected: notifications may have been missed */
		pthread_mutex_lock(&hub->lock);
		hub->resync = true;
		pthread_cond_signal(&hub->cond);
		pthread_mutex_unlock(&hub->lock);
		return;
	}
	obj = nx_json_parse(payload, strlen(payload), 4, NULL);
	if (!obj || nx_json_get_string(obj, "vpc_id", &vpc, NULL) < 0 ||
	    nx_json_get_int64(obj, "revision", &rev, NULL) < 0) {
		nx_debug(&dbg_nexsrv_watch, "notification ignored: %s", payload);
		json_object_put(obj);
		return;
	}
	changed(hub, vpc, rev);
	json_object_put(obj);
}

void nexsrv_watch_changed(struct nexsrv *srv, const char *vpc_id, int64_t revision)
{
	if (srv->watch && vpc_id)
		changed(srv->watch, vpc_id, revision);
}

/* After a reconnect of the LISTEN connection (lock held): every VPC with streams is read
 * again from where its log stands. */
static void resync_locked(struct nexsrv_watch *hub)
{
	for (size_t b = 0; b < VPC_BUCKETS; b++)
		for (struct watch_vpc *v = hub->buckets[b]; v; v = v->hnext) {
			v->notified = INT64_MAX;
			if (v->log)
				vpc_queue(hub, v);
		}
}

static void run_offline(struct nexsrv_watch *hub, struct offline_job *jobs)
{
	struct nx_err err = { "" };
	PGconn *conn = NULL;

	while (jobs) {
		struct offline_job *next = jobs->next;
		const char *params[] = { jobs->device, jobs->online_at };
		PGresult *res = NULL;
		bool marked = false;
		int rc = -ENOTCONN;

		if (!conn)
			conn = nexsrv_db_acquire(hub->srv->db, NEXSRV_DB_ACQUIRE_TIMEOUT_MS, &err);
		/* The VPC's writer lock before the row (migrations/0003_active_prefixes.sql);
		 * offline_at starts the grace of the prefixes it holds.  A deadlock is the
		 * database's answer to someone else's lock order: once more. */
		for (int attempt = 0; conn && attempt < NEXSRV_DB_TXN_ATTEMPTS; attempt++) {
			rc = nexsrv_db_exec(conn,
					    "SELECT nexodus_device_offline($1, $2::timestamptz)", 2,
					    params, &res, &err);
			if (rc != -EAGAIN)
				break;
		}
		if (rc == 1 && nexsrv_db_get_bool(res, 0, 0, &marked, NULL) < 0)
			marked = false;
		PQclear(res);
		if (rc < 0)
			nx_warn("watch: cannot mark device %s offline: %s", jobs->device, err.msg);
		else
			nx_debug(&dbg_nexsrv_watch, "device %s offline%s", jobs->device,
				 marked ? ""
					: " (already, or online again through another stream)");
		free(jobs);
		jobs = next;
	}
	if (conn)
		nexsrv_db_release(hub->srv->db, conn);
}

/* Prefixes held by devices offline past the grace go to the next eligible claimant
 * (nexodus_prefix_failover(), migrations/0003_active_prefixes.sql).  Every replica runs it;
 * the VPCs' writer locks make them take turns, and the later finds nothing left to do. */
static void prefix_failover(struct nexsrv_watch *hub)
{
	struct nx_err err = { "" };
	PGresult *res = NULL;
	char grace[16];
	const char *params[] = { grace };
	PGconn *conn;
	int rc;

	snprintf(grace, sizeof(grace), "%u", nexsrv_prefix_grace_ms(hub->srv));
	conn = nexsrv_db_acquire(hub->srv->db, NEXSRV_DB_ACQUIRE_TIMEOUT_MS, &err);
	if (!conn) {
		nx_debug(&dbg_nexsrv_watch, "prefix failover check skipped: %s", err.msg);
		return;
	}
	rc = nexsrv_db_exec(conn,
			    "SELECT nexodus_prefix_failover(make_interval(secs => $1::integer "
			    "/ 1000.0))",
			    1, params, &res, &err);
	if (rc < 0 && rc != -EAGAIN)
		nx_warn("watch: prefix failover check failed: %s", err.msg);
	else if (rc == 1 && strcmp(nexsrv_db_text(res, 0, 0), "0") != 0)
		nx_debug(&dbg_nexsrv_watch, "prefix failover: %s devices changed",
			 nexsrv_db_text(res, 0, 0));
	PQclear(res);
	nexsrv_db_release(hub->srv->db, conn);
}

static void collect_tombstones(struct nexsrv_watch *hub)
{
	uint32_t secs = __atomic_load_n(&hub->srv->cfg.tombstone_retention_s, __ATOMIC_RELAXED);
	struct nx_err err = { "" };
	PGresult *res = NULL;
	char retention[16];
	const char *params[] = { retention };
	PGconn *conn;
	int rc;

	if (!secs)
		return;
	snprintf(retention, sizeof(retention), "%" PRIu32, secs);
	conn = nexsrv_db_acquire(hub->srv->db, NEXSRV_DB_ACQUIRE_TIMEOUT_MS, &err);
	if (!conn) {
		nx_debug(&dbg_nexsrv_watch, "tombstone collection skipped: %s", err.msg);
		return;
	}
	rc = nexsrv_db_exec(conn, "SELECT nexodus_gc_tombstones(make_interval(secs => $1))", 1,
			    params, &res, &err);
	if (rc < 0)
		nx_warn("watch: tombstone collection failed: %s", err.msg);
	else
		nx_debug(&dbg_nexsrv_watch, "tombstones purged: %s", nexsrv_db_text(res, 0, 0));
	PQclear(res);
	nexsrv_db_release(hub->srv->db, conn);
}

/* One fetch for the VPC at the head of the queue (lock held; released meanwhile). */
static void fetch_one(struct nexsrv_watch *hub, uint64_t *retry_at)
{
	struct watch_vpc *v = vpc_dequeue(hub);
	struct nexsrv_watch_event **ev = NULL;
	struct watcher *ending = NULL;
	char id[NEXSRV_INPUT_UUID_LEN];
	struct nx_err err = { "" };
	PGconn *conn;
	bool more = false;
	int64_t since;
	size_t n = 0;
	int rc;

	if (!v->log || !v->n_watchers) {
		vpc_maybe_free(hub, v);
		return;
	}
	v->pins++;
	since = nexsrv_watch_log_last(v->log);
	nx_strlcpy(id, v->id, sizeof(id));
	pthread_mutex_unlock(&hub->lock);

	conn = nexsrv_db_acquire(hub->srv->db, NEXSRV_DB_ACQUIRE_TIMEOUT_MS, &err);
	rc = conn ? fetch_since(conn, id, since, NEXSRV_WATCH_FETCH_LIMIT, &ev, &n, &more, &err)
		  : -ENOTCONN;
	if (rc == -ENOTCONN)
		nexsrv_db_check_now(hub->srv->db);
	if (conn)
		nexsrv_db_release(hub->srv->db, conn);
	if (rc < 0)
		nx_warn("watch: reading the changes of VPC %s failed: %s; retrying", id, err.msg);
	else
		nx_debug(&dbg_nexsrv_watch, "VPC %s: %zu events after revision %" PRId64, id, n,
			 since);

	pthread_mutex_lock(&hub->lock);
	if (rc < 0) {
		*retry_at = now_ms() + FETCH_RETRY_MS;
		vpc_queue(hub, v);
	} else {
		deliver(hub, v, ev, n, &ending);
		if (more)
			vpc_queue(hub, v);
		/* What was announced is read (a resync's "everything" too); notifications that
		 * came in meanwhile have queued it again. */
		if (v->log && v->notified > nexsrv_watch_log_last(v->log))
			v->notified = nexsrv_watch_log_last(v->log);
	}
	v->pins--;
	vpc_maybe_free(hub, v);
	pthread_mutex_unlock(&hub->lock);
	events_free(ev, n);
	finish_all(ending);
	pthread_mutex_lock(&hub->lock);
}

/* The heartbeats of one tick: each stream has its own tick of the interval, given round the
 * slots as streams come, so that a heartbeat never wakes every client at once (a change
 * arriving then would wait behind thousands of writes). */
static void heartbeat_locked(struct nexsrv_watch *hub, unsigned slot, struct watcher **ending)
{
	struct nexsrv_shared *empty;
	struct watcher *w, *next;

	if (!hub->heartbeat_slots[slot])
		return;
	empty = nexsrv_shared_new("\n", 1);
	if (!empty)
		return; /* the next one, then */
	/* A stream ended here leaves the list at once; the one after it stays. */
	for (w = hub->heartbeat_slots[slot]; w; w = next) {
		next = w->hb_next;
		if (w->live)
			send_line(hub, w, empty, ending);
	}
	nexsrv_shared_unref(empty);
}

static void wait_until(struct nexsrv_watch *hub, uint64_t deadline_ms)
{
	struct timespec ts;

	if (deadline_ms == NEVER) {
		pthread_cond_wait(&hub->cond, &hub->lock);
		return;
	}
	ts.tv_sec = (time_t)(deadline_ms / 1000);
	ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000;
	pthread_cond_timedwait(&hub->cond, &hub->lock, &ts);
}

static void *hub_main(void *arg)
{
	struct nexsrv_watch *hub = arg;
	unsigned tick_ms = hub->heartbeat_ms / hub->n_slots, slot = 0;
	uint64_t now = now_ms(), next_heartbeat = now + tick_ms,
		 next_gc = now + NEXSRV_WATCH_GC_INTERVAL_S * 1000ull, retry_at = 0,
		 next_failover = now + NEXSRV_PREFIX_FAILOVER_CHECK_MS;
	struct watcher *ending = NULL;

	pthread_mutex_lock(&hub->lock);
	while (!hub->stop) {
		uint64_t deadline;

		now = now_ms();
		if (hub->offline) {
			struct offline_job *jobs = hub->offline;

			hub->offline = NULL;
			pthread_mutex_unlock(&hub->lock);
			run_offline(hub, jobs);
			pthread_mutex_lock(&hub->lock);
			continue;
		}
		if (hub->resync) {
			hub->resync = false;
			resync_locked(hub);
		}
		if (hub->queue_head && now >= retry_at) {
			fetch_one(hub, &retry_at);
			continue;
		}
		if (now >= next_heartbeat) {
			next_heartbeat = now + tick_ms;
			heartbeat_locked(hub, slot, &ending);
			slot = (slot + 1) % hub->n_slots;
			if (ending) {
				pthread_mutex_unlock(&hub->lock);
				finish_all(ending);
				ending = NULL;
				pthread_mutex_lock(&hub->lock);
			}
			continue;
		}
		if (now >= next_gc) {
			next_gc = now + NEXSRV_WATCH_GC_INTERVAL_S * 1000ull;
			pthread_mutex_unlock(&hub->lock);
			collect_tombstones(hub);
			pthread_mutex_lock(&hub->lock);
			continue;
		}
		if (now >= next_failover) {
			next_failover = now + NEXSRV_PREFIX_FAILOVER_CHECK_MS;
			pthread_mutex_unlock(&hub->lock);
			prefix_failover(hub);
			pthread_mutex_lock(&hub->lock);
			continue;
		}
		deadline = next_heartbeat < next_gc ? next_heartbeat : next_gc;
		if (next_failover < deadline)
			deadline = next_failover;
		if (hub->queue_head && retry_at < deadline)
			deadline = retry_at;
		wait_until(hub, deadline);
	}

	/* Stopping: end what is still open, then mark the devices offline. */
	for (size_t b = 0; b < VPC_BUCKETS; b++) {
		struct watch_vpc *v = hub->buckets[b], *vnext;

		for (; v; v = vnext) {
			vnext = v->hnext;
			v->pins++;
			while (v->n_watchers)
				end_into(hub, v->watchers[v->n_watchers - 1], 0, NULL, &ending);
			v->pins--;
			vpc_maybe_free(hub, v);
		}
	}
	pthread_mutex_unlock(&hub->lock);
	finish_all(ending);
	pthread_mutex_lock(&hub->lock);
	while (hub->offline) {
		struct offline_job *jobs = hub->offline;

		hub->offline = NULL;
		pthread_mutex_unlock(&hub->lock);
		run_offline(hub, jobs);
		pthread_mutex_lock(&hub->lock);
	}
	pthread_mutex_unlock(&hub->lock);
	return NULL;
}

/* --- start and stop ------------------------------------------------------------------------ */

static void hub_free(struct nexsrv_watch *hub)
{
	for (size_t b = 0; b < VPC_BUCKETS; b++)
		while (hub->buckets[b]) {
			struct watch_vpc *v = hub->buckets[b];

			hub->buckets[b] = v->hnext;
			nexsrv_watch_log_free(v->log);
			free(v);
		}
	while (hub->offline) {
		struct offline_job *j = hub->offline;

		hub->offline = j->next;
		free(j);
	}
	nx_worker_free(hub->fanout);
	pthread_cond_destroy(&hub->cond);
	pthread_mutex_destroy(&hub->lock);
	free(hub->heartbeat_slots);
	free(hub);
}

static unsigned heartbeat_interval_ms(void)
{
	const char *s = getenv(NEXSRV_WATCH_HEARTBEAT_ENV);
	unsigned long long v;

	if (s && nx_parse_uint(s, 10, 3600 * 1000, &v, NULL) == 0) {
		nx_notice("watch: heartbeat every %llu ms (%s, for tests only)", v,
			  NEXSRV_WATCH_HEARTBEAT_ENV);
		return (unsigned)v;
	}
	return NEXSRV_WATCH_HEARTBEAT_S * 1000;
}

static size_t fanout_split_min(void)
{
	const char *s = getenv(NEXSRV_WATCH_FANOUT_SPLIT_ENV);
	unsigned long long v;

	if (s && nx_parse_uint(s, 2, 1000000, &v, NULL) == 0) {
		nx_notice("watch: changes to %llu streams or more from two threads (%s, for tests "
			  "only)",
			  v, NEXSRV_WATCH_FANOUT_SPLIT_ENV);
		return (size_t)v;
	}
	return FANOUT_SPLIT_MIN;
}

int nexsrv_watch_start(struct nexsrv *srv, struct nx_err *err)
{
	struct nexsrv_watch *hub;
	pthread_condattr_t attr;
	sigset_t all, old;
	int rc;

	if (!srv->db)
		return 0;
	hub = calloc(1, sizeof(*hub));
	if (!hub)
		return nx_err_set(err, ENOMEM, "watch: out of memory");
	hub->srv = srv;
	hub->heartbeat_ms = heartbeat_interval_ms();
	hub->split_min = fanout_split_min();
	hub->n_slots = hub->heartbeat_ms >= 2 * HEARTBEAT_TICK_MS
			       ? hub->heartbeat_ms / HEARTBEAT_TICK_MS
			       : 1;
	hub->heartbeat_slots = calloc(hub->n_slots, sizeof(*hub->heartbeat_slots));
	if (!hub->heartbeat_slots) {
		free(hub);
		return nx_err_set(err, ENOMEM, "watch: out of memory");
	}
	pthread_mutex_init(&hub->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&hub->cond, &attr);
	pthread_condattr_destroy(&attr);

	sigfillset(&all); /* signals are the main thread's */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&hub->thread, NULL, hub_main, hub);
	hub->fanout = rc == 0 ? nx_worker_new("nexsrv-fanout") : NULL;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0 && !hub->fanout)
		nx_warn("watch: no second thread for big fan-outs (%s): one does it all",
			strerror(errno));
	if (rc < 0) {
		hub_free(hub);
		return nx_err_set(err, -rc, "watch: cannot start a thread: %s", strerror(-rc));
	}
	hub->thread_started = true;
	hub->listener = nexsrv_db_listen(srv->db, NEXSRV_DB_CHANGES_CHANNEL, on_notify, hub, err);
	if (!hub->listener) {
		srv->watch = hub;
		nexsrv_watch_stop(srv);
		return -EINVAL;
	}
	srv->watch = hub;
	return 0;
}

void nexsrv_watch_stop(struct nexsrv *srv)
{
	struct nexsrv_watch *hub = srv->watch;

	if (!hub)
		return;
	nexsrv_db_listener_free(hub->listener); /* no more notifications */
	hub->listener = NULL;
	if (hub->thread_started) {
		pthread_mutex_lock(&hub->lock);
		hub->stop = true;
		pthread_cond_signal(&hub->cond);
		pthread_mutex_unlock(&hub->lock);
		pthread_join(hub->thread, NULL);
	}
	srv->watch = NULL;
	hub_free(hub);
}

/* --- serving a request (an HTTP pool thread) ------------------------------------------- */

static struct watcher *watcher_new(struct nexsrv_watch *hub, const struct nexsrv_caller *c,
				   const struct nexsrv_watch_request *wr, const char *client)
{
	struct watcher *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	if (nexsrv_watch_filter_init(&w->filter, wr) < 0) {
		free(w);
		return NULL;
	}
	w->hub = hub;
	w->caller_kind = (int)c->kind;
	nx_strlcpy(w->caller_id, c->kind == NEXSRV_CALLER_DEVICE ? c->device_id : c->user_id,
		   sizeof(w->caller_id));
	if (c->kind == NEXSRV_CALLER_DEVICE)
		nx_strlcpy(w->own_device, c->device_id, sizeof(w->own_device));
	nx_strlcpy(w->client, client ? client : "-", sizeof(w->client));
	nexsrv_watch_filter_describe(&w->filter, w->kinds, sizeof(w->kinds));
	w->since = time(NULL);
	return w;
}

/* Registers w with its VPC's entry (not live yet).  0 or -ENOMEM. */
static int watcher_attach(struct nexsrv_watch *hub, struct watcher *w, const char *vpc_id)
{
	struct watch_vpc *v;

	pthread_mutex_lock(&hub->lock);
	v = vpc_get(hub, vpc_id);
	if (v && v->n_watchers == v->cap_watchers) {
		size_t cap = v->cap_watchers ? 2 * v->cap_watchers : 8;
		struct watcher **grown = realloc(v->watchers, cap * sizeof(*grown));

		if (grown) {
			v->watchers = grown;
			v->cap_watchers = cap;
		} else {
			vpc_maybe_free(hub, v);
			v = NULL;
		}
	}
	if (v) {
		w->vpc = v;
		w->idx = v->n_watchers;
		v->watchers[v->n_watchers++] = w;
		hub->n_streams++;
		heartbeat_link(hub, w);
	}
	pthread_mutex_unlock(&hub->lock);
	return v ? 0 : -ENOMEM;
}

/* Ends a stream that never went live (its handler gives up). */
static void watcher_abandon(struct watcher *w, int code, const char *msg)
{
	struct nexsrv_watch *hub = w->hub;
	bool mine;

	pthread_mutex_lock(&hub->lock);
	mine = end_locked(hub, w, code, msg);
	pthread_mutex_unlock(&hub->lock);
	if (mine)
		finish(w);
}

/*
 * Hands w over to the hub from revision high (what its initial list covered): replays the
 * log's newer events and makes it live.  -EAGAIN when the log does not reach back to high
 * (read the gap from the database, then try again), -ENOMEM.
 */
static int watcher_go_live(struct watcher *w, int64_t high)
{
	struct nexsrv_watch *hub = w->hub;
	struct watch_vpc *v;
	struct watcher *ending = NULL;
	int rc = 0;

	pthread_mutex_lock(&hub->lock);
	v = w->vpc;
	if (!v->log) {
		v->log =
			nexsrv_watch_log_new(NEXSRV_WATCH_LOG_EVENTS, NEXSRV_WATCH_LOG_BYTES, high);
		if (!v->log) {
			rc = -ENOMEM;
			goto out;
		}
		if (v->notified > high)
			vpc_queue(hub, v);
	}
	if (!nexsrv_watch_log_covers(v->log, high)) {
		rc = -EAGAIN;
		goto out;
	}
	w->last = high;
	w->live = true;
	nexsrv_stream_set_close_cb(w->stream, stream_closed, w);
	for (size_t i = nexsrv_watch_log_after(v->log, high); i < nexsrv_watch_log_count(v->log);
	     i++) {
		const struct nexsrv_watch_event *ev = nexsrv_watch_log_at(v->log, i);

		w->last = ev->revision;
		if (nexsrv_watch_filter_match(&w->filter, ev->kind, ev->key))
			send_line(hub, w, ev->shared, &ending);
		if (w->ended)
			break;
	}
out:
	pthread_mutex_unlock(&hub->lock);
	finish_all(ending);
	return rc;
}

/* Marks the caller's device with public_key in vpc online; 1 with the device's id and the
 * time it recorded, 0 when the caller has no such device there. */
static int mark_online(PGconn *conn, const struct nexsrv_caller *c, const char *vpc,
		       const char *public_key, struct watcher *w, struct nx_err *err)
{
	char grace[16];
	const char *params[] = { vpc, public_key,
				 c->kind == NEXSRV_CALLER_DEVICE ? c->device_id : NULL,
				 c->kind == NEXSRV_CALLER_DEVICE ? NULL : c->user_id, grace };
	PGresult *res = NULL;
	int rc;

	/* The VPC's writer lock before the row, and the prefixes it may take back
	 * (migrations/0003_active_prefixes.sql). */
	snprintf(grace, sizeof(grace), "%u", nexsrv_prefix_grace_ms(w->hub->srv));
	for (int attempt = 0; attempt < NEXSRV_DB_TXN_ATTEMPTS; attempt++) {
		rc = nexsrv_db_exec(conn,
				    "SELECT id, online_at FROM nexodus_device_online($1, $2, "
				    "$3::uuid, $4::uuid, $5::integer)",
				    5, params, &res, err);
		if (rc != -EAGAIN) /* a deadlock: someone else's lock order, once more */
			break;
	}
	if (rc == 1) {
		nx_strlcpy(w->online_device, nexsrv_db_text(res, 0, 0), sizeof(w->online_device));
		nx_strlcpy(w->online_at, nexsrv_db_text(res, 0, 1), sizeof(w->online_at));
	}
	PQclear(res);
	return rc;
}

/* The initial list, read in one snapshot. */
struct snapshot {
	const char *vpc;
	const struct nexsrv_watch_request *wr;
	int64_t high;	 /* the VPC's newest visible revision */
	int64_t horizon; /* the newest purged tombstone */
	struct nexsrv_watch_event **ev;
	size_t n;
};

static int snapshot_txn(PGconn *conn, void *arg, struct nx_err *err)
{
	struct snapshot *s = arg;
	const char *params[] = { s->vpc };
	struct nexsrv_sql q;
	struct rev_params p;
	PGresult *res = NULL;
	int rc;

	events_free(s->ev, s->n);
	s->ev = NULL;
	s->n = 0;
	rc = nexsrv_db_exec(
		conn,
		"SELECT greatest((SELECT max(revision) FROM devices WHERE vpc_id = $1), "
		"(SELECT max(revision) FROM security_groups WHERE vpc_id = $1), "
		"(SELECT max(revision) FROM device_metadata WHERE vpc_id = $1), "
		"(SELECT max(revision) FROM tombstones WHERE vpc_id = $1), "
		"(SELECT revision FROM vpcs WHERE id = $1), 0), "
		"(SELECT revision FROM tombstone_horizon)",
		1, params, &res, err);
	if (rc == 1)
		rc = nexsrv_db_get_int64(res, 0, 0, &s->high, err);
	if (rc == 0)
		rc = nexsrv_db_get_int64(res, 0, 1, &s->horizon, err);
	else if (rc > 0)
		rc = nx_err_set(err, EIO, "no revision row");
	PQclear(res);
	res = NULL;
	if (rc < 0)
		return rc;
	events_sql(&q, &p, s->vpc, s->wr, 0, 0);
	rc = nexsrv_sql_exec(conn, &q, &res, err);
	if (rc >= 0)
		rc = events_from(res, &s->ev, &s->n, err);
	PQclear(res);
	nexsrv_sql_fini(&q);
	return rc;
}

/* Writes a line the handler owns; false when the stream cannot take it. */
static bool write_line(struct watcher *w, char *line, size_t len)
{
	int rc = line ? nexsrv_stream_write(w->stream, line, len) : -ENOMEM;

	free(line);
	return rc == 0;
}

/* The initial list: objects in revision order, each kind's tail after its last one (and
 * first for kinds with none).  False when the stream cannot take it. */
static bool send_initial(struct watcher *w, const struct nexsrv_watch_request *wr,
			 struct snapshot *s)
{
	enum nexsrv_watch_kind *kinds = calloc(s->n ? s->n : 1, sizeof(*kinds));
	long last[NEXSRV_WATCH_KINDS];
	bool tail[NEXSRV_WATCH_KINDS] = { false };
	char *line;
	size_t len;
	bool ok = true;

	if (!kinds)
		return false;
	for (size_t i = 0; i < s->n; i++)
		kinds[i] = s->ev[i]->kind;
	nexsrv_watch_tail_plan(kinds, s->n, last);
	free(kinds);
	for (size_t i = 0; i < wr->n; i++)
		tail[wr->spec[i].kind] = !wr->spec[i].at_tail;
	for (size_t i = 0; ok && i < wr->n; i++) {
		enum nexsrv_watch_kind k = wr->spec[i].kind;

		if (last[k] < 0 && tail[k]) {
			nexsrv_watch_line(k, false, true, NULL, &line, &len);
			ok = write_line(w, line, len);
		}
	}
	for (size_t i = 0; ok && i < s->n; i++) {
		const struct nexsrv_watch_event *ev = s->ev[i];

		ok = nexsrv_stream_write_shared(w->stream, ev->shared) == 0;
		if (ok && last[ev->kind] == (long)i && tail[ev->kind]) {
			nexsrv_watch_line(ev->kind, false, true, NULL, &line, &len);
			ok = write_line(w, line, len);
		}
	}
	return ok;
}

/* Reads from the database what the log no longer holds: everything of the VPC after
 * *high, written to the stream; *high moves up. */
static int catch_up(struct nexsrv_watch *hub, struct watcher *w, const char *vpc, int64_t *high,
		    struct nx_err *err)
{
	PGconn *conn = nexsrv_db_acquire(hub->srv->db, NEXSRV_DB_ACQUIRE_TIMEOUT_MS, err);
	bool more = true;
	int rc = 0;

	if (!conn)
		return -ENOTCONN;
	while (rc == 0 && more) {
		struct nexsrv_watch_event **ev = NULL;
		size_t n = 0;

		rc = fetch_since(conn, vpc, *high, NEXSRV_WATCH_FETCH_LIMIT, &ev, &n, &more, err);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			*high = ev[i]->revision;
			if (nexsrv_watch_filter_match(&w->filter, ev[i]->kind, ev[i]->key) &&
			    nexsrv_stream_write_shared(w->stream, ev[i]->shared) < 0)
				rc = nx_err_set(err, ENOBUFS,
						"the stream does not take the catch-up");
		}
		events_free(ev, n);
	}
	nexsrv_db_release(hub->srv->db, conn);
	return rc;
}

int nexsrv_watch_serve(struct nexsrv_watch *hub, struct nexsrv_req *req,
		       const struct nexsrv_caller *c, const char *vpc_id,
		       const struct nexsrv_watch_request *wr, const char *public_key)
{
	struct snapshot snap = { .vpc = vpc_id, .wr = wr };
	struct nx_err err = { "" };
	struct watcher *w = NULL;
	PGconn *conn;
	int rc;

	conn = nexsrv_api_db_acquire(req, hub->srv);
	if (!conn)
		return 0;
	rc = nexsrv_api_vpc_reachable(conn, c, vpc_id, NULL, &err);
	if (rc <= 0) {
		nexsrv_db_release(hub->srv->db, conn);
		return rc == 0 ? nexsrv_reply_not_found(req, "vpc")
			       : nexsrv_api_db_failed(req, rc, &err);
	}
	w = watcher_new(hub, c, wr, nexsrv_req_client(req));
	if (!w) {
		nexsrv_db_release(hub->srv->db, conn);
		return -ENOMEM;
	}
	if (public_key) {
		rc = mark_online(conn, c, vpc_id, public_key, w, &err);
		if (rc <= 0) {
			nexsrv_db_release(hub->srv->db, conn);
			nexsrv_watch_filter_fini(&w->filter);
			free(w);
			return rc == 0 ? nexsrv_reply_not_found(req, "device")
				       : nexsrv_api_db_failed(req, rc, &err);
		}
	}
	/* From here on the VPC's entry records notifications for this stream. */
	if (watcher_attach(hub, w, vpc_id) < 0) {
		nexsrv_db_release(hub->srv->db, conn);
		watcher_abandon(w, 0, NULL);
		return -ENOMEM;
	}
	rc = nexsrv_db_run_txn(conn, NEXSRV_DB_REPEATABLE_READ, snapshot_txn, &snap, &err);
	if (rc == -ENOTCONN)
		nexsrv_db_check_now(hub->srv->db);
	nexsrv_db_release(hub->srv->db, conn);
	if (rc < 0) {
		watcher_abandon(w, 0, NULL);
		rc = nexsrv_api_db_failed(req, rc, &err);
		goto out;
	}

	if (nexsrv_reply_header(req, "Content-Type", NEXSRV_WATCH_CONTENT_TYPE) < 0 ||
	    !(w->stream = nexsrv_stream_start(req))) {
		watcher_abandon(w, 0, NULL);
		rc = -ENOMEM; /* unless it replied already (stopping): then this is ignored */
		goto out;
	}
	rc = 0;
	if (nexsrv_watch_request_too_old(wr, snap.horizon)) {
		nx_debug(&dbg_nexsrv_watch, "%s: resumes from before revision %" PRId64 ": re-list",
			 w->client, snap.horizon);
		watcher_abandon(w, NEXSRV_WATCH_ERR_TOO_OLD, MSG_TOO_OLD);
		goto out;
	}
	if (!send_initial(w, wr, &snap)) {
		watcher_abandon(w, NEXSRV_WATCH_ERR_BEHIND,
				"the initial list does not fit the stream's buffer: ask for fewer "
				"kinds or resume from a later revision");
		goto out;
	}
	nx_debug(&dbg_nexsrv_watch, "%s watches VPC %s (%s): %zu objects up to revision %" PRId64,
		 w->client, vpc_id, w->kinds, snap.n, snap.high);
	for (int attempt = 0;; attempt++) {
		int lrc = watcher_go_live(w, snap.high);

		if (lrc == 0)
			break;
		if (lrc == -EAGAIN && attempt < CATCH_UP_ATTEMPTS &&
		    catch_up(hub, w, vpc_id, &snap.high, &err) == 0)
			continue;
		nx_warn("watch: %s: cannot hand the stream over: %s", w->client,
			lrc == -EAGAIN ? err.msg : strerror(-lrc));
		watcher_abandon(w, NEXSRV_WATCH_ERR_INTERNAL,
				"the stream could not be started: reconnect and resume");
		break;
	}
out:
	events_free(snap.ev, snap.n);
	return rc;
}

/* --- show nexodus watchers ------------------------------------------------------------- */

int nexsrv_watch_list(struct nexsrv_watch *hub, struct nexsrv_watcher_info **out, size_t *n,
		      struct nexsrv_watch_stats *stats)
{
	struct nexsrv_watcher_info *info = NULL;
	size_t i = 0;

	*out = NULL;
	*n = 0;
	memset(stats, 0, sizeof(*stats));
	if (!hub)
		return 0;
	pthread_mutex_lock(&hub->lock);
	if (hub->n_streams) {
		info = calloc(hub->n_streams, sizeof(*info));
		if (!info) {
			pthread_mutex_unlock(&hub->lock);
			return -ENOMEM;
		}
	}
	for (size_t b = 0; b < VPC_BUCKETS; b++)
		for (struct watch_vpc *v = hub->buckets[b]; v; v = v->hnext) {
			if (v->log) {
				stats->log_events += nexsrv_watch_log_count(v->log);
				stats->log_bytes += nexsrv_watch_log_bytes(v->log);
			}
			for (size_t k = 0; k < v->n_watchers && i < hub->n_streams; k++, i++) {
				const struct watcher *w = v->watchers[k];
				struct nexsrv_watcher_info *x = &info[i];

				nx_strlcpy(x->vpc_id, v->id, sizeof(x->vpc_id));
				x->caller_kind = w->caller_kind;
				nx_strlcpy(x->caller_id, w->caller_id, sizeof(x->caller_id));
				nx_strlcpy(x->online_device, w->online_device,
					   sizeof(x->online_device));
				nx_strlcpy(x->client, w->client, sizeof(x->client));
				nx_strlcpy(x->kinds, w->kinds, sizeof(x->kinds));
				x->last_revision = w->last;
				x->live = w->live;
				x->since = w->since;
			}
		}
	stats->streams = hub->n_streams;
	stats->vpcs = hub->n_vpcs;
	stats->events = hub->events;
	stats->ended_behind = hub->ended_behind;
	pthread_mutex_unlock(&hub->lock);
	stats->listening = nexsrv_db_listener_connected(hub->listener);
	*out = info;
	*n = i;
	return 0;
}
