/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's STUN client against real sockets: the test moves itself into a network namespace of
 * its own (the namespace goes when the process exits), binds a UDP socket to the port under
 * test as WireGuard would, and runs a small STUN responder on the loopback addresses in the
 * same event loop.  Checked: the answer arrives (IPv4 and IPv6) and carries the mapping of
 * the stand-in's port, lost requests are retransmitted, a silent server times out, answers
 * of other transactions or from other addresses are ignored, error responses are reported,
 * cancelled queries stay silent, and the stand-in's own traffic is not disturbed.  Needs
 * root (raw sockets); without it only the refusal is checked.
 */
#include "config.h"

#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/loop.h"
#include "lib/stun.h"
#include "nexd/nexd_nat.h"

#define WG_PORT	   45000 /* the stand-in WireGuard's port */
#define STUN_PORT  3478
#define OTHER_PORT 3479 /* another "server", for foreign answers */

static bool ready;
static struct nx_loop *loop;

/* --- a STUN responder on the loop -------------------------------------------------------- */

enum mode {
	ANSWER,
	DROP_FIRST,	  /* drop the first `drop` requests */
	SILENT,		  /* never answer */
	WRONG_TXID_FIRST, /* answer the first request with another transaction id only */
	ERROR_400,	  /* answer with an error response */
	FOREIGN_FIRST,	  /* answer the first request from another port only */
};

struct responder {
	int fd;
	int other_fd; /* same address, OTHER_PORT */
	struct nx_fdwatch w;
	enum mode mode;
	int drop;
	int requests;
	uint16_t last_src_port;
	uint64_t first_ms, last_ms;
};

static void responder_readable(struct nx_fdwatch *w, int fd, unsigned what, void *arg)
{
	struct responder *r = arg;
	uint8_t buf[2048], out[NX_STUN_BUILD_MAX];
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct nx_stun_msg msg;
	struct nx_stun_addr mapped;
	ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, &sl);
	int len;

	(void)w;
	(void)what;
	if (n < 0 || nx_stun_decode_request(buf, (size_t)n, &msg, NULL) < 0)
		return;
	r->requests++;
	r->last_ms = nx_now_ms();
	if (r->requests == 1)
		r->first_ms = r->last_ms;
	assert_int_equal(nx_addr_from_sockaddr(&ss, &mapped.addr, &mapped.port), 0);
	r->last_src_port = mapped.port;
	switch (r->mode) {
	case SILENT:
		return;
	case DROP_FIRST:
		if (r->requests <= r->drop)
			return;
		break;
	case ERROR_400:
		len = nx_stun_build_binding_error(out, sizeof(out), msg.txid, 400, NULL, NULL, 0,
						  "test");
		assert_true(len > 0);
		sendto(fd, out, (size_t)len, 0, (struct sockaddr *)&ss, sl);
		return;
	case WRONG_TXID_FIRST:
		if (r->requests == 1) {
			struct nx_stun_addr bogus = mapped;

			msg.txid[0] ^= 0xff;
			bogus.port = 1;
			len = nx_stun_build_binding_success(out, sizeof(out), msg.txid, &bogus,
							    "test");
			assert_true(len > 0);
			sendto(fd, out, (size_t)len, 0, (struct sockaddr *)&ss, sl);
			return;
		}
		break;
	case FOREIGN_FIRST:
		if (r->requests == 1) {
			struct nx_stun_addr bogus = mapped;

			bogus.port = 2;
			len = nx_stun_build_binding_success(out, sizeof(out), msg.txid, &bogus,
							    "test");
			assert_true(len > 0);
			sendto(r->other_fd, out, (size_t)len, 0, (struct sockaddr *)&ss, sl);
			return;
		}
		break;
	case ANSWER:
		break;
	}
	len = nx_stun_build_binding_success(out, sizeof(out), msg.txid, &mapped, "test");
	assert_true(len > 0);
	sendto(fd, out, (size_t)len, 0, (struct sockaddr *)&ss, sl);
}

static int udp_socket(const char *addr, uint16_t port)
{
	struct nx_addr a;
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd;

	assert_int_equal(nx_addr_parse(addr, &a, NULL), 0);
	fd = socket(a.family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (a.family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	assert_int_equal(nx_addr_to_sockaddr(&a, port, &ss, &sl), 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, sl), 0);
	return fd;
}

static void responder_start(struct responder *r, const char *addr, enum mode mode)
{
	memset(r, 0, sizeof(*r));
	r->mode = mode;
	r->fd = udp_socket(addr, STUN_PORT);
	r->other_fd = udp_socket(addr, OTHER_PORT);
	assert_int_equal(nx_fdwatch_init(loop, &r->w, r->fd, NX_READ, responder_readable, r), 0);
}

static void responder_stop(struct responder *r)
{
	nx_fdwatch_fini(&r->w);
	close(r->fd);
	close(r->other_fd);
}

/* --- running queries ------------------------------------------------------------------------- */

struct outcome {
	bool done;
	int calls;
	int result;
	struct nx_addr mapped;
	uint16_t port;
	uint64_t at_ms;
};

static void done_cb(int result, const struct nx_addr *mapped, uint16_t port, void *arg)
{
	struct outcome *o = arg;

	o->calls++;
	o->done = true;
	o->result = result;
	o->at_ms = nx_now_ms();
	if (mapped) {
		o->mapped = *mapped;
		o->port = port;
	}
	nx_loop_stop(loop);
}

static void deadline_cb(struct nx_timer *t, void *arg)
{
	(void)t;
	*(bool *)arg = true;
	nx_loop_stop(loop);
}

/* Runs the loop until o is done or ms have passed. */
static void run_until(struct outcome *o, uint64_t ms)
{
	struct nx_timer deadline;
	bool expired = false;

	nx_timer_init(loop, &deadline, deadline_cb, &expired);
	nx_timer_arm(&deadline, ms);
	while (!(o && o->done) && !expired)
		nx_loop_run(loop);
	nx_timer_fini(&deadline);
}

static struct nexd_stun *stun_new(void)
{
	struct nx_err err = { "" };
	struct nexd_stun *s = nexd_stun_new(loop, WG_PORT, &err);

	if (!s)
		fail_msg("nexd_stun_new: %s", err.msg);
	return s;
}

static void query(struct nexd_stun *s, const char *server, uint16_t port, struct outcome *o)
{
	struct nx_addr a;
	struct nx_err err = { "" };

	memset(o, 0, sizeof(*o));
	assert_int_equal(nx_addr_parse(server, &a, NULL), 0);
	if (nexd_stun_query(s, &a, port, done_cb, o, &err) != 0)
		fail_msg("nexd_stun_query: %s", err.msg);
	assert_false(o->done); /* never called back from within */
}

#define NEED_ROOT()             \
	do {                    \
		if (!ready)     \
			skip(); \
	} while (0)

/* --- tests ----------------------------------------------------------------------------------- */

static void check_answer(const char *addr)
{
	struct responder r;
	struct outcome o;
	struct nexd_stun *s;
	struct nx_addr want;
	int standin;
	uint8_t buf[256];

	NEED_ROOT();
	standin = udp_socket(addr, WG_PORT);
	responder_start(&r, addr, ANSWER);
	s = stun_new();
	query(s, addr, STUN_PORT, &o);
	run_until(&o, 2000);
	assert_true(o.done);
	assert_int_equal(o.result, 0);
	assert_int_equal(nx_addr_parse(addr, &want, NULL), 0);
	assert_true(nx_addr_eq(&o.mapped, &want));
	assert_int_equal(o.port, WG_PORT);
	assert_int_equal(r.requests, 1);
	assert_int_equal(r.last_src_port, WG_PORT);
	/* The stand-in got its own copy of the answer, as WireGuard would (and drops it). */
	assert_true(recv(standin, buf, sizeof(buf), MSG_DONTWAIT) > 0);
	assert_true(nx_stun_is_stun(buf, NX_STUN_HEADER_LEN + ((size_t)buf[2] << 8 | buf[3])));
	nexd_stun_free(s);
	responder_stop(&r);
	close(standin);
}

static void test_answer_ipv4(void **state)
{
	(void)state;
	check_answer("127.0.0.1");
}

static void test_answer_ipv6(void **state)
{
	(void)state;
	check_answer("::1");
}

static void test_retransmit(void **state)
{
	struct responder r;
	struct outcome o;
	struct nexd_stun *s;

	(void)state;
	NEED_ROOT();
	responder_start(&r, "127.0.0.1", DROP_FIRST);
	r.drop = 2;
	s = stun_new();
	query(s, "127.0.0.1", STUN_PORT, &o);
	run_until(&o, 3000);
	assert_true(o.done);
	assert_int_equal(o.result, 0);
	assert_int_equal(o.port, WG_PORT);
	assert_int_equal(r.requests, 3);
	/* after 250 ms, then 500 ms more */
	assert_true(r.last_ms - r.first_ms >= 700);
	nexd_stun_free(s);
	responder_stop(&r);
}

static void test_silent_server(void **state)
{
	struct responder r;
	struct outcome o;
	struct nexd_stun *s;
	uint64_t start;

	(void)state;
	NEED_ROOT();
	responder_start(&r, "127.0.0.1", SILENT);
	s = stun_new();
	start = nx_now_ms();
	query(s, "127.0.0.1", STUN_PORT, &o);
	run_until(&o, 5000);
	assert_true(o.done);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.result, -ETIMEDOUT);
	assert_int_equal(r.requests, 4); /* the request and three retransmissions */
	assert_true(o.at_ms - start >= 2900 && o.at_ms - start < 4000);
	nexd_stun_free(s);
	responder_stop(&r);
}

static void test_wrong_txid_ignored(void **state)
{
	struct responder r;
	struct outcome o;
	struct nexd_stun *s;

	(void)state;
	NEED_ROOT();
	responder_start(&r, "127.0.0.1", WRONG_TXID_FIRST);
	s = stun_new();
	query(s, "127.0.0.1", STUN_PORT, &o);
	run_until(&o, 3000);
	assert_true(o.done);
	assert_int_equal(o.result, 0);
	assert_int_equal(o.port, WG_PORT); /* not the bogus port 1 */
	assert_int_equal(r.requests, 2);
	nexd_stun_free(s);
	responder_stop(&r);
}

static void test_foreign_source_ignored(void **state)
{
	struct responder r;
	struct outcome o;
	struct nexd_stun *s;

	(void)state;
	NEED_ROOT();
	responder_start(&r, "127.0.0.1", FOREIGN_FIRST);
	s = stun_new();
	query(s, "127.0.0.1", STUN_PORT, &o);
	run_until(&o, 3000);
	assert_true(o.done);
	assert_int_equal(o.result, 0);
	assert_int_equal(o.port, WG_PORT); /* not the port 2 sent from elsewhere */
	assert_int_equal(r.requests, 2);
	nexd_stun_free(s);
	responder_stop(&r);
}

static void test_error_response(void **state)
{
	struct responder r;
	struct outcome o;
	struct nexd_stun *s;

	(void)state;
	NEED_ROOT();
	responder_start(&r, "::1", ERROR_400);
	s = stun_new();
	query(s, "::1", STUN_PORT, &o);
	run_until(&o, 3000);
	assert_true(o.done);
	assert_int_equal(o.result, -EPROTO);
	nexd_stun_free(s);
	responder_stop(&r);
}

static void test_cancel(void **state)
{
	struct responder r;
	struct outcome o1, o2;
	struct nexd_stun *s;

	(void)state;
	NEED_ROOT();
	responder_start(&r, "127.0.0.1", SILENT);
	s = stun_new();
	query(s, "127.0.0.1", STUN_PORT, &o1);
	query(s, "127.0.0.1", STUN_PORT, &o2);
	nexd_stun_cancel_all(s);
	run_until(NULL, 600);
	assert_false(o1.done);
	assert_false(o2.done);
	assert_int_equal(r.requests, 2); /* the first sends, no retransmissions */
	/* Still usable, and freeing with a query in flight is clean. */
	query(s, "127.0.0.1", STUN_PORT, &o1);
	nexd_stun_free(s);
	run_until(NULL, 300);
	assert_false(o1.done);
	responder_stop(&r);
}

static void test_standin_undisturbed(void **state)
{
	struct responder r;
	struct outcome o;
	struct nexd_stun *s;
	int standin, peer;
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char buf[64];
	/* Shaped like a STUN answer (magic cookie at offset 4) of no transaction of ours. */
	uint8_t fake[NX_STUN_BUILD_MAX], txid[NX_STUN_TXID_LEN];
	struct nx_stun_addr bogus = { .port = 9 };
	int len;

	(void)state;
	NEED_ROOT();
	standin = udp_socket("127.0.0.1", WG_PORT);
	peer = udp_socket("127.0.0.1", 45001);
	responder_start(&r, "127.0.0.1", DROP_FIRST);
	r.drop = 1;
	s = stun_new();
	query(s, "127.0.0.1", STUN_PORT, &o);

	/* The stand-in talks with its peer both ways while the query is in flight. */
	to.sin_port = htons(WG_PORT);
	assert_int_equal(sendto(peer, "hello", 5, 0, (struct sockaddr *)&to, sizeof(to)), 5);
	to.sin_port = htons(45001);
	assert_int_equal(sendto(standin, "world", 5, 0, (struct sockaddr *)&to, sizeof(to)), 5);
	/* A STUN-shaped datagram to the port from the peer: not ours, ignored. */
	assert_int_equal(nx_addr_parse("127.0.0.1", &bogus.addr, NULL), 0);
	memset(txid, 7, sizeof(txid));
	len = nx_stun_build_binding_success(fake, sizeof(fake), txid, &bogus, NULL);
	assert_true(len > 0);
	to.sin_port = htons(WG_PORT);
	assert_int_equal(sendto(peer, fake, (size_t)len, 0, (struct sockaddr *)&to, sizeof(to)),
			 len);

	run_until(&o, 3000);
	assert_true(o.done);
	assert_int_equal(o.result, 0);
	assert_int_equal(o.port, WG_PORT);

	assert_int_equal(recv(standin, buf, sizeof(buf), MSG_DONTWAIT), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(recv(peer, buf, sizeof(buf), MSG_DONTWAIT), 5);
	assert_memory_equal(buf, "world", 5);
	/* The fake answer and the real one reached the stand-in too: nothing was taken away. */
	assert_int_equal(recv(standin, buf, sizeof(buf), MSG_DONTWAIT), len);
	assert_true(recv(standin, buf, sizeof(buf), MSG_DONTWAIT) > 0);
	nexd_stun_free(s);
	responder_stop(&r);
	close(peer);
	close(standin);
}

static void test_bad_arguments(void **state)
{
	struct nexd_stun *s;
	struct nx_addr none = { 0 };
	struct nx_err err = { "" };

	(void)state;
	NEED_ROOT();
	assert_null(nexd_stun_new(loop, 0, &err));
	assert_non_null(strstr(err.msg, "port"));
	s = stun_new();
	assert_int_equal(nexd_stun_query(s, &none, STUN_PORT, done_cb, NULL, &err), -EAFNOSUPPORT);
	assert_true(err.msg[0] != '\0');
	nexd_stun_free(s);
}

/* Without CAP_NET_RAW the refusal says what is missing. */
static void test_unprivileged(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct nx_err err = { "" };
		struct nexd_stun *s;

		if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
			_exit(3);
		s = nexd_stun_new(loop, WG_PORT, &err);
		if (s)
			_exit(1);
		_exit(strstr(err.msg, "raw sockets") ? 0 : 2);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static int group_setup(void **state)
{
	struct ifreq ifr = { 0 };
	int fd;

	(void)state;
	loop = nx_loop_new();
	if (!loop)
		return -1;
	if (geteuid() != 0 || unshare(CLONE_NEWNET) < 0)
		return 0;
	/* Loopback up in the new namespace: 127.0.0.1 and ::1. */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ready = ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
	}
	close(fd);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	nx_loop_free(loop);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unprivileged),
		cmocka_unit_test(test_answer_ipv4),
		cmocka_unit_test(test_answer_ipv6),
		cmocka_unit_test(test_retransmit),
		cmocka_unit_test(test_silent_server),
		cmocka_unit_test(test_wrong_txid_ignored),
		cmocka_unit_test(test_foreign_source_ignored),
		cmocka_unit_test(test_error_response),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_standin_undisturbed),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
