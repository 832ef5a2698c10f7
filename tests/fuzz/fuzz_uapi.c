/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for nexd's UAPI reply parser: a reply is another process's output, so any bytes
 * must be either read into a device that can be written back as a set request, or refused
 * with a message and nothing left allocated.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nexd/nexd_wg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nexd_wg_device dev;
	struct nx_err err = { "" };
	char *text;
	size_t len;

	if (nexd_uapi_parse_get((const char *)data, size, &dev, &err) == 0) {
		/* What was read is a valid change: endpoints have ports, prefixes lengths. */
		if (nexd_uapi_format_set(&dev, &text, &len, &err) != 0 || strlen(text) != len)
			abort();
		free(text);
		nexd_wg_device_clear(&dev);
	} else if (err.msg[0] == '\0' || dev.peers || dev.n_peers || dev.has_private_key) {
		abort();
	}

	err.msg[0] = '\0';
	if (nexd_uapi_parse_errno((const char *)data, size, &err) != 0 && err.msg[0] == '\0')
		abort();
	return 0;
}
