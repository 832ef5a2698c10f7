#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Two network namespaces joined by a veth pair, a kernel WireGuard interface in each,
# configured only through nexd's kernel backend (nexd_wg_tool), then traffic through the
# tunnel over IPv4 and IPv6 and a completed handshake.  Needs root and the kernel's WireGuard
# (tests/vm/run-kernel-tests runs it in a VM).  Removes its namespaces, even on failure.
#
#   kernel-ping.sh PATH/TO/nexd_wg_tool
set -u
tool=${1:?usage: kernel-ping.sh PATH/TO/nexd_wg_tool}
a=nxvmA$$
b=nxvmB$$
tmp=$(mktemp -d)
fails=0

cleanup() {
	ip netns del "$a" 2>/dev/null
	ip netns del "$b" 2>/dev/null
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
inA() { ip netns exec "$a" "$@"; }
inB() { ip netns exec "$b" "$@"; }

umask 077
wg genkey >"$tmp/a.key" && wg pubkey <"$tmp/a.key" >"$tmp/a.pub" &&
	wg genkey >"$tmp/b.key" && wg pubkey <"$tmp/b.key" >"$tmp/b.pub" || exit 1

ip netns add "$a" && ip netns add "$b" || exit 1
ip link add veth0 netns "$a" type veth peer name veth0 netns "$b" || exit 1
for n in 1 2; do
	[ "$n" = 1 ] && ns=$a || ns=$b
	ip -n "$ns" -batch - <<-EOF || exit 1
		addr add 192.168.77.$n/24 dev veth0
		link set lo up
		link set veth0 up
	EOF
done

step "nexd backend creates and programs wg0 in A" inA "$tool" set wg0 \
	private-key "$tmp/a.key" listen-port 51820 \
	peer "$(<"$tmp/b.pub")" endpoint 192.168.77.2:51821 \
	allowed-ips 10.77.0.2/32,fd77::2/128
step "nexd backend creates and programs wg0 in B" inB "$tool" set wg0 \
	private-key "$tmp/b.key" listen-port 51821 \
	peer "$(<"$tmp/a.pub")" endpoint 192.168.77.1:51820 \
	allowed-ips 10.77.0.1/32,fd77::1/128
for n in 1 2; do
	[ "$n" = 1 ] && ns=$a || ns=$b
	ip -n "$ns" -batch - <<-EOF || exit 1
		addr add 10.77.0.$n/24 dev wg0
		addr add fd77::$n/64 dev wg0 nodad
		link set wg0 up
	EOF
done

step "wg0 in A is a kernel wireguard link" ip -n "$a" link show wg0 type wireguard
step "wg(8) sees what nexd's backend set" \
	bash -c "ip netns exec $a wg show wg0 listen-port | grep -qx 51820 &&
		ip netns exec $a wg show wg0 allowed-ips | grep -q '10.77.0.2/32'"
step "ping A -> B through the tunnel (IPv4)" inA ping -c 3 -i 0.2 -W 3 10.77.0.2
step "ping B -> A through the tunnel (IPv6)" inB ping -6 -c 3 -i 0.2 -W 3 fd77::1
step "wg show: A has a handshake with B" \
	bash -c "ip netns exec $a wg show wg0 latest-handshakes | awk '{ exit !(\$2 > 0) }'"
step "nexd backend reads the handshake and traffic back" \
	bash -c "ip netns exec $b '$tool' show wg0 |
		awk '/latest handshake:/ { h = \$3 } /transfer:/ { r = \$2 }
		     END { exit !(h > 0 && r > 0) }'"
# Adopting the running interface (nexd restarting) and changing it keeps traffic flowing.
step "nexd backend adopts the running wg0 and changes a peer" inA "$tool" set wg0 \
	peer "$(<"$tmp/b.pub")" persistent-keepalive 5
step "ping after the change" inA ping -c 2 -i 0.2 -W 3 10.77.0.2
step "close(destroy) removes wg0" inB "$tool" del wg0
step "wg0 in B is gone" bash -c "! ip netns exec $b ip link show wg0"

echo "# kernel-ping: $fails failed"
[ "$fails" -eq 0 ]
