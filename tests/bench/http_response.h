/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The response to a streaming HTTP/1.1 request, read from a socket its caller owns: the
 * status line and headers, then the body, chunked or not, handed on as it arrives.  The
 * load generator reads watch streams with it once libcurl has connected them: libcurl's
 * transfer machinery cost about as much CPU per read as the kernel's receive path, which
 * the client took from the server on a machine both share.
 */
#ifndef NX_BENCH_HTTP_RESPONSE_H
#define NX_BENCH_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef void (*http_response_body_fn)(void *arg, const char *p, size_t n);

struct http_response {
	enum { HS_HEAD, HS_SIZE, HS_DATA, HS_DATA_END, HS_RAW, HS_END, HS_BAD } state;
	size_t len;
	uint64_t left;	    /* of the current chunk */
	unsigned data_crlf; /* bytes of the CRLF after a chunk seen */
	int status;	    /* the status code, once the head is in */
	http_response_body_fn body;
	void *arg;
	char *head;	    /* while the head comes in (HTTP_RESPONSE_HEAD_MAX bytes) */
	char size_line[72]; /* a chunk-size line */
};

/* A reader holds thousands of responses: what one keeps past its head stays small. */
#define HTTP_RESPONSE_HEAD_MAX 4096

void http_response_init(struct http_response *h, http_response_body_fn body, void *arg);

/* Frees what h holds (a head not complete yet). */
void http_response_fini(struct http_response *h);

/* Feeds n bytes of the response: 0 (more to come), 1 when it ended (its last chunk), or -1
 * when it is malformed or not a 200 (h->status says which, 0 when no status line parsed). */
int http_response_feed(struct http_response *h, const char *p, size_t n);

#endif
