/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The watch streams: agents and consoles keep one long HTTP response open per VPC and
 * learn of every change to its devices, security groups, device metadata and the VPC
 * itself as it commits, in revision order, without polling.
 *
 *   POST /api/vpcs/{id}/events   [{"kind", "gt_revision", "at_tail", "options"}, ...]
 *   POST /api/events             the same, the VPC in options["vpc-id"]
 *
 * The answer (200, Content-Type application/json;stream=watch) is one JSON object per
 * line: {"kind", "type": "change" | "delete", "value"} for objects, {"kind", "type":
 * "tail"} once a kind's initial list is complete, {"type": "error", "value": {"error",
 * "code"}} just before the server ends the stream, and an empty line every
 * NEXSRV_WATCH_HEARTBEAT_S seconds of the stream's life.  doc/api/README.md describes it
 * for clients.
 *
 * nexsrv_watch.c      the hub: one per process.  One LISTEN connection (nexsrv_db_listen)
 *                     learns of every commit; for a VPC that has watchers one query fetches
 *                     what changed since the hub last looked, it is rendered to its line
 *                     once, kept in the VPC's change log and written to each stream whose
 *                     kinds match.  A thread of its own does the fetching, the heartbeats,
 *                     the tombstone collection, marking devices offline and handing
 *                     the prefixes of devices offline past the grace over.
 * nexsrv_watch_log.c  what needs no database (unit-tested and fuzzed on its own): the
 *                     request body, kind filters, the lines, the bounded per-VPC change log,
 *                     the order of the initial list.
 * nexsrv_api_events.c the two routes.
 *
 * Ordering.  Within one VPC, revisions become visible in the order they are handed out
 * (the schema takes a per-VPC lock for them, 0001_initial.sql), so "everything of VPC v
 * newer than revision r" read at any moment has no holes.  The hub relies on that rather
 * than on the order notifications arrive in: a notification only says "VPC v has something
 * newer than r", the hub reads all of it since what it last read, and each stream skips
 * what it already has (every stream remembers the last revision it was given).
 */
#ifndef NEXSRV_WATCH_H
#define NEXSRV_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "lib/errmsg.h"
#include "nexsrv/nexsrv_api_input.h"
#include "nexsrv/nexsrv_shared.h"

struct nexsrv;
struct nexsrv_caller;
struct nexsrv_req;
struct nexsrv_stream;
struct nexsrv_watch;

/* --- constants --------------------------------------------------------------------------- */

#define NEXSRV_WATCH_CONTENT_TYPE "application/json;stream=watch"

/* An empty line this often on every stream, so that proxies and clients see it alive. */
#define NEXSRV_WATCH_HEARTBEAT_S      5
/* Test-only: the heartbeat interval in milliseconds, read once when the hub starts, so
 * that a lab test need not wait 5 s.  Not a configuration knob. */
#define NEXSRV_WATCH_HEARTBEAT_ENV    "NEXSRV_TEST_WATCH_HEARTBEAT_MS"
/* Test-only: from how many streams a VPC's changes go out from two threads (normally
 * thousands), so that a lab test's few streams take that path too. */
#define NEXSRV_WATCH_FANOUT_SPLIT_ENV "NEXSRV_TEST_WATCH_FANOUT_SPLIT"
/* How often tombstones older than cfg.tombstone_retention_s are purged. */
#define NEXSRV_WATCH_GC_INTERVAL_S    60

/* A VPC's change log keeps at most this many recent events and bytes of lines. */
#define NEXSRV_WATCH_LOG_EVENTS	 512
#define NEXSRV_WATCH_LOG_BYTES	 (1024 * 1024)
/* Most rows one fetch of the hub reads; more are read by the next fetch. */
#define NEXSRV_WATCH_FETCH_LIMIT 500

/* The "code" of an error line: why the stream ends, and what the client should do. */
#define NEXSRV_WATCH_ERR_DEVICE_GONE 401 /* the caller's own device was deleted */
#define NEXSRV_WATCH_ERR_VPC_GONE    404 /* the VPC was deleted */
#define NEXSRV_WATCH_ERR_TOO_OLD     410 /* gt_revision is before the tombstone horizon: re-list */
#define NEXSRV_WATCH_ERR_INTERNAL    500 /* reconnect and resume */
#define NEXSRV_WATCH_ERR_BEHIND	     503 /* the client read too slowly: reconnect and resume */

/* --- kinds ------------------------------------------------------------------------------- */

enum nexsrv_watch_kind {
	NEXSRV_WATCH_DEVICE,
	NEXSRV_WATCH_SECURITY_GROUP,
	NEXSRV_WATCH_DEVICE_METADATA,
	NEXSRV_WATCH_VPC,
};
#define NEXSRV_WATCH_KINDS 4

/* "device", "security-group", "device-metadata", "vpc" (also the tombstones' kind). */
const char *nexsrv_watch_kind_name(enum nexsrv_watch_kind kind);
/* The kind named s, or -1. */
int nexsrv_watch_kind_parse(const char *s);

/* --- the request ------------------------------------------------------------------------- */

#define NEXSRV_WATCH_MAX_PREFIXES 16

struct nexsrv_watch_spec {
	enum nexsrv_watch_kind kind;
	int64_t gt_revision; /* 0 when not given */
	bool at_tail;
	size_t n_prefixes; /* device-metadata: key prefixes (none: every key) */
	const char *prefixes[NEXSRV_WATCH_MAX_PREFIXES]; /* borrowed from the body */
};

struct nexsrv_watch_request {
	size_t n; /* 1 to NEXSRV_WATCH_KINDS, one per kind, in the order asked */
	struct nexsrv_watch_spec spec[NEXSRV_WATCH_KINDS];
	/* options["vpc-id"] in lower case (the same on every entry), or "" when none gave it */
	char vpc_id[NEXSRV_INPUT_UUID_LEN];
};

/*
 * Checks a watch request body: a JSON array of 1 to NEXSRV_WATCH_KINDS objects, each
 * {"kind": one of the four, each at most once; "gt_revision": an integer from 0 to
 * INT64_MAX (absent or null: 0); "at_tail": a boolean; "options": an object or null}.
 * options may hold "vpc-id" (a UUID; global: required on every entry, and the same on all)
 * and, for device-metadata only, "prefix" (or "prefixes", the key the original service
 * actually decoded): a string or an array of at most NEXSRV_WATCH_MAX_PREFIXES strings of
 * 1 to NEXSRV_METADATA_KEY_MAX bytes of text.  Other members are ignored.  0, or -EINVAL /
 * -ENOENT (a required member missing) with e naming the field ("request[1].kind") and
 * saying why.  out borrows strings from body.
 */
int nexsrv_watch_request_parse(struct json_object *body, bool global,
			       struct nexsrv_watch_request *out, struct nexsrv_input_error *e);

/* Whether any entry asks to resume from before horizon (the newest purged tombstone): a
 * delete it should see may be gone.  gt_revision 0 (a full list) never is. */
bool nexsrv_watch_request_too_old(const struct nexsrv_watch_request *r, int64_t horizon);

/* --- what a stream receives ------------------------------------------------------------- */

struct nexsrv_watch_filter {
	unsigned kinds;	   /* 1u << enum nexsrv_watch_kind */
	size_t n_prefixes; /* device-metadata keys must start with one of these (none: all) */
	char **prefixes;   /* owned */
};

/* The filter of a request (copies the prefixes).  0 or -ENOMEM. */
int nexsrv_watch_filter_init(struct nexsrv_watch_filter *f, const struct nexsrv_watch_request *r);
void nexsrv_watch_filter_fini(struct nexsrv_watch_filter *f);
/* Whether an event of kind (key: a metadata key, else NULL) is for this stream. */
bool nexsrv_watch_filter_match(const struct nexsrv_watch_filter *f, enum nexsrv_watch_kind kind,
			       const char *key);
/* "device,device-metadata(prefix a,b)" into buf (truncated to fit); returns buf. */
char *nexsrv_watch_filter_describe(const struct nexsrv_watch_filter *f, char *buf, size_t size);

/* --- lines ------------------------------------------------------------------------------- */

/*
 * {"kind":K,"type":"change"|"delete","value":V}\n with value (borrowed; the REST API's
 * rendering of the object) serialised compactly, or {"kind":K,"type":"tail"}\n when value
 * is NULL and tail is set.  A new string in *line (free it), its length in *len.  0 or
 * -ENOMEM.
 */
int nexsrv_watch_line(enum nexsrv_watch_kind kind, bool deleted, bool tail,
		      struct json_object *value, char **line, size_t *len);
/* {"type":"error","value":{"error":msg,"code":code}}\n.  0 or -ENOMEM. */
int nexsrv_watch_error_line(int code, const char *msg, char **line, size_t *len);

/* --- the change log of one VPC ----------------------------------------------------------- */

struct nexsrv_watch_event {
	int64_t revision;
	enum nexsrv_watch_kind kind;
	bool deleted;
	char id[NEXSRV_INPUT_UUID_LEN]; /* the object's id (the device's, for metadata) */
	char *key;			/* device-metadata: the key; else NULL */
	char *line;			/* the whole line, "\n" included: shared's bytes */
	size_t len;
	struct nexsrv_shared *shared; /* the line, as queued on every stream it goes to */
};

/* A new event (copies id and key, renders the line from value).  NULL when out of memory
 * or when id is longer than a UUID. */
struct nexsrv_watch_event *nexsrv_watch_event_new(int64_t revision, enum nexsrv_watch_kind kind,
						  bool deleted, const char *id, const char *key,
						  struct json_object *value);
void nexsrv_watch_event_free(struct nexsrv_watch_event *ev);

/*
 * The recent events of one VPC in revision order, at most max_events of them and
 * max_bytes of lines (the oldest go first).  "floor" is the revision up to which events
 * may be missing: the log was started after it, or such events were dropped; a log
 * "covers" revision r when every event newer than r that was appended is still held.
 */
struct nexsrv_watch_log;

struct nexsrv_watch_log *nexsrv_watch_log_new(size_t max_events, size_t max_bytes, int64_t base);
void nexsrv_watch_log_free(struct nexsrv_watch_log *log);
/* Appends ev (taken over on success): -EINVAL unless ev->revision > the last one. */
int nexsrv_watch_log_append(struct nexsrv_watch_log *log, struct nexsrv_watch_event *ev);
int64_t nexsrv_watch_log_last(const struct nexsrv_watch_log *log);
int64_t nexsrv_watch_log_floor(const struct nexsrv_watch_log *log);
bool nexsrv_watch_log_covers(const struct nexsrv_watch_log *log, int64_t since);
size_t nexsrv_watch_log_count(const struct nexsrv_watch_log *log);
size_t nexsrv_watch_log_bytes(const struct nexsrv_watch_log *log);
/* The index of the first event newer than since (nexsrv_watch_log_count() when none). */
size_t nexsrv_watch_log_after(const struct nexsrv_watch_log *log, int64_t since);
/* The event at index i (0: the oldest held), or NULL. */
const struct nexsrv_watch_event *nexsrv_watch_log_at(const struct nexsrv_watch_log *log, size_t i);

/* --- the initial list -------------------------------------------------------------------- */

/*
 * Where the "tail" of each kind goes in the initial list: rows (the objects of all kinds
 * newer than their gt_revision, merged in revision order; row_kinds[i] the kind of row i)
 * are sent in that order, a kind's tail right after its last row, and the tails of kinds
 * that have no row first, in the order of the request (as the original service's streams
 * come out).  last_row[k] is the index of kind k's last row, -1 when it has none.
 */
void nexsrv_watch_tail_plan(const enum nexsrv_watch_kind *row_kinds, size_t n_rows,
			    long last_row[NEXSRV_WATCH_KINDS]);

/* --- the hub (nexsrv_watch.c) ------------------------------------------------------------ */

/* Starts the hub of srv (srv->watch) when there is a database: its thread and its LISTEN.
 * 0, or a negative errno with err set. */
int nexsrv_watch_start(struct nexsrv *srv, struct nx_err *err);
/* Ends every stream still open, marks their devices offline, stops and frees the hub.
 * Call after the HTTP server has stopped and before the database pool closes. */
void nexsrv_watch_stop(struct nexsrv *srv);
/* A change this process committed in VPC vpc_id, at revision: its streams are fed at once,
 * without waiting for the database's notification of it (which then finds it read). */
void nexsrv_watch_changed(struct nexsrv *srv, const char *vpc_id, int64_t revision);

/*
 * Serves one watch request (the handlers of nexsrv_api_events.c, once the caller, the body
 * and public_key are checked): 404 unless the caller reaches VPC vpc_id; marks the device
 * of public_key (canonical base64, or NULL) online (404 when the caller has no such device
 * in the VPC); reads the initial list; starts the stream and hands it to the hub.  Replies
 * itself on every path; returns 0, or a negative errno when it could not reply at all.
 */
int nexsrv_watch_serve(struct nexsrv_watch *hub, struct nexsrv_req *req,
		       const struct nexsrv_caller *caller, const char *vpc_id,
		       const struct nexsrv_watch_request *wr, const char *public_key);

/* One open stream, for `show nexodus watchers`. */
struct nexsrv_watcher_info {
	char vpc_id[NEXSRV_INPUT_UUID_LEN];
	int caller_kind;			   /* enum nexsrv_caller_kind */
	char caller_id[NEXSRV_INPUT_UUID_LEN];	   /* the user, or the device of a device token */
	char online_device[NEXSRV_INPUT_UUID_LEN]; /* the device it keeps online, or "" */
	char client[64];			   /* the client's address */
	char kinds[160];			   /* nexsrv_watch_filter_describe() */
	int64_t last_revision;			   /* the newest revision it has been given */
	bool live;				   /* false while its initial list is being sent */
	time_t since;				   /* when it opened (wall clock) */
};

struct nexsrv_watch_stats {
	size_t streams;
	size_t vpcs;	       /* VPCs with streams */
	size_t log_events;     /* events held in the change logs */
	size_t log_bytes;      /* their lines' bytes */
	bool listening;	       /* the LISTEN connection is up */
	uint64_t events;       /* events read from the database since start */
	uint64_t ended_behind; /* streams ended because their client read too slowly */
};

/* A copy of the open streams (malloc'd array in *out, free it) and the counters; any
 * thread.  0 or -ENOMEM; a NULL hub gives none. */
int nexsrv_watch_list(struct nexsrv_watch *hub, struct nexsrv_watcher_info **out, size_t *n,
		      struct nexsrv_watch_stats *stats);

#endif /* NEXSRV_WATCH_H */
