/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The start-up and shutdown every daemon shares; see daemon.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "lib/daemon.h"
#include "lib/log.h"
#include "lib/nb_cli.h"
#include "lib/strutil.h"
#include "lib/yang.h"

enum {
	OPT_CONFIG = 'f',
	OPT_STATE_DIR = 1000,
	OPT_VTY_SOCKET,
	OPT_LOG_LEVEL,
	OPT_VERSION,
};

static const struct option common_options[] = {
	{ "pathspace", required_argument, NULL, 'N' },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "vty-socket", required_argument, NULL, OPT_VTY_SOCKET },
	{ "daemon", no_argument, NULL, 'd' },
	{ "check", no_argument, NULL, 'C' },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
};
#define N_COMMON    (sizeof(common_options) / sizeof(common_options[0]))
#define MAX_OPTIONS 64

static void usage(const struct nx_daemon *d, FILE *f)
{
	char config[PATH_MAX], state[PATH_MAX], vty[PATH_MAX];

	nx_path_config(config, sizeof(config), d->name, NULL);
	nx_path_state_dir(state, sizeof(state), NULL);
	nx_path_vty(vty, sizeof(vty), d->name, NULL);
	fprintf(f,
		"Usage: %s [OPTION]...\n"
		"%s\n\n"
		"  -N, --pathspace NAME    run as instance NAME (paths gain a NAME/ component)\n"
		"  -f, --config FILE       configuration file (default: %s)\n"
		"      --state-dir DIR     state directory (default: %s)\n"
		"      --vty-socket PATH   VTY socket (default: %s)\n"
		"  -d, --daemon            detach and run in the background\n"
		"  -C, --check             check the configuration file and exit\n"
		"      --log-level LEVEL   err, warning, notice, info or debug (default: info)\n"
		"  -h, --help              this text\n"
		"      --version           print the version and exit\n"
		"%s",
		d->name, d->description, config, state, vty, d->extra_usage ? d->extra_usage : "");
}

int nx_daemon_flag_edit(struct nx_daemon *d, enum nx_nb_op op, const char *xpath, const char *value)
{
	size_t i = d->n_flag_edits;

	if (i >= NX_DAEMON_MAX_FLAG_EDITS)
		return -E2BIG;
	d->flag_edits[i].op = op;
	d->flag_edits[i].xpath = strdup(xpath);
	d->flag_edits[i].value = value ? strdup(value) : NULL;
	if (!d->flag_edits[i].xpath || (value && !d->flag_edits[i].value)) {
		free(d->flag_edits[i].xpath);
		free(d->flag_edits[i].value);
		return -ENOMEM;
	}
	d->n_flag_edits++;
	return 0;
}

static void flag_edits_free(struct nx_daemon *d)
{
	for (size_t i = 0; i < d->n_flag_edits; i++) {
		free(d->flag_edits[i].xpath);
		free(d->flag_edits[i].value);
	}
	d->n_flag_edits = 0;
}

static int parse_args(struct nx_daemon *d, int argc, char **argv, const char **config,
		      const char **state_dir, const char **vty_socket, int *log_level)
{
	struct option opts[MAX_OPTIONS];
	size_t n = 0;
	struct nx_err err;
	int c;

	for (size_t i = 0; i < N_COMMON; i++)
		opts[n++] = common_options[i];
	for (const struct option *o = d->extra_options; o && o->name && n < MAX_OPTIONS - 1; o++)
		opts[n++] = *o;
	memset(&opts[n], 0, sizeof(opts[n]));

	while ((c = getopt_long(argc, argv, "N:f:dCh", opts, NULL)) != -1) {
		switch (c) {
		case 'N':
			if (nx_pathspace_check(optarg, &err) < 0) {
				fprintf(stderr, "%s: %s\n", d->name, err.msg);
				return -EINVAL;
			}
			d->pathspace = optarg;
			break;
		case OPT_CONFIG:
			*config = optarg;
			break;
		case OPT_STATE_DIR:
			*state_dir = optarg;
			break;
		case OPT_VTY_SOCKET:
			*vty_socket = optarg;
			break;
		case 'd':
			d->daemonize = true;
			break;
		case 'C':
			d->check_only = true;
			break;
		case OPT_LOG_LEVEL:
			*log_level = nx_log_level_parse(optarg, &err);
			if (*log_level < 0) {
				fprintf(stderr, "%s: --log-level: %s\n", d->name, err.msg);
				return -EINVAL;
			}
			break;
		case 'h':
			usage(d, stdout);
			exit(0);
		case OPT_VERSION:
			printf("%s %s\n", d->name, PACKAGE_VERSION);
			exit(0);
		default:
			if (c >= 256 && d->extra_option) {
				if (d->extra_option(d, c, optarg) < 0)
					return -EINVAL;
				break;
			}
			usage(d, stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument: %s\n", d->name, argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int set_paths(struct nx_daemon *d, const char *config, const char *state_dir,
		     const char *vty_socket)
{
	int rc = 0;

	if (config)
		rc |= nx_strlcpy(d->config_path, config, sizeof(d->config_path)) >=
		      sizeof(d->config_path);
	else
		rc |= nx_path_config(d->config_path, sizeof(d->config_path), d->name, d->pathspace);
	if (state_dir)
		rc |= nx_strlcpy(d->state_dir, state_dir, sizeof(d->state_dir)) >=
		      sizeof(d->state_dir);
	else
		rc |= nx_path_state_dir(d->state_dir, sizeof(d->state_dir), d->pathspace);
	if (vty_socket)
		rc |= nx_strlcpy(d->vty_path, vty_socket, sizeof(d->vty_path)) >=
		      sizeof(d->vty_path);
	else
		rc |= nx_path_vty(d->vty_path, sizeof(d->vty_path), d->name, d->pathspace);
	rc |= nx_path_pid(d->pid_path, sizeof(d->pid_path), d->name, d->pathspace);
	return rc ? -ENAMETOOLONG : 0;
}

static int apply_flag_edits(struct nx_daemon *d, struct nx_err *err)
{
	struct nx_nb_candidate *cand;
	int rc = 0;

	if (d->n_flag_edits == 0)
		return 0;
	cand = nx_nb_candidate_new(d->nb);
	if (!cand)
		return nx_err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < d->n_flag_edits && rc == 0; i++)
		rc = nx_nb_candidate_edit(cand, d->flag_edits[i].op, d->flag_edits[i].xpath,
					  d->flag_edits[i].value, err);
	if (rc == 0)
		rc = nx_nb_commit(d->nb, cand, "command line", NULL, err);
	nx_nb_candidate_free(cand);
	return rc == -EALREADY ? 0 : rc;
}

static int write_pid_file(const struct nx_daemon *d, struct nx_err *err)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	return nx_write_file_atomic(d->pid_path, buf, (size_t)len, 0644, err);
}

/* Detaches as FRR's daemons do: fork, new session, stdio to /dev/null.  The parent waits
 * for nothing; systemd users run in the foreground with Type=notify instead. */
static int daemonize(struct nx_err *err)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return nx_err_set(err, errno, "fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return nx_err_set(err, errno, "setsid: %s", strerror(errno));
	if (chdir("/") < 0)
		return nx_err_set(err, errno, "chdir /: %s", strerror(errno));
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return nx_err_set(err, errno, "/dev/null: %s", strerror(errno));
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
	return 0;
}

static void on_stop_signal(int signo, void *arg)
{
	struct nx_daemon *d = arg;

	nx_notice("%s: stopping on signal %d", d->name, signo);
	nx_loop_stop(d->loop);
}

static void on_hup(int signo, void *arg)
{
	const struct nx_daemon *d = arg;

	nx_notice("%s: SIGHUP ignored: change the configuration through nexsh -d %s", d->name,
		  d->name);
}

int nx_daemon_main(struct nx_daemon *d, int argc, char **argv)
{
	const char *config = NULL, *state_dir = NULL, *vty_socket = NULL;
	int log_level = NX_LOG_INFO;
	struct nx_err err = { "" };
	int status = 1, rc;
	bool pid_written = false;

	if (parse_args(d, argc, argv, &config, &state_dir, &vty_socket, &log_level) < 0)
		goto out;
	if (set_paths(d, config, state_dir, vty_socket) < 0) {
		fprintf(stderr, "%s: a path is too long\n", d->name);
		goto out;
	}
	nx_log_init(d->name, NX_LOG_TO_STDERR, log_level);

	d->loop = nx_loop_new();
	d->tree = nx_cmd_tree_new();
	d->nb = nx_nb_new(&(struct nx_nb_config){ .embedded = nx_yang_embedded_modules,
						  .modules = d->yang_modules,
						  .module = d->yang_module,
						  .nodes = d->nb_nodes,
						  .n_nodes = d->n_nb_nodes,
						  .daemon = d->ctx },
			  &err);
	if (!d->loop || !d->tree || !d->nb) {
		nx_err("%s: start-up failed: %s", d->name, err.msg[0] ? err.msg : "out of memory");
		goto out;
	}
	if (d->init && d->init(d, &err) < 0) {
		nx_err("%s: start-up failed: %s", d->name, err.msg);
		goto out;
	}
	rc = nx_nb_cli_init(d->tree, &(struct nx_nb_cli_config){ .nb = d->nb,
								 .daemon = d->name,
								 .config_path = d->config_path });
	if (rc == 0)
		rc = nx_vty_install_basic_commands(d->tree, d->name);
	if (rc < 0) {
		nx_err("%s: start-up failed: cannot install commands (%s)", d->name, strerror(-rc));
		goto out;
	}

	rc = nx_nb_cli_read_config(d->tree, d->ctx, d->config_path, &err);
	if (rc == -ENOENT && !d->check_only) {
		nx_notice("%s: no configuration file %s: starting unconfigured", d->name,
			  d->config_path);
	} else if (rc < 0) {
		nx_err("%s", err.msg);
		goto out;
	}
	if (d->check_only) {
		printf("%s: configuration file %s is valid\n", d->name, d->config_path);
		status = 0;
		goto out;
	}
	if (apply_flag_edits(d, &err) < 0) {
		nx_err("%s: command line: %s", d->name, err.msg);
		goto out;
	}

	if (d->daemonize) {
		if (daemonize(&err) < 0) {
			nx_err("%s: %s", d->name, err.msg);
			goto out;
		}
		nx_log_init(d->name, NX_LOG_TO_SYSLOG, log_level);
	}
	signal(SIGPIPE, SIG_IGN);
	nx_loop_on_signal(d->loop, SIGTERM, on_stop_signal, d);
	nx_loop_on_signal(d->loop, SIGINT, on_stop_signal, d);
	nx_loop_on_signal(d->loop, SIGHUP, on_hup, d);

	if (nx_mkdir_parents(d->vty_path, 0755, 0, &err) < 0 ||
	    !(d->vty = nx_vty_server_new(d->loop, d->vty_path, d->tree, d->ctx, d->name, &err))) {
		nx_err("%s: VTY: %s", d->name, err.msg);
		goto out;
	}
	if (!d->pathspace || nx_mkdir_parents(d->pid_path, 0755, 0, &err) == 0) {
		if (write_pid_file(d, &err) == 0)
			pid_written = true;
		else
			nx_warn("%s: pid file: %s", d->name, err.msg);
	}
	if (d->start && d->start(d, &err) < 0) {
		nx_err("%s: %s", d->name, err.msg);
		goto out;
	}

	nx_notice("%s %s started (vty %s, config %s)", d->name, PACKAGE_VERSION, d->vty_path,
		  d->config_path);
	sd_notifyf(0, "READY=1\nMAINPID=%ld", (long)getpid());
	if (nx_loop_run(d->loop) == 0)
		status = 0;
	sd_notify(0, "STOPPING=1");
	nx_notice("%s stopped", d->name);
out:
	if (d->stop && d->loop)
		d->stop(d);
	nx_vty_server_free(d->vty);
	d->vty = NULL;
	if (pid_written)
		unlink(d->pid_path);
	nx_nb_free(d->nb);
	d->nb = NULL;
	nx_cmd_tree_free(d->tree);
	d->tree = NULL;
	nx_loop_free(d->loop);
	d->loop = NULL;
	flag_edits_free(d);
	nx_log_fini();
	return status;
}
