#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# nexd itself on the kernel backend: a scripted controller (tests/lab/fake_controller.py) in
# one namespace, two devices running nexd --wg-backend kernel in two others, routed through
# the first.  Both enroll, program kernel WireGuard peers and protocol-80 routes for each other,
# and ping across the tunnel.  Needs root and the kernel's WireGuard (run in the VM by
# tests/vm/kernel-tests.sh).  Removes what it made, even on failure.
#
#   kernel-nexd.sh BUILDDIR SRCDIR
set -u
builddir=${1:?usage: kernel-nexd.sh BUILDDIR SRCDIR}
srcdir=${2:?usage: kernel-nexd.sh BUILDDIR SRCDIR}
c=nxvmC$$
a=nxvmA$$
b=nxvmB$$
tmp=$(mktemp -d)
pids=()
fails=0

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	for ns in "$a" "$b" "$c"; do
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

step() {
	local what=$1 t0=${EPOCHREALTIME/./}
	shift
	if "$@" >"$tmp/out" 2>&1; then
		echo "ok - $what ($(((${EPOCHREALTIME/./} - t0) / 1000)) ms)"
	else
		echo "not ok - $what"
		sed 's/^/    /' "$tmp/out"
		fails=$((fails + 1))
	fi
}

# Bounded retry: CMD every 0.2 s until it succeeds or SECONDS pass.
until_ok() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

nexsh_json() { # NAME COMMAND
	"$builddir/vtysh/nexsh" --vty-socket "$tmp/$1.vty" -c "$2"
}

# The controller's namespace routes between the two devices' subnets (no bridge module in
# the guest): A 10.9.1.2 -- 10.9.1.1 C 10.9.2.1 -- 10.9.2.2 B.
ip netns add "$c" && ip netns add "$a" && ip netns add "$b" || exit 1
ip netns exec "$c" sysctl -qw net.ipv4.ip_forward=1
ip -n "$c" link set lo up
i=1
for ns in "$a" "$b"; do
	ip link add "v$i" netns "$ns" type veth peer name "p$i" netns "$c"
	ip -n "$c" addr add "10.9.$i.1/24" dev "p$i"
	ip -n "$c" link set "p$i" up
	ip -n "$ns" addr add "10.9.$i.2/24" dev "v$i"
	ip -n "$ns" link set "v$i" up
	ip -n "$ns" link set lo up
	ip -n "$ns" route add default via "10.9.$i.1"
	i=$((i + 1))
done

ip netns exec "$c" /usr/bin/python3 "$srcdir/tests/lab/fake_controller.py" \
	--listen 10.9.1.1:8080 --log "$tmp/requests.jsonl" --reg-key RK:vm-test \
	>"$tmp/controller.log" 2>&1 &
pids+=($!)
for ns in "$a" "$b"; do
	ip netns exec "$ns" "$builddir/nexd/nexd" -N "$ns" --state-dir "$tmp/$ns.state" \
		--config "$tmp/none.conf" --vty-socket "$tmp/$ns.vty" \
		--service-url http://10.9.1.1:8080 --reg-key RK:vm-test \
		--interface wg0 --wg-backend kernel >"$tmp/$ns.log" 2>&1 &
	pids+=($!)
done

connected() { nexsh_json "$1" "show nexodus status json" | grep -q '"state":"connected"'; }
route_to_peer() { # NS PEER-NS
	local peer
	peer=$(nexsh_json "$2" "show nexodus status json" |
		sed -n 's/.*"tunnel_ipv4":"\([0-9.]*\)".*/\1/p')
	[ -n "$peer" ] && ip -n "$1" route show proto 80 dev wg0 | grep -q "^$peer "
}
peer_ip() {
	nexsh_json "$1" "show nexodus status json" | sed -n 's/.*"tunnel_ipv4":"\([0-9.]*\)".*/\1/p'
}

step "both devices enroll and connect" until_ok 60 eval 'connected "$a" && connected "$b"'
step "wg0 is a kernel WireGuard link" eval \
	'ip -n "$a" -d link show wg0 | grep -q wireguard && ip -n "$b" -d link show wg0 | grep -q wireguard'
step "each has a protocol-80 route to the other" until_ok 30 eval \
	'route_to_peer "$a" "$b" && route_to_peer "$b" "$a"'
step "ping A -> B over kernel WireGuard programmed by nexd" until_ok 30 \
	ip netns exec "$a" ping -c 1 -W 1 "$(peer_ip "$b")"
step "ping B -> A" ip netns exec "$b" ping -c 1 -W 2 "$(peer_ip "$a")"
step "a handshake completed" eval \
	'ip netns exec "$a" wg show wg0 latest-handshakes | awk "{ exit !(\$2 > 0) }"'
if [ "$fails" -gt 0 ]; then
	for f in "$tmp"/*.log; do
		echo "    --- $f"
		tail -n 15 "$f" | sed 's/^/    /'
	done
fi
echo "# kernel-nexd: $fails failed"
exit "$fails"
