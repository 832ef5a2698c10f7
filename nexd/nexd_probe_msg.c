/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The path probe message (nexd_probe.h): what a peer sends is read here and nowhere else.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "nexd/nexd_probe.h"

static const uint8_t magic[4] = { 'N', 'X', 'P', 'B' };

void nexd_probe_encode(uint8_t buf[NEXD_PROBE_MSG_LEN], const struct nexd_probe_msg *m)
{
	uint32_t nseq = htonl(m->seq);

	memset(buf, 0, NEXD_PROBE_MSG_LEN);
	memcpy(buf, magic, sizeof(magic));
	buf[4] = m->type;
	buf[5] = m->flags;
	memcpy(buf + 8, &nseq, sizeof(nseq));
}

int nexd_probe_decode(const uint8_t *buf, size_t len, struct nexd_probe_msg *m)
{
	uint32_t nseq;

	if (len != NEXD_PROBE_MSG_LEN || memcmp(buf, magic, sizeof(magic)) != 0 ||
	    (buf[4] != NEXD_PROBE_REQUEST && buf[4] != NEXD_PROBE_REPLY))
		return -EBADMSG;
	m->type = buf[4];
	m->flags = buf[5]; /* unknown flags are ignored: later versions may add some */
	memcpy(&nseq, buf + 8, sizeof(nseq));
	m->seq = ntohl(nseq);
	return 0;
}
