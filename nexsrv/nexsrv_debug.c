/* SPDX-License-Identifier: GPL-2.0-or-later */
/* nexsrv's debug switches: "debug controller <api|database|auth|watch|stun>". */
#include "config.h"

#include "nexsrv/nexsrv.h"

NX_DEBUG_DEFINE(nexsrv_api, "api", "REST API requests");
NX_DEBUG_DEFINE(nexsrv_database, "database", "PostgreSQL queries and the connection pool");
NX_DEBUG_DEFINE(nexsrv_auth, "auth", "Token validation");
NX_DEBUG_DEFINE(nexsrv_watch, "watch", "Watch streams and event fan-out");
NX_DEBUG_DEFINE(nexsrv_stun, "stun", "STUN responder");
