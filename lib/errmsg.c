/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A human-readable reason beside a negative errno; see errmsg.h. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "lib/errmsg.h"

int nx_err_set(struct nx_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return code > 0 ? -code : code;
}

void nx_err_clear(struct nx_err *err)
{
	if (err)
		err->msg[0] = '\0';
}
