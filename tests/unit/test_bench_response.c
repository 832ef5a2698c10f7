/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for the benchmark's HTTP response reader (tests/bench/http_response): a chunked
 * stream fed whole and one byte at a time gives the same body; the end of a response, an
 * unchunked body, a refused status and malformed framing are told apart.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tests/bench/http_response.h"

struct body {
	char text[256];
	size_t len;
};

static void collect(void *arg, const char *p, size_t n)
{
	struct body *b = arg;

	assert_true(b->len + n < sizeof(b->text));
	memcpy(b->text + b->len, p, n);
	b->len += n;
	b->text[b->len] = '\0';
}

static const char chunked[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			      "Transfer-Encoding: chunked\r\n\r\n"
			      "6\r\n{\"a\":1\r\n2\r\n}\n\r\n"
			      "a;ext=1\r\n0123456789\r\n";

/* Feeds text in pieces of step bytes: the last result. */
static int feed(struct http_response *h, const char *text, size_t len, size_t step)
{
	int rc = 0;

	for (size_t i = 0; i < len && rc == 0; i += step)
		rc = http_response_feed(h, text + i, len - i < step ? len - i : step);
	return rc;
}

static void test_chunked_any_split(void **state)
{
	(void)state;
	for (size_t step = 1; step <= sizeof(chunked); step++) {
		struct body b = { "", 0 };
		struct http_response h;

		http_response_init(&h, collect, &b);
		assert_int_equal(feed(&h, chunked, sizeof(chunked) - 1, step), 0);
		assert_int_equal(h.status, 200);
		assert_string_equal(b.text, "{\"a\":1}\n0123456789");
		/* the last chunk ends it */
		assert_int_equal(http_response_feed(&h, "0\r\n\r\n", 5), 1);
		assert_null(h.head); /* let go of once read */
		http_response_fini(&h);
	}
}

static void test_unchunked(void **state)
{
	static const char raw[] = "HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nabcd";
	struct body b = { "", 0 };
	struct http_response h;

	(void)state;
	http_response_init(&h, collect, &b);
	assert_int_equal(feed(&h, raw, sizeof(raw) - 1, 7), 0);
	assert_string_equal(b.text, "abcd");
	http_response_fini(&h);
}

static void test_refused(void **state)
{
	static const char *const bad[] = {
		"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\n\r\n",
		"SSH-2.0-OpenSSH\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct body b = { "", 0 };
		struct http_response h;

		http_response_init(&h, collect, &b);
		assert_int_equal(feed(&h, bad[i], strlen(bad[i]), 3), -1);
		assert_int_equal(h.status, i == 0 ? 401 : i >= 3 ? 200 : 0);
		http_response_fini(&h);
	}
}

static void test_head_too_long(void **state)
{
	char head[8192];
	struct body b = { "", 0 };
	struct http_response h;

	(void)state;
	memset(head, 'x', sizeof(head));
	memcpy(head, "HTTP/1.1 200 OK\r\nX: ", 20);
	http_response_init(&h, collect, &b);
	assert_int_equal(http_response_feed(&h, head, sizeof(head)), -1);
	assert_int_equal(b.len, 0);
	http_response_fini(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunked_any_split),
		cmocka_unit_test(test_unchunked),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_head_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
