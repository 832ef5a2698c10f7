/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The floor of a fan-out on this machine: one line written to each of W loopback TCP
 * connections, as fast as the kernel takes it, and read on the other end through epoll.
 * No HTTP, no framing, no JSON, no database: what is left is the kernel's send, loopback
 * receive, wake-up and read, for a sender and a reader sharing the machine's CPUs as
 * nexsrv and the load generator do.  A second reference for bench-nexsrv's fan-out.
 *
 *   fanout_floor [--streams W] [--count N] [--senders S] [--size BYTES]
 *
 * The sender (this process, S threads splitting the connections) writes change k to every
 * connection; the reader (a child process: each side needs a descriptor per connection)
 * notes, for each, the time from the start of the writes to its arrival.  Prints the
 * percentiles, and a RESULT line like nexsrv_load's.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/bench/bench_util.h"

#define MAX_SENDERS 8
#define WAIT_S	    10.0
#define BATCH	    32 /* connections a sender takes at a time, as nexsrv's fan-out does */

/* Between the two processes (shared memory). */
struct shared {
	volatile double t_sent;	      /* when the writes of the current change began */
	volatile int received;	      /* the last change the reader has seen everywhere */
	volatile int failed;	      /* the reader gave up */
	volatile double reader_cpu_s; /* the reader's CPU time for the changes */
};

struct opts {
	unsigned streams, count, senders, size;
};

/* One change's writes: the senders take the connections BATCH at a time until none are
 * left, so that none idles while another has some (halves fixed in advance do not finish
 * together when the scheduler gives one sender a CPU to itself). */
struct sendq {
	const int *fds;
	unsigned n;
	unsigned next; /* the first connection no sender has taken (atomic) */
	const char *line;
	size_t len;
};

struct sender {
	pthread_t thread;
	struct sendq *q;
	int err;
	double cpu_s; /* the thread's CPU time for the change */
};

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double process_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void *send_all(void *arg)
{
	struct sender *s = arg;
	struct sendq *q = s->q;
	double cpu0 = thread_cpu_s();
	unsigned i;

	while (!s->err && (i = __atomic_fetch_add(&q->next, BATCH, __ATOMIC_RELAXED)) < q->n) {
		unsigned end = q->n - i > BATCH ? i + BATCH : q->n;

		for (; i < end; i++)
			if (send(q->fds[i], q->line, q->len, MSG_NOSIGNAL) != (ssize_t)q->len) {
				s->err = errno ? errno : EIO;
				break;
			}
	}
	s->cpu_s = thread_cpu_s() - cpu0;
	return NULL;
}

/* The reader: connects the streams (from 127.3.x.y, one source address per 250 streams),
 * then reads each change off all of them.  Exit status 0 when every line arrived. */
static int reader(const struct opts *o, const struct sockaddr_in *to, struct shared *sh)
{
	int *fds = calloc(o->streams, sizeof(*fds)), ep = epoll_create1(EPOLL_CLOEXEC), one = 1;
	double *lat = calloc((size_t)o->streams * o->count, sizeof(*lat));
	size_t *got_bytes = calloc(o->streams, sizeof(*got_bytes)), n_lat = 0;
	struct epoll_event evs[256];
	char buf[65536];

	if (!fds || !lat || !got_bytes || ep < 0)
		return 1;
	for (unsigned i = 0; i < o->streams; i++) {
		struct sockaddr_in src = { .sin_family = AF_INET };
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

		src.sin_addr.s_addr = htonl(0x7f030000u | ((i / 250) << 8) | (i % 250 + 1));
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || bind(fds[i], (const void *)&src, sizeof(src)) < 0 ||
		    connect(fds[i], (const void *)to, sizeof(*to)) < 0) {
			perror("fanout_floor: connect");
			return 1;
		}
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	sh->reader_cpu_s = process_cpu_s();
	for (unsigned k = 1; k <= o->count; k++) {
		double start = bench_now_s();
		unsigned got = 0;

		while (got < o->streams) {
			int n = epoll_wait(ep, evs, 256, 100);

			if (bench_now_s() - start > WAIT_S + 1) {
				fprintf(stderr, "fanout_floor: change %u: %u of %u arrived\n", k,
					got, o->streams);
				sh->failed = 1;
				return 1;
			}
			for (int j = 0; j < n; j++) {
				unsigned i = evs[j].data.u32;
				ssize_t r = recv(fds[i], buf, sizeof(buf), MSG_DONTWAIT);

				if (r <= 0)
					continue;
				/* a line is counted when its last byte is in */
				got_bytes[i] += (size_t)r;
				if (got_bytes[i] >= (size_t)k * o->size &&
				    got_bytes[i] - (size_t)r < (size_t)k * o->size) {
					lat[n_lat++] = bench_now_s() - sh->t_sent;
					got++;
				}
			}
		}
		if (k == o->count)
			sh->reader_cpu_s = process_cpu_s() - sh->reader_cpu_s;
		sh->received = (int)k;
	}
	qsort(lat, n_lat, sizeof(*lat), bench_cmp_double);
	printf("floor: %zu deliveries of %u changes to %u streams (%u sender thread%s, %u "
	       "bytes): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
	       n_lat, o->count, o->streams, o->senders, o->senders == 1 ? "" : "s", o->size,
	       lat[n_lat / 2] * 1e3, lat[(size_t)((double)n_lat * 0.99)] * 1e3,
	       lat[n_lat - 1] * 1e3);
	printf("RESULT streams=%u samples=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", o->streams,
	       n_lat, lat[n_lat / 2] * 1e3, lat[(size_t)((double)n_lat * 0.99)] * 1e3,
	       lat[n_lat - 1] * 1e3);
	return 0;
}

static int run(const struct opts *o)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	struct sender snd[MAX_SENDERS];
	double sender_cpu_s = 0;
	socklen_t len = sizeof(addr);
	struct shared *sh;
	int lfd = -1, one = 1, status = 0, rc = 1;
	int *fds = calloc(o->streams, sizeof(*fds));
	char *line = malloc(o->size);
	struct sendq q = { .fds = fds, .n = o->streams, .line = line, .len = o->size };
	unsigned accepted = 0;
	pid_t pid = -1;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (!fds || !line || sh == MAP_FAILED)
		goto out;
	memset(line, 'x', o->size);
	line[o->size - 1] = '\n';
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (const void *)&addr, sizeof(addr)) < 0 || listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (void *)&addr, &len) < 0) {
		perror("fanout_floor: listen");
		goto out;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		perror("fanout_floor: fork");
		goto out;
	}
	if (pid == 0) {
		close(lfd);
		_exit(reader(o, &addr, sh));
	}
	for (; accepted < o->streams; accepted++) {
		fds[accepted] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fds[accepted] < 0) {
			perror("fanout_floor: accept");
			goto out;
		}
		setsockopt(fds[accepted], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	for (unsigned k = 1; k <= o->count; k++) {
		double start;

		usleep(50 * 1000); /* let the previous change settle */
		q.next = 0;
		sh->t_sent = bench_now_s();
		for (unsigned s = 0; s < o->senders; s++) {
			snd[s] = (struct sender){ .q = &q };
			if (s > 0 && pthread_create(&snd[s].thread, NULL, send_all, &snd[s]) != 0)
				snd[s].err = EAGAIN;
		}
		send_all(&snd[0]);
		for (unsigned s = 1; s < o->senders; s++)
			if (snd[s].err != EAGAIN)
				pthread_join(snd[s].thread, NULL);
		for (unsigned s = 0; s < o->senders; s++) {
			if (snd[s].err) {
				fprintf(stderr, "fanout_floor: send: %s\n", strerror(snd[s].err));
				goto out;
			}
			sender_cpu_s += snd[s].cpu_s;
		}
		for (start = bench_now_s(); sh->received < (int)k && !sh->failed;) {
			if (bench_now_s() - start > WAIT_S)
				goto out;
			usleep(1000);
		}
		if (sh->failed)
			goto out;
	}
	rc = 0;
out:
	if (pid > 0) {
		if (rc)
			kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			rc = 1;
	}
	if (rc == 0) {
		double n = (double)o->streams * o->count;

		printf("floor: CPU per delivery: senders %.2f us, reader %.2f us\n",
		       sender_cpu_s * 1e6 / n, sh->reader_cpu_s * 1e6 / n);
		printf("RESULT sender_us=%.3f reader_us=%.3f\n", sender_cpu_s * 1e6 / n,
		       sh->reader_cpu_s * 1e6 / n);
	}
	for (unsigned i = 0; i < accepted; i++)
		close(fds[i]);
	if (lfd >= 0)
		close(lfd);
	if (sh != MAP_FAILED)
		munmap(sh, sizeof(*sh));
	free(fds);
	free(line);
	return rc;
}

static unsigned number(const char *name, const char *s, unsigned min, unsigned max)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == '\0' || *end || v < min || v > max) {
		fprintf(stderr, "fanout_floor: %s: not a number from %u to %u: %s\n", name, min,
			max, s);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "streams", required_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'n' },
		{ "senders", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .streams = 1000, .count = 20, .senders = 1, .size = 600 };
	struct rlimit rl;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'w':
			o.streams = number("--streams", optarg, 1, 60000);
			break;
		case 'n':
			o.count = number("--count", optarg, 1, 100000);
			break;
		case 's':
			o.senders = number("--senders", optarg, 1, MAX_SENDERS);
			break;
		case 'b':
			o.size = number("--size", optarg, 2, 65536);
			break;
		case 'h':
			printf("usage: fanout_floor [--streams W] [--count N] [--senders S] "
			       "[--size BYTES]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	return run(&o);
}
