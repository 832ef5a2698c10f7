/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/bench/http_response.h"

void http_response_init(struct http_response *h, http_response_body_fn body, void *arg)
{
	memset(h, 0, sizeof(*h));
	h->body = body;
	h->arg = arg;
}

void http_response_fini(struct http_response *h)
{
	free(h->head);
	h->head = NULL;
}

/* Whether the head (NUL-terminated, headers after the first line) says chunked. */
static bool head_chunked(const char *head)
{
	for (const char *l = strstr(head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
		static const char name[] = "transfer-encoding:";

		if (strncasecmp(l + 2, name, sizeof(name) - 1) == 0) {
			const char *v = l + 2 + sizeof(name) - 1;
			const char *eol = strstr(v, "\r\n");
			size_t n = eol ? (size_t)(eol - v) : strlen(v);

			for (size_t i = 0; i + 7 <= n; i++)
				if (strncasecmp(v + i, "chunked", 7) == 0)
					return true;
		}
	}
	return false;
}

/* The head is complete in h->head: its status and framing. */
static int head_done(struct http_response *h)
{
	char *head = h->head, *end;
	long code;

	head[h->len] = '\0';
	if (h->len < 12 || strncmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ')
		return -1;
	code = strtol(head + 9, &end, 10);
	if (end != head + 12)
		return -1;
	h->status = (int)code;
	if (h->status != 200)
		return -1;
	h->state = head_chunked(head) ? HS_SIZE : HS_RAW;
	h->len = 0;
	http_response_fini(h);
	return 0;
}

/* A chunk-size line is complete in h->size_line (without its LF). */
static int size_done(struct http_response *h)
{
	char *line = h->size_line, *end;

	line[h->len] = '\0';
	if (h->len && line[h->len - 1] == '\r')
		line[--h->len] = '\0';
	h->left = strtoull(line, &end, 16);
	if (end == line || (*end && *end != ';'))
		return -1;
	h->len = 0;
	h->data_crlf = 0;
	h->state = h->left ? HS_DATA : HS_END;
	return 0;
}

int http_response_feed(struct http_response *h, const char *p, size_t n)
{
	const char *end = p + n;

	while (p < end && h->state != HS_END && h->state != HS_BAD) {
		size_t k;

		switch (h->state) {
		case HS_HEAD:
			if (!h->head && !(h->head = malloc(HTTP_RESPONSE_HEAD_MAX)))
				h->state = HS_BAD;
			if (h->state == HS_BAD || h->len >= HTTP_RESPONSE_HEAD_MAX - 1) {
				h->state = HS_BAD;
				break;
			}
			h->head[h->len++] = *p++;
			if (h->len >= 4 && memcmp(h->head + h->len - 4, "\r\n\r\n", 4) == 0 &&
			    head_done(h) < 0)
				h->state = HS_BAD;
			break;
		case HS_SIZE:
			if (*p == '\n') {
				p++;
				if (size_done(h) < 0)
					h->state = HS_BAD;
			} else if (h->len >= sizeof(h->size_line) - 1) {
				h->state = HS_BAD;
			} else {
				h->size_line[h->len++] = *p++;
			}
			break;
		case HS_DATA:
			k = (size_t)(end - p) < h->left ? (size_t)(end - p) : (size_t)h->left;
			h->body(h->arg, p, k);
			p += k;
			h->left -= k;
			if (!h->left)
				h->state = HS_DATA_END;
			break;
		case HS_DATA_END: /* the CRLF after the chunk's data */
			if (*p++ != "\r\n"[h->data_crlf])
				h->state = HS_BAD;
			else if (++h->data_crlf == 2)
				h->state = HS_SIZE;
			break;
		case HS_RAW:
			h->body(h->arg, p, (size_t)(end - p));
			p = end;
			break;
		default:
			break;
		}
	}
	return h->state == HS_BAD ? -1 : h->state == HS_END ? 1 : 0;
}
