/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for the path probe message (nexd_probe.h), which nexd reads from any peer over
 * its tunnel: anything but a well-formed 16-byte message is refused, and what decodes encodes
 * back to a message that decodes to the same type, flags and sequence number.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nexd/nexd_probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nexd_probe_msg m, again;
	uint8_t buf[NEXD_PROBE_MSG_LEN];
	int rc = nexd_probe_decode(data, size, &m);

	if (rc < 0) {
		if (rc != -EBADMSG)
			abort();
		return 0;
	}
	if (size != NEXD_PROBE_MSG_LEN ||
	    (m.type != NEXD_PROBE_REQUEST && m.type != NEXD_PROBE_REPLY))
		abort();
	nexd_probe_encode(buf, &m);
	if (nexd_probe_decode(buf, sizeof(buf), &again) < 0 || again.type != m.type ||
	    again.flags != m.flags || again.seq != m.seq)
		abort();
	return 0;
}
