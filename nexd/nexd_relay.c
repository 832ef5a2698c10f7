/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A relay forwards between peers that cannot reach each other directly: packets come in on
 * the tunnel interface and leave on it again.  Besides IP forwarding (nexd_reconcile.c) it
 * needs the firewall to let them through: nexd owns one nftables table, inet nexodus, with a
 * forward chain accepting traffic from the tunnel interface to itself.  An accept in one
 * base chain does not override a drop in another table's chain at the same hook, so a host
 * whose own firewall drops forwarded traffic must allow it there too.
 */
#include "config.h"

#include <errno.h>
#include <nftables/libnftables.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nexd/nexd.h"

#define TABLE "inet nexodus"

static int run(const char *cmd, bool quiet_failure, struct nx_err *err)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	int rc;

	if (!nft)
		return nx_err_set(err, ENOMEM, "nftables: cannot create a context");
	nft_ctx_buffer_output(nft);
	nft_ctx_buffer_error(nft);
	rc = nft_run_cmd_from_buffer(nft, cmd);
	if (rc != 0 && !quiet_failure) {
		const char *msg = nft_ctx_get_error_buffer(nft);
		char line[200];

		snprintf(line, sizeof(line), "%s", msg && msg[0] ? msg : "failed");
		line[strcspn(line, "\n")] = '\0';
		rc = nx_err_set(err, EIO, "nftables: %s", line);
	} else if (rc != 0) {
		rc = -EIO;
	}
	nft_ctx_free(nft);
	return rc;
}

/* Makes the firewall match the relay setting: the table with its one rule, or no table. */
int nexd_relay_sync(struct nexd *nexd, struct nx_err *err)
{
	char cmd[512];
	int rc;

	if (nexd->cfg.relay == nexd->relay_installed)
		return 0;
	if (!nexd->cfg.relay) {
		run("delete table " TABLE "\n", true, NULL);
		nexd->relay_installed = false;
		nx_notice("relay: forwarding between peers stopped");
		return 0;
	}
	snprintf(cmd, sizeof(cmd),
		 "add table " TABLE "\n"
		 "add chain " TABLE
		 " forward { type filter hook forward priority 0; policy accept; }\n"
		 "flush chain " TABLE " forward\n"
		 "add rule " TABLE " forward iifname \"%s\" oifname \"%s\" accept\n",
		 nexd->cfg.ifname, nexd->cfg.ifname);
	rc = run(cmd, false, err);
	if (rc == 0) {
		nexd->relay_installed = true;
		nx_notice("relay: forwarding between peers on %s", nexd->cfg.ifname);
	}
	return rc;
}

void nexd_relay_remove(struct nexd *nexd)
{
	if (nexd->relay_installed)
		run("delete table " TABLE "\n", true, NULL);
	nexd->relay_installed = false;
}
