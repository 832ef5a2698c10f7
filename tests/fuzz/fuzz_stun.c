/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target for the STUN codec, which reads datagrams from anyone: the controller's
 * responder decodes requests, the agent decodes responses and classifies what arrives on
 * its WireGuard port.
 *
 * Beyond "does not crash", it checks the contracts: a rejection comes with a message and
 * one of the documented codes; whatever decodes passes the classifier and stays inside
 * the datagram; a request that decodes gets a response that decodes back to the address
 * it was built with (both families), and a 420 that lists the unknown attributes; a
 * success response re-encodes to the same mapped address.  A broken contract aborts,
 * which the fuzzer reports as a crash.
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rc(int rc, const struct nx_err *err)
{
	if (rc > 0)
		abort();
	if (rc < 0 && err->msg[0] == '\0')
		abort();
	switch (-rc) {
	case 0:
	case EBADMSG:
	case ENOMSG:
	case ENOTSUP:
	case ESRCH:
	case EPROTO:
		return;
	default:
		abort();
	}
}

static void check_inside(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
	if (n == 0)
		return;
	if (p < data || p > data + size || n > (size_t)(data + size - p))
		abort();
}

static bool stun_addr_eq(const struct nx_stun_addr *a, const struct nx_stun_addr *b)
{
	return a->port == b->port && nx_addr_eq(&a->addr, &b->addr);
}

/* The response to msg, built and parsed back, must carry mapped unchanged. */
static void check_success(const struct nx_stun_msg *msg, const struct nx_stun_addr *mapped)
{
	uint8_t buf[NX_STUN_BUILD_MAX];
	struct nx_stun_addr got;
	struct nx_err err = { "" };
	int len;

	len = nx_stun_build_binding_success(buf, sizeof(buf), msg->txid, mapped, "nexsrv");
	if (len <= 0 || !nx_stun_is_stun(buf, (size_t)len))
		abort();
	if (nx_stun_parse_binding_response(buf, (size_t)len, msg->txid, &got, &err) != 0 ||
	    !stun_addr_eq(&got, mapped))
		abort();
}

static void check_unknown_error(const struct nx_stun_msg *msg)
{
	uint8_t buf[NX_STUN_BUILD_MAX];
	struct nx_stun_msg back;
	struct nx_stun_addr got;
	struct nx_err err = { "" };
	int len;

	len = nx_stun_build_binding_error(buf, sizeof(buf), msg->txid,
					  NX_STUN_ERR_UNKNOWN_ATTRIBUTE, NULL,
					  msg->unknown_required, msg->n_unknown_required, "nexsrv");
	if (len <= 0 || nx_stun_decode(buf, (size_t)len, &back, &err) != 0)
		abort();
	if (back.error_code != NX_STUN_ERR_UNKNOWN_ATTRIBUTE ||
	    back.n_unknown_attrs != msg->n_unknown_required ||
	    memcmp(back.unknown_attrs, msg->unknown_required,
		   msg->n_unknown_required * sizeof(uint16_t)) != 0)
		abort();
	if (nx_stun_parse_binding_response(buf, (size_t)len, msg->txid, &got, &err) != -EPROTO)
		abort();
}

static void check_request(const uint8_t *data, size_t size)
{
	struct nx_stun_msg msg;
	struct nx_stun_addr a;
	struct nx_err err = { "" };
	int rc = nx_stun_decode_request(data, size, &msg, &err);

	check_rc(rc, &err);
	if (rc == -ENOTSUP) {
		if (msg.n_unknown_required == 0 || msg.type != NX_STUN_BINDING_REQUEST)
			abort();
		check_unknown_error(&msg);
		return;
	}
	if (rc < 0)
		return;
	if (msg.type != NX_STUN_BINDING_REQUEST || msg.n_unknown_required != 0)
		abort();

	/* Addresses made from the request's own bytes, so every input tries others. */
	memset(&a, 0, sizeof(a));
	a.addr.family = AF_INET;
	memcpy(&a.addr.v4, msg.txid, 4);
	a.port = (uint16_t)(msg.txid[4] << 8 | msg.txid[5]);
	check_success(&msg, &a);
	a.addr.family = AF_INET6;
	memcpy(&a.addr.v6, data + size - 16, 16); /* a message has at least 20 bytes */
	check_success(&msg, &a);
}

static void check_response(const uint8_t *data, size_t size, const struct nx_stun_msg *msg)
{
	static const uint8_t zero_txid[NX_STUN_TXID_LEN];
	struct nx_stun_addr mapped;
	struct nx_err err = { "" };
	int rc;

	rc = nx_stun_parse_binding_response(data, size, zero_txid, &mapped, &err);
	check_rc(rc, &err);
	if (!msg)
		return;
	err.msg[0] = '\0';
	rc = nx_stun_parse_binding_response(data, size, msg->txid, &mapped, &err);
	check_rc(rc, &err);
	if (rc == -ESRCH)
		abort();
	if (rc < 0)
		return;
	if (msg->type != NX_STUN_BINDING_SUCCESS ||
	    (mapped.addr.family != AF_INET && mapped.addr.family != AF_INET6))
		abort();
	if (!stun_addr_eq(&mapped, msg->has_xor_mapped ? &msg->xor_mapped : &msg->mapped))
		abort();
	check_success(msg, &mapped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nx_stun_msg msg;
	struct nx_err err = { "" };
	int rc;

	rc = nx_stun_decode(data, size, &msg, &err);
	check_rc(rc, &err);
	if (rc == 0) {
		if (!nx_stun_is_stun(data, size))
			abort();
		check_inside(msg.software, msg.software_len, data, size);
		check_inside(msg.error_reason, msg.error_reason_len, data, size);
		if (msg.n_unknown_required > NX_STUN_MAX_UNKNOWN ||
		    msg.n_unknown_attrs > NX_STUN_MAX_UNKNOWN)
			abort();
		if (msg.has_error && (msg.error_code < 300 || msg.error_code > 699))
			abort();
		if (msg.has_software && msg.software_len > NX_STUN_TEXT_MAX)
			abort();
	}
	check_request(data, size);
	check_response(data, size, rc == 0 ? &msg : NULL);
	return 0;
}
