/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A short human-readable error message that travels beside a return code.
 *
 * Functions that reject input return a negative errno and, when the caller
 * passes a struct nx_err, say why in words the user can act on.  Passing NULL
 * means "I only want the code".
 */
#ifndef NX_ERRMSG_H
#define NX_ERRMSG_H

#include <stddef.h>

#define NX_ERR_MAX 256

struct nx_err {
	char msg[NX_ERR_MAX];
};

/* Formats the message into err (no-op when err is NULL); returns -code so a
 * caller can write `return nx_err_set(err, EINVAL, "bad %s", x);`. */
int nx_err_set(struct nx_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Clears err (no-op when NULL). */
void nx_err_clear(struct nx_err *err);

#endif /* NX_ERRMSG_H */
