/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging for the daemons: one call site API, two targets (stderr with a
 * timestamp, and syslog), a minimum level, and per-subsystem debug switches
 * that an operator flips at run time ("debug nexodus peers") without a
 * restart.  A sink hook lets tests and the VTY ("terminal monitor") see every
 * line that is emitted.
 *
 * Levels use the syslog numbering: a smaller number is more severe, and a
 * message is emitted when its level is <= the configured minimum level.
 *
 * Debug switches: a module defines one with NX_DEBUG_DEFINE() at file scope;
 * the switch registers itself at program start-up.  nx_debug() costs one
 * predictable branch while the switch is off (its arguments are not
 * evaluated).  A message from a switch that is on is emitted at
 * NX_LOG_DEBUG regardless of the minimum level: turning the switch on is the
 * operator's request to see it.
 *
 * All functions are thread-safe.  A sink must not log itself (such messages
 * are dropped instead of deadlocking).
 */
#ifndef NX_LOG_H
#define NX_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nx_err;

/* Same values as LOG_ERR ... LOG_DEBUG from <syslog.h> (checked in log.c). */
enum {
	NX_LOG_ERR = 3,
	NX_LOG_WARNING = 4,
	NX_LOG_NOTICE = 5,
	NX_LOG_INFO = 6,
	NX_LOG_DEBUG = 7,
};

/* Targets for nx_log_init(); 0 means "only the sink, if any". */
#define NX_LOG_TO_STDERR 0x1u
#define NX_LOG_TO_SYSLOG 0x2u

/* Longest message, including the terminating NUL; longer ones are cut and
 * end with NX_LOG_TRUNCATED. */
#define NX_LOG_MSG_MAX	 1024
#define NX_LOG_TRUNCATED "...[truncated]"

/* Size of a buffer for nx_log_format_time(): "2026-11-30T10:00:00.123Z". */
#define NX_LOG_TIME_LEN 25

/*
 * Sets the program name (used as syslog ident and on stderr), the targets
 * and the minimum level.  May be called again to change them.  Before the
 * first call, messages go to stderr at NX_LOG_INFO and above.
 */
void nx_log_init(const char *progname, unsigned targets, int min_level);

/* Closes syslog, drops the sink and returns to the defaults above. */
void nx_log_fini(void);

void nx_log_set_level(int min_level);
int nx_log_get_level(void);
unsigned nx_log_get_targets(void);

/*
 * Every emitted message (after level filtering, without timestamp or
 * program name) is also passed to fn.  fn is called with an internal lock
 * held: keep it short and do not log from it.  NULL removes the sink.
 */
typedef void (*nx_log_sink_fn)(int level, const char *msg, void *arg);
void nx_log_set_sink(nx_log_sink_fn fn, void *arg);

void nx_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nx_vlog(int level, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

#define nx_err(...)    nx_log(NX_LOG_ERR, __VA_ARGS__)
#define nx_warn(...)   nx_log(NX_LOG_WARNING, __VA_ARGS__)
#define nx_notice(...) nx_log(NX_LOG_NOTICE, __VA_ARGS__)
#define nx_info(...)   nx_log(NX_LOG_INFO, __VA_ARGS__)

/* "ERR", "WARNING", "NOTICE", "INFO", "DEBUG" (and "EMERG", "ALERT", "CRIT"
 * for the syslog levels above NX_LOG_ERR); "UNKNOWN" otherwise. */
const char *nx_log_level_name(int level);

/*
 * Parses a level name as written in configuration, case-insensitively:
 * the names above, or FRR's words ("errors", "warnings", "notifications",
 * "informational", "debugging").  Returns the level or -EINVAL.
 */
int nx_log_level_parse(const char *name, struct nx_err *err);

/* Writes wall-clock time wall_ns (ns since the epoch) as UTC with
 * milliseconds, "2026-11-30T10:00:00.123Z".  Returns the length written
 * or -ENOSPC when size is below NX_LOG_TIME_LEN. */
int nx_log_format_time(char *buf, size_t size, uint64_t wall_ns);

/* --- per-subsystem debug switches --------------------------------------- */

struct nx_debug {
	const char *name;      /* CLI token: [a-z0-9_-]+, at most 32 chars */
	const char *help;      /* one line for the CLI help */
	bool on;	       /* read and written atomically; use the functions */
	struct nx_debug *next; /* registry link, owned by the registry */
};

/*
 * Defines `struct nx_debug dbg_<var>` and registers it before main() runs;
 * use at file scope followed by a semicolon.  Other files of the same module
 * see the switch through NX_DEBUG_DECLARE(var).
 */
#define NX_DEBUG_DEFINE(var, namestr, helpstr)                                            \
	extern struct nx_debug dbg_##var;                                                 \
	__attribute__((constructor)) static void nx_debug_ctor_##var(void)                \
	{                                                                                 \
		if (nx_debug_register(&dbg_##var) < 0)                                    \
			nx_err("debug switch \"%s\" could not be registered", (namestr)); \
	}                                                                                 \
	struct nx_debug dbg_##var = { .name = (namestr), .help = (helpstr) }

#define NX_DEBUG_DECLARE(var) extern struct nx_debug dbg_##var

/* Adds dbg to the registry.  0 on success (also when dbg is already in it),
 * -EINVAL for a bad name, -EEXIST when another switch has the same name. */
int nx_debug_register(struct nx_debug *dbg);

/* Removes dbg from the registry (no-op when absent) and turns it off. */
void nx_debug_unregister(struct nx_debug *dbg);

/* Returns the registered switch called name, or NULL. */
struct nx_debug *nx_debug_find(const char *name);

/* Turns the named switch on or off; -ENOENT (with a message) if unknown. */
int nx_debug_set(const char *name, bool on, struct nx_err *err);

/* Turns every registered switch on or off. */
void nx_debug_set_all(bool on);

/*
 * Calls fn for every registered switch in name order, stopping at the first
 * non-zero return, which is returned.  fn runs with the registry locked: it
 * may read the switch but must not call other nx_debug_* functions.
 */
int nx_debug_foreach(int (*fn)(struct nx_debug *dbg, void *arg), void *arg);

static inline bool nx_debug_on(const struct nx_debug *dbg)
{
	return __atomic_load_n(&dbg->on, __ATOMIC_RELAXED);
}

/* Emits "[<name>] <message>" at NX_LOG_DEBUG; use nx_debug() instead. */
void nx_debug_log(const struct nx_debug *dbg, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define nx_debug(dbg, ...)                                 \
	do {                                               \
		if (__builtin_expect(nx_debug_on(dbg), 0)) \
			nx_debug_log((dbg), __VA_ARGS__);  \
	} while (0)

#endif /* NX_LOG_H */
