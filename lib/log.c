/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging targets, level filter, sink hook and the registry of debug
 * switches; see log.h.  A message is formatted once into a fixed buffer on
 * the caller's stack, then handed to each target under one lock so that
 * lines from different threads never interleave.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "lib/errmsg.h"
#include "lib/log.h"

_Static_assert(NX_LOG_ERR == LOG_ERR, "NX_LOG_ERR must equal LOG_ERR");
_Static_assert(NX_LOG_WARNING == LOG_WARNING, "NX_LOG_WARNING must equal LOG_WARNING");
_Static_assert(NX_LOG_NOTICE == LOG_NOTICE, "NX_LOG_NOTICE must equal LOG_NOTICE");
_Static_assert(NX_LOG_INFO == LOG_INFO, "NX_LOG_INFO must equal LOG_INFO");
_Static_assert(NX_LOG_DEBUG == LOG_DEBUG, "NX_LOG_DEBUG must equal LOG_DEBUG");

#define LOG_DEFAULT_PROGNAME "nexodus"
#define LOG_DEFAULT_TARGETS  NX_LOG_TO_STDERR
#define LOG_DEFAULT_LEVEL    NX_LOG_INFO
#define DEBUG_NAME_MAX	     32

/* Guards everything below except log_min_level, which is atomic. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_progname[64] = LOG_DEFAULT_PROGNAME;
static unsigned log_targets = LOG_DEFAULT_TARGETS;
static bool log_syslog_open;
static nx_log_sink_fn log_sink;
static void *log_sink_arg;

static int log_min_level = LOG_DEFAULT_LEVEL;

/* Set while this thread is inside the targets, so a sink that logs is
 * ignored rather than deadlocking on log_lock. */
static __thread bool log_in_emit;

static const char *const level_names[] = {
	"EMERG", "ALERT", "CRIT", "ERR", "WARNING", "NOTICE", "INFO", "DEBUG",
};

static const struct {
	const char *word;
	int level;
} level_words[] = {
	{ "emerg", LOG_EMERG },
	{ "emergencies", LOG_EMERG },
	{ "alert", LOG_ALERT },
	{ "alerts", LOG_ALERT },
	{ "crit", LOG_CRIT },
	{ "critical", LOG_CRIT },
	{ "err", NX_LOG_ERR },
	{ "error", NX_LOG_ERR },
	{ "errors", NX_LOG_ERR },
	{ "warning", NX_LOG_WARNING },
	{ "warnings", NX_LOG_WARNING },
	{ "notice", NX_LOG_NOTICE },
	{ "notifications", NX_LOG_NOTICE },
	{ "info", NX_LOG_INFO },
	{ "informational", NX_LOG_INFO },
	{ "debug", NX_LOG_DEBUG },
	{ "debugging", NX_LOG_DEBUG },
};

static int clamp_level(int level)
{
	if (level < LOG_EMERG)
		return LOG_EMERG;
	if (level > LOG_DEBUG)
		return LOG_DEBUG;
	return level;
}

const char *nx_log_level_name(int level)
{
	if (level < 0 || level >= (int)(sizeof(level_names) / sizeof(level_names[0])))
		return "UNKNOWN";
	return level_names[level];
}

int nx_log_level_parse(const char *name, struct nx_err *err)
{
	size_t i;

	if (!name || !*name)
		return nx_err_set(err, EINVAL, "empty log level");
	for (i = 0; i < sizeof(level_words) / sizeof(level_words[0]); i++) {
		if (strcasecmp(name, level_words[i].word) == 0)
			return level_words[i].level;
	}
	return nx_err_set(err, EINVAL,
			  "\"%.64s\": unknown log level (expected errors, warnings, "
			  "notifications, informational or debugging)",
			  name);
}

int nx_log_format_time(char *buf, size_t size, uint64_t wall_ns)
{
	time_t sec = (time_t)(wall_ns / 1000000000u);
	unsigned ms = (unsigned)(wall_ns % 1000000000u / 1000000u);
	struct tm tm;
	int n;

	if (size < NX_LOG_TIME_LEN)
		return -ENOSPC;
	if (!gmtime_r(&sec, &tm))
		return -EOVERFLOW;
	n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	return n;
}

void nx_log_init(const char *progname, unsigned targets, int min_level)
{
	pthread_mutex_lock(&log_lock);
	if (log_syslog_open) {
		closelog();
		log_syslog_open = false;
	}
	snprintf(log_progname, sizeof(log_progname), "%s",
		 progname && *progname ? progname : LOG_DEFAULT_PROGNAME);
	log_targets = targets & (NX_LOG_TO_STDERR | NX_LOG_TO_SYSLOG);
	if (log_targets & NX_LOG_TO_SYSLOG) {
		/* openlog keeps the pointer: log_progname is static and only
		 * changes after closelog() above. */
		openlog(log_progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_syslog_open = true;
	}
	__atomic_store_n(&log_min_level, clamp_level(min_level), __ATOMIC_RELAXED);
	pthread_mutex_unlock(&log_lock);
}

void nx_log_fini(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_syslog_open) {
		closelog();
		log_syslog_open = false;
	}
	snprintf(log_progname, sizeof(log_progname), "%s", LOG_DEFAULT_PROGNAME);
	log_targets = LOG_DEFAULT_TARGETS;
	log_sink = NULL;
	log_sink_arg = NULL;
	__atomic_store_n(&log_min_level, LOG_DEFAULT_LEVEL, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&log_lock);
}

void nx_log_set_level(int min_level)
{
	__atomic_store_n(&log_min_level, clamp_level(min_level), __ATOMIC_RELAXED);
}

int nx_log_get_level(void)
{
	return __atomic_load_n(&log_min_level, __ATOMIC_RELAXED);
}

unsigned nx_log_get_targets(void)
{
	unsigned targets;

	pthread_mutex_lock(&log_lock);
	targets = log_targets;
	pthread_mutex_unlock(&log_lock);
	return targets;
}

void nx_log_set_sink(nx_log_sink_fn fn, void *arg)
{
	pthread_mutex_lock(&log_lock);
	log_sink = fn;
	log_sink_arg = fn ? arg : NULL;
	pthread_mutex_unlock(&log_lock);
}

/* Called with log_lock held. */
static void write_stderr(int level, const char *msg)
{
	char line[NX_LOG_MSG_MAX + 128];
	char ts[NX_LOG_TIME_LEN];
	struct timespec now;
	size_t len, off = 0;
	ssize_t n;
	int rc;

	clock_gettime(CLOCK_REALTIME, &now);
	if (nx_log_format_time(ts, sizeof(ts),
			       (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec) < 0)
		snprintf(ts, sizeof(ts), "-");
	rc = snprintf(line, sizeof(line), "%s %s: %s: %s\n", ts, log_progname,
		      nx_log_level_name(level), msg);
	if (rc < 0)
		return;
	len = (size_t)rc < sizeof(line) ? (size_t)rc : sizeof(line) - 1;
	if ((size_t)rc >= sizeof(line))
		line[len - 1] = '\n';

	/* One write(2) per line keeps lines whole even across processes. */
	while (off < len) {
		n = write(STDERR_FILENO, line + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		off += (size_t)n;
	}
}

/* Makes the message one printable line: trailing newlines go, other control
 * characters (which could forge extra log lines) become '?'. */
static void sanitize(char *msg)
{
	size_t len = strlen(msg);
	unsigned char *p;

	while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
		msg[--len] = '\0';
	for (p = (unsigned char *)msg; *p; p++) {
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			*p = '?';
	}
}

static void log_emit(int level, const char *prefix, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void log_emit(int level, const char *prefix, const char *fmt, va_list ap)
{
	char msg[NX_LOG_MSG_MAX];
	size_t off = 0;
	bool truncated = false;
	int n;

	if (log_in_emit)
		return;

	if (prefix) {
		n = snprintf(msg, sizeof(msg), "[%s] ", prefix);
		if (n > 0)
			off = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
	}
	n = vsnprintf(msg + off, sizeof(msg) - off, fmt, ap);
	if (n < 0)
		snprintf(msg + off, sizeof(msg) - off, "(unformattable message)");
	else if ((size_t)n >= sizeof(msg) - off)
		truncated = true;

	sanitize(msg);
	if (truncated)
		memcpy(msg + sizeof(msg) - sizeof(NX_LOG_TRUNCATED), NX_LOG_TRUNCATED,
		       sizeof(NX_LOG_TRUNCATED));

	pthread_mutex_lock(&log_lock);
	log_in_emit = true;
	if (log_targets & NX_LOG_TO_STDERR)
		write_stderr(level, msg);
	if (log_targets & NX_LOG_TO_SYSLOG)
		syslog(level, "%s", msg);
	if (log_sink)
		log_sink(level, msg, log_sink_arg);
	log_in_emit = false;
	pthread_mutex_unlock(&log_lock);
}

void nx_vlog(int level, const char *fmt, va_list ap)
{
	int saved_errno = errno;

	level = clamp_level(level);
	if (level <= __atomic_load_n(&log_min_level, __ATOMIC_RELAXED))
		log_emit(level, NULL, fmt, ap);
	errno = saved_errno;
}

void nx_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	nx_vlog(level, fmt, ap);
	va_end(ap);
}

/* --- debug switches ----------------------------------------------------- */

/* Guards the list; the `on` flags themselves are atomic. */
static pthread_mutex_t dbg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nx_debug *dbg_head; /* sorted by name */

void nx_debug_log(const struct nx_debug *dbg, const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	log_emit(NX_LOG_DEBUG, dbg->name, fmt, ap);
	va_end(ap);
	errno = saved_errno;
}

static bool debug_name_ok(const char *name)
{
	size_t len = 0;

	if (!name)
		return false;
	for (; name[len]; len++) {
		unsigned char c = (unsigned char)name[len];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return len > 0 && len <= DEBUG_NAME_MAX;
}

int nx_debug_register(struct nx_debug *dbg)
{
	struct nx_debug **pp, *cur;
	int rc = 0;

	if (!dbg || !debug_name_ok(dbg->name))
		return -EINVAL;

	pthread_mutex_lock(&dbg_lock);
	for (cur = dbg_head; cur; cur = cur->next) {
		if (cur == dbg)
			goto out;
		if (strcmp(cur->name, dbg->name) == 0) {
			rc = -EEXIST;
			goto out;
		}
	}
	for (pp = &dbg_head; *pp && strcmp((*pp)->name, dbg->name) < 0; pp = &(*pp)->next)
		;
	dbg->next = *pp;
	*pp = dbg;
out:
	pthread_mutex_unlock(&dbg_lock);
	return rc;
}

void nx_debug_unregister(struct nx_debug *dbg)
{
	struct nx_debug **pp;

	if (!dbg)
		return;
	pthread_mutex_lock(&dbg_lock);
	for (pp = &dbg_head; *pp; pp = &(*pp)->next) {
		if (*pp == dbg) {
			*pp = dbg->next;
			dbg->next = NULL;
			__atomic_store_n(&dbg->on, false, __ATOMIC_RELAXED);
			break;
		}
	}
	pthread_mutex_unlock(&dbg_lock);
}

static struct nx_debug *debug_find_locked(const char *name)
{
	struct nx_debug *cur;

	for (cur = dbg_head; cur; cur = cur->next) {
		if (strcmp(cur->name, name) == 0)
			return cur;
	}
	return NULL;
}

struct nx_debug *nx_debug_find(const char *name)
{
	struct nx_debug *dbg;

	if (!name)
		return NULL;
	pthread_mutex_lock(&dbg_lock);
	dbg = debug_find_locked(name);
	pthread_mutex_unlock(&dbg_lock);
	return dbg;
}

int nx_debug_set(const char *name, bool on, struct nx_err *err)
{
	struct nx_debug *dbg;

	if (!name || !*name)
		return nx_err_set(err, ENOENT, "empty debug subsystem name");
	pthread_mutex_lock(&dbg_lock);
	dbg = debug_find_locked(name);
	if (dbg)
		__atomic_store_n(&dbg->on, on, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&dbg_lock);
	if (!dbg)
		return nx_err_set(err, ENOENT, "\"%.64s\": unknown debug subsystem", name);
	return 0;
}

void nx_debug_set_all(bool on)
{
	struct nx_debug *cur;

	pthread_mutex_lock(&dbg_lock);
	for (cur = dbg_head; cur; cur = cur->next)
		__atomic_store_n(&cur->on, on, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&dbg_lock);
}

int nx_debug_foreach(int (*fn)(struct nx_debug *dbg, void *arg), void *arg)
{
	struct nx_debug *cur;
	int rc = 0;

	pthread_mutex_lock(&dbg_lock);
	for (cur = dbg_head; cur && rc == 0; cur = cur->next)
		rc = fn(cur, arg);
	pthread_mutex_unlock(&dbg_lock);
	return rc;
}
