/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The YANG context: libyang 2 loaded with the project's models, which are embedded in the
 * binaries at build time (the .yang files of yang/ become generated C strings), so a daemon never
 * depends on model files lying around at run time.
 */
#ifndef NX_YANG_H
#define NX_YANG_H

#include <stdbool.h>

#include <libyang/libyang.h>

#include "lib/errmsg.h"

/* One embedded module (see yang/subdir.am: generated yang/<name>.yang.c files). */
struct nx_yang_embedded {
	const char *name;     /* "nexodus-agent" */
	const char *revision; /* "2026-11-30" or NULL */
	const char *text;     /* the whole module, YANG syntax */
};

/* The project's models, NULL-terminated (generated at build time: yang/embedded.c, linked
 * into the daemons; tests may pass tables of their own instead). */
extern const struct nx_yang_embedded *const nx_yang_embedded_modules[];

/* Finds a module by name in a NULL-terminated table; NULL when absent. */
const struct nx_yang_embedded *nx_yang_find_embedded(const struct nx_yang_embedded *const *table,
						     const char *name);

/*
 * A new context holding `modules` (names, NULL-terminated) and what they import, all taken
 * from `table` (libyang's own ietf-inet-types / ietf-yang-types are built into libyang).
 * No search paths on disk are used.  NULL with err on failure.
 */
struct ly_ctx *nx_yang_ctx_new(const struct nx_yang_embedded *const *table,
			       const char *const *modules, struct nx_err *err);

/* The last libyang error of ctx, as one line ("... (path /a/b)"), into err. */
int nx_yang_err(const struct ly_ctx *ctx, struct nx_err *err, int code, const char *what);

/* True when the schema node carries the nexodus-types "secret" extension: its value is
 * never shown in clear by show commands. */
bool nx_yang_is_secret(const struct lysc_node *snode);

#endif /* NX_YANG_H */
