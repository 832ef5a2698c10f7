/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * nexd's userspace WireGuard backend: wireguard-go, configured over its UAPI socket.
 *
 * wireguard-go is the forwarding plane, nexd only its control plane: wireguard-go is started
 * detached (it daemonizes itself, in a session of its own) so it keeps forwarding while nexd
 * restarts, and a nexd that finds the interface's socket answering adopts it as it is.  Each
 * get or set is one short connection carrying one request; the text protocol itself is in
 * nexd_uapi.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/strutil.h"
#include "nexd/nexd.h"
#include "nexd/nexd_wg.h"

extern char **environ;

#define UAPI_SOCK_DIR	      "/var/run/wireguard"
#define UAPI_DEFAULT_BINARY   "wireguard-go"
#define UAPI_BINARY_ENV	      "NEXD_WIREGUARD_GO"
#define UAPI_START_TIMEOUT_MS 5000
#define UAPI_POLL_MS	      20
#define UAPI_IO_TIMEOUT_MS    10000
#define UAPI_REPLY_MAX	      (64u << 20)
#define UAPI_OUTPUT_MAX	      2048

struct uapi_priv {
	struct sockaddr_un sun;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* A connected socket, or a negative errno (-ENOENT: no socket file, -ECONNREFUSED: stale). */
static int uapi_connect(const struct uapi_priv *priv)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)&priv->sun, sizeof(priv->sun)) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int64_t left;
	int n;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Sends a request and reads the reply up to and including its final empty line (the socket
 * stays open after it, so the reply's end is found in the text, not at EOF). */
static int uapi_exchange(const struct uapi_priv *priv, const char *ifname, const char *req,
			 size_t req_len, char **reply, size_t *reply_len, struct nx_err *err)
{
	int64_t deadline = now_ms() + UAPI_IO_TIMEOUT_MS;
	size_t off = 0, len = 0, cap = 0;
	char *buf = NULL;
	int fd, rc = 0;

	*reply = NULL;
	*reply_len = 0;
	fd = uapi_connect(priv);
	if (fd < 0)
		return nx_err_set(err, -fd, "%s: cannot connect to %s: %s", ifname,
				  priv->sun.sun_path, strerror(-fd));
	while (off < req_len) {
		ssize_t n = send(fd, req + off, req_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			rc = wait_fd(fd, POLLOUT, deadline);
			if (rc < 0)
				goto io_error;
			continue;
		}
		if (n < 0) {
			rc = -errno;
			goto io_error;
		}
		off += (size_t)n;
	}
	for (;;) {
		size_t from;
		ssize_t n;

		if (cap - len < 4096) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nbuf;

			if (cap > UAPI_REPLY_MAX) {
				rc = nx_err_set(err, E2BIG, "%s: UAPI reply exceeds %u bytes",
						ifname, UAPI_REPLY_MAX);
				goto out;
			}
			nbuf = realloc(buf, ncap);
			if (!nbuf) {
				rc = nx_err_set(err, ENOMEM, "%s: out of memory for the UAPI reply",
						ifname);
				goto out;
			}
			buf = nbuf;
			cap = ncap;
		}
		n = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			rc = wait_fd(fd, POLLIN, deadline);
			if (rc < 0)
				goto io_error;
			continue;
		}
		if (n < 0) {
			rc = -errno;
			goto io_error;
		}
		if (n == 0) /* closed early: the parser says what is missing */
			break;
		from = len ? len - 1 : 0;
		len += (size_t)n;
		if (buf[0] == '\n' || memmem(buf + from, len - from, "\n\n", 2))
			break;
	}
	if (len == 0) {
		rc = nx_err_set(err, EPROTO, "%s: %s closed without a reply", ifname,
				priv->sun.sun_path);
		goto out;
	}
	buf[len] = '\0';
	*reply = buf;
	*reply_len = len;
	buf = NULL;
	goto out;
io_error:
	rc = nx_err_set(err, -rc, "%s: UAPI exchange on %s: %s", ifname, priv->sun.sun_path,
			strerror(-rc));
out:
	free(buf);
	close(fd);
	return rc;
}

/* An environment for wireguard-go without the variables that would keep it in the
 * foreground or have it log to descriptors nexd holds. */
static char **child_environ(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!nx_str_startswith(environ[i], "WG_PROCESS_FOREGROUND=") &&
		    !nx_str_startswith(environ[i], "LOG_LEVEL="))
			env[k++] = environ[i];
	return env;
}

/* Appends what the starter wrote, keeping the last UAPI_OUTPUT_MAX bytes. */
static void drain_output(int fd, char *out, size_t *out_len)
{
	char chunk[512];
	ssize_t n;

	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		size_t m = (size_t)n;

		if (m > UAPI_OUTPUT_MAX - 1)
			m = UAPI_OUTPUT_MAX - 1;
		if (*out_len + m > UAPI_OUTPUT_MAX - 1) {
			size_t drop = *out_len + m - (UAPI_OUTPUT_MAX - 1);

			memmove(out, out + drop, *out_len - drop);
			*out_len -= drop;
		}
		memcpy(out + *out_len, chunk + ((size_t)n - m), m);
		*out_len += m;
		out[*out_len] = '\0';
	}
}

/* The last non-empty line of the starter's output, made printable, for an error message. */
static const char *last_line(const char *out, char *buf, size_t size)
{
	char line[UAPI_OUTPUT_MAX];
	size_t end = strlen(out), start;

	while (end > 0 && (out[end - 1] == '\n' || out[end - 1] == '\r' || out[end - 1] == ' '))
		end--;
	start = end;
	while (start > 0 && out[start - 1] != '\n')
		start--;
	memcpy(line, out + start, end - start);
	line[end - start] = '\0';
	return nx_str_printable(buf, size, line);
}

static int uapi_spawn(struct nexd_wg *wg, struct uapi_priv *priv, struct nx_err *err)
{
	const char *bin = getenv(UAPI_BINARY_ENV);
	char *argv[3], **env = NULL, out[UAPI_OUTPUT_MAX] = "", line[160];
	size_t out_len = 0;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int pipefd[2] = { -1, -1 }, rc, status, fd;
	bool reaped = false, answered = false;
	int64_t deadline;
	pid_t pid;

	if (!bin || !*bin)
		bin = UAPI_DEFAULT_BINARY;
	argv[0] = (char *)bin;
	argv[1] = wg->ifname;
	argv[2] = NULL;
	env = child_environ();
	if (!env)
		return nx_err_set(err, ENOMEM, "out of memory starting %s", bin);
	if (pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0) {
		rc = nx_err_set(err, errno, "pipe: %s", strerror(errno));
		free(env);
		return rc;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
						POSIX_SPAWN_SETSID);
	rc = posix_spawnp(&pid, bin, &fa, &attr, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	free(env);
	close(pipefd[1]);
	if (rc != 0) {
		close(pipefd[0]);
		return nx_err_set(err, rc, "cannot run %s: %s", bin, strerror(rc));
	}
	nx_debug(&dbg_nexd_dataplane, "wireguard: started %s %s (pid %d)", bin, wg->ifname,
		 (int)pid);

	/* The starter opens the TUN device and the socket, hands both to its daemon and exits. */
	deadline = now_ms() + UAPI_START_TIMEOUT_MS;
	for (;;) {
		drain_output(pipefd[0], out, &out_len);
		if (!reaped && waitpid(pid, &status, WNOHANG) == pid) {
			reaped = true;
			drain_output(pipefd[0], out, &out_len);
			if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
				rc = nx_err_set(
					err, EIO, "%s %s failed (%s %d): %s", bin, wg->ifname,
					WIFEXITED(status) ? "exit status" : "signal",
					WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
					out_len ? last_line(out, line, sizeof(line)) : "no output");
				goto out;
			}
		}
		if (!answered) {
			fd = uapi_connect(priv);
			if (fd >= 0) {
				close(fd);
				answered = true;
			}
		}
		if (answered && reaped)
			break;
		if (now_ms() >= deadline)
			break;
		sleep_ms(UAPI_POLL_MS);
	}
	if (!answered) {
		if (!reaped) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
		drain_output(pipefd[0], out, &out_len);
		rc = nx_err_set(err, ETIMEDOUT, "%s %s: %s did not answer within %d ms%s%s", bin,
				wg->ifname, priv->sun.sun_path, UAPI_START_TIMEOUT_MS,
				out_len ? ": " : "",
				out_len ? last_line(out, line, sizeof(line)) : "");
		goto out;
	}
	if (!reaped)
		nx_warn("wireguard: %s %s (pid %d) answers but has not detached", bin, wg->ifname,
			(int)pid);
	rc = 0;
out:
	close(pipefd[0]);
	return rc;
}

/* Deletes a link by name with one RTM_DELLINK; 0 when done or already gone. */
static int link_delete(const char *ifname, struct nx_err *err)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = { 0 };
	struct {
		struct nlmsghdr nh;
		struct nlmsgerr e;
		char more[256];
	} ack;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	unsigned idx = if_nametoindex(ifname);
	struct timeval tv = { .tv_sec = 5 };
	ssize_t n;
	int fd, rc;

	if (idx == 0)
		return 0;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return nx_err_set(err, errno, "rtnetlink socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = RTM_DELLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.nh.nlmsg_seq = 1;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = (int)idx;
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) {
		rc = nx_err_set(err, errno, "%s: RTM_DELLINK: %s", ifname, strerror(errno));
		goto out;
	}
	n = recv(fd, &ack, sizeof(ack), 0);
	if (n < 0) {
		rc = nx_err_set(err, errno, "%s: RTM_DELLINK: %s", ifname, strerror(errno));
		goto out;
	}
	if ((size_t)n < sizeof(ack.nh) + sizeof(ack.e) || ack.nh.nlmsg_type != NLMSG_ERROR) {
		rc = nx_err_set(err, EPROTO, "%s: RTM_DELLINK: unexpected reply", ifname);
		goto out;
	}
	rc = ack.e.error;
	if (rc == -ENODEV)
		rc = 0;
	else if (rc < 0)
		nx_err_set(err, -rc, "%s: RTM_DELLINK: %s", ifname, strerror(-rc));
out:
	close(fd);
	return rc;
}

static int uapi_open(struct nexd_wg *wg, struct nx_err *err)
{
	struct uapi_priv *priv = calloc(1, sizeof(*priv));
	int fd, rc;

	if (!priv)
		return nx_err_set(err, ENOMEM, "out of memory");
	priv->sun.sun_family = AF_UNIX;
	if ((size_t)snprintf(priv->sun.sun_path, sizeof(priv->sun.sun_path), "%s/%s.sock",
			     UAPI_SOCK_DIR, wg->ifname) >= sizeof(priv->sun.sun_path)) {
		rc = nx_err_set(err, ENAMETOOLONG, "%s: socket path too long", wg->ifname);
		goto fail;
	}
	fd = uapi_connect(priv);
	if (fd >= 0 && if_nametoindex(wg->ifname) == 0) {
		/* The socket directory is shared by every network namespace: a daemon whose
		 * interface is not in ours belongs to someone else and is left alone. */
		close(fd);
		rc = nx_err_set(err, EEXIST,
				"%s: %s belongs to a wireguard-go whose interface is in another "
				"network namespace; choose another interface name",
				wg->ifname, priv->sun.sun_path);
		goto fail;
	}
	if (fd >= 0) {
		/* Graceful restart: the running wireguard-go keeps its peers and forwarding. */
		close(fd);
		nx_debug(&dbg_nexd_dataplane, "wireguard: %s: adopted the running daemon at %s",
			 wg->ifname, priv->sun.sun_path);
		wg->priv = priv;
		return 0;
	}
	if (fd == -ECONNREFUSED) {
		/* Left behind by a daemon that died: nobody listens, wireguard-go would fail. */
		nx_debug(&dbg_nexd_dataplane, "wireguard: %s: removing stale %s", wg->ifname,
			 priv->sun.sun_path);
		if (unlink(priv->sun.sun_path) < 0 && errno != ENOENT) {
			rc = nx_err_set(err, errno, "%s: cannot remove stale %s: %s", wg->ifname,
					priv->sun.sun_path, strerror(errno));
			goto fail;
		}
	} else if (fd != -ENOENT) {
		rc = nx_err_set(err, -fd, "%s: cannot connect to %s: %s", wg->ifname,
				priv->sun.sun_path, strerror(-fd));
		goto fail;
	}
	rc = uapi_spawn(wg, priv, err);
	if (rc < 0)
		goto fail;
	wg->priv = priv;
	return 0;
fail:
	free(priv);
	return rc;
}

static int uapi_get(struct nexd_wg *wg, struct nexd_wg_device *out, struct nx_err *err)
{
	static const char req[] = "get=1\n\n";
	char *reply;
	size_t len;
	int rc;

	rc = uapi_exchange(wg->priv, wg->ifname, req, sizeof(req) - 1, &reply, &len, err);
	if (rc < 0)
		return rc;
	rc = nexd_uapi_parse_get(reply, len, out, err);
	nx_memzero_explicit(reply, len); /* holds the private key */
	free(reply);
	return rc;
}

static int uapi_set(struct nexd_wg *wg, const struct nexd_wg_device *change, struct nx_err *err)
{
	char *req = NULL, *reply = NULL;
	size_t req_len = 0, len = 0;
	int rc;

	rc = nexd_uapi_format_set(change, &req, &req_len, err);
	if (rc < 0)
		return rc;
	rc = uapi_exchange(wg->priv, wg->ifname, req, req_len, &reply, &len, err);
	nx_memzero_explicit(req, req_len);
	free(req);
	if (rc < 0)
		return rc;
	rc = nexd_uapi_parse_errno(reply, len, err);
	free(reply);
	return rc;
}

static void uapi_close(struct nexd_wg *wg, bool destroy)
{
	struct uapi_priv *priv = wg->priv;
	struct nx_err err = { "" };
	int64_t deadline;
	int fd;

	if (destroy) {
		/* wireguard-go exits when its TUN device goes away. */
		if (link_delete(wg->ifname, &err) < 0)
			nx_warn("wireguard: %s", err.msg);
		deadline = now_ms() + 1000;
		while ((fd = uapi_connect(priv)) >= 0 && now_ms() < deadline) {
			close(fd);
			sleep_ms(UAPI_POLL_MS);
		}
		if (fd >= 0)
			close(fd);
		if (unlink(priv->sun.sun_path) < 0 && errno != ENOENT)
			nx_warn("wireguard: cannot remove %s: %s", priv->sun.sun_path,
				strerror(errno));
	}
	free(priv);
	wg->priv = NULL;
}

const struct nexd_wg_ops nexd_wg_uapi_ops = {
	.name = "uapi",
	.open = uapi_open,
	.get = uapi_get,
	.set = uapi_set,
	.close = uapi_close,
};
