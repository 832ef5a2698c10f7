#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The YANG models are what the CLI, the config files and NETCONF accept, so
# they are tested like code: every module must lint clean (no error, no
# warning), good instances must be accepted, and each bad instance must be
# refused for the reason it was written for (the expected message is checked,
# so a typo in a test file cannot pass as a rejection).  Prints TAP.
#
# Environment: YANGLINT (set by make check from configure), srcdir (the
# directory holding yang/ and tests/yang/; "." when run by hand from the top
# of the source tree).

set -u

YANGLINT=${YANGLINT:-yanglint}
srcdir=${srcdir:-.}
yangdir=$srcdir/yang
datadir=$srcdir/tests/yang

# One test a line: KIND|TYPE|MODULE|ARG|EXPECT|HIDE|WHAT
#   schema     MODULE lints clean
#   namespace  MODULE's namespace is urn:nexodus:yang:MODULE
#   secret     the schema node ARG of MODULE carries nexodus-types:secret
#   good       the instance ARG (data TYPE) is accepted
#   same       the instances ARG (two files) hold the same data
#   default    the instance ARG printed with defaults contains EXPECT
#   bad        the instance ARG is refused with a message containing EXPECT
#              and (when given) not containing HIDE
tests=$(cat <<'EOF'
schema||nexodus-types||||nexodus-types lints clean
schema||nexodus-agent||||nexodus-agent lints clean
schema||nexodus-controller||||nexodus-controller lints clean
namespace||nexodus-types||||nexodus-types namespace follows the convention
namespace||nexodus-agent||||nexodus-agent namespace follows the convention
namespace||nexodus-controller||||nexodus-controller namespace follows the convention
secret||nexodus-agent|/nexodus-agent:nexodus/registration-key|||registration-key is a secret
secret||nexodus-controller|/nexodus-controller:controller/database|||database is a secret
good|config|nexodus-agent|agent-good.json|||a full nexd configuration (JSON) is accepted
good|config|nexodus-agent|agent-good.xml|||a full nexd configuration (XML) is accepted
same|config|nexodus-agent|agent-good.json agent-good.xml|||the JSON and XML configurations are the same data
good|data|nexodus-agent|agent-state.json|||agent state with peers and routes, secret masked, is accepted
good|data|nexodus-controller|controller-good.json|||a full nexsrv configuration with state is accepted
good|config|nexodus-controller|controller-insecure-good.json|||a plain-HTTP nexsrv configuration is accepted
good|data|nexodus-controller|controller-show.json|||nexsrv state with the database secret masked is accepted
default|data|nexodus-agent|agent-state.json|"interface": "nexodus0"||interface defaults to nexodus0
default|data|nexodus-agent|agent-state.json|"wireguard-backend": "auto"||wireguard-backend defaults to auto
default|config|nexodus-controller|controller-insecure-good.json|"listen": "[::]:8080"||listen defaults to [::]:8080
default|config|nexodus-controller|controller-insecure-good.json|"requests-per-second": 50||rate-limit defaults to 50 requests per second
default|config|nexodus-controller|controller-insecure-good.json|"burst": 100||rate-limit burst defaults to 100
default|config|nexodus-controller|controller-insecure-good.json|"tombstone-retention": 604800||tombstone-retention defaults to 7 days
bad|config|nexodus-agent|agent-bad-prefix-33.json|Invalid union value "10.0.0.0/33"||advertise-cidr 10.0.0.0/33 is refused
bad|config|nexodus-agent|agent-bad-prefix-33.xml|Invalid union value "10.0.0.0/33"||advertise-cidr 10.0.0.0/33 is refused in XML
bad|config|nexodus-agent|agent-bad-prefix6-129.json|Invalid union value "2001:db8::/129"||advertise-cidr 2001:db8::/129 is refused
bad|config|nexodus-agent|agent-bad-vpc-id.json|expected a UUID||a vpc-id that is not a UUID is refused
bad|config|nexodus-agent|agent-bad-listen-port-0.json|expected a port number from 1 to 65535||listen-port 0 is refused
bad|config|nexodus-agent|agent-bad-backend.json|Invalid enumeration value "foo"||wireguard-backend foo is refused
bad|config|nexodus-agent|agent-bad-stun-server.json|expected HOST:PORT||a stun-server without a port is refused
bad|config|nexodus-agent|agent-bad-stun-port.json|expected HOST:PORT||a stun-server with port 65536 is refused
bad|config|nexodus-agent|agent-bad-stun-duplicate.json|Duplicate instance of "stun-server"||the same stun-server twice is refused
bad|config|nexodus-agent|agent-bad-interface-long.json|1 to 15 characters||an interface name of 16 characters is refused
bad|config|nexodus-agent|agent-bad-interface-dots.json|other than "." and ".."||interface .. is refused
bad|config|nexodus-agent|agent-bad-service-url.json|expected an http:// or https:// URL||an ftp service-url is refused
bad|config|nexodus-agent|agent-bad-debug.json|Invalid enumeration value "routes"||debug nexodus routes is refused
bad|config|nexodus-agent|agent-bad-registration-key.json|expected a registration key|hunter2|a bad registration-key is refused without quoting it
bad|data|nexodus-agent|agent-bad-state-key.json|expected a WireGuard key||a public key of 43 characters is refused
bad|config|nexodus-controller|controller-bad-tls-key-alone.json|tls-key needs tls-cert||tls-key without tls-cert is refused
bad|config|nexodus-controller|controller-bad-insecure-tls.json|insecure-http excludes tls-cert||insecure-http with TLS files is refused
bad|config|nexodus-controller|controller-bad-tls-relative.json|expected an absolute file path||a relative tls-cert path is refused
bad|config|nexodus-controller|controller-bad-oidc-audience-alone.json|oidc-audience needs oidc-issuer||oidc-audience without oidc-issuer is refused
bad|config|nexodus-controller|controller-bad-retention.json|expected a retention from 60 seconds||tombstone-retention 59 is refused
bad|config|nexodus-controller|controller-bad-rate-0.json|expected a rate from 1 to 1000000||requests-per-second 0 is refused
EOF
)

n=0
failures=0

# yanglint with the project's modules only: no search in the working
# directory, so a stray file there cannot change the outcome.
lint() {
	"$YANGLINT" -D -p "$yangdir" "$@"
}

# result OK|FAIL WHAT [DIAGNOSTIC]
result() {
	n=$((n + 1))
	if [ "$1" = OK ]; then
		echo "ok $n - $2"
	else
		failures=$((failures + 1))
		echo "not ok $n - $2"
		if [ -n "${3-}" ]; then
			printf '%s\n' "$3" | sed 's/^/#   /'
		fi
	fi
}

run_test() {
	kind=$1 type=$2 module=$3 arg=$4 expect=$5 hide=$6 what=$7
	schema=$yangdir/$module.yang

	case $kind in
	schema)
		out=$(lint "$schema" 2>&1)
		rc=$?
		if [ $rc -eq 0 ] && [ -z "$out" ]; then
			result OK "$what"
		else
			result FAIL "$what" "exit $rc: $out"
		fi
		;;
	namespace)
		want="urn:nexodus:yang:$module"
		if grep -q "^  namespace \"$want\";" "$schema"; then
			result OK "$what"
		else
			result FAIL "$what" "no 'namespace \"$want\";' in $schema"
		fi
		;;
	secret)
		out=$(lint -f info -q -P "$arg" "$schema" 2>&1)
		if printf '%s\n' "$out" | grep -q '^  nexodus-types:secret;$'; then
			result OK "$what"
		else
			result FAIL "$what" "$out"
		fi
		;;
	good)
		out=$(lint -t "$type" "$schema" "$datadir/$arg" 2>&1)
		rc=$?
		if [ $rc -eq 0 ] && [ -z "$out" ]; then
			result OK "$what"
		else
			result FAIL "$what" "exit $rc: $out"
		fi
		;;
	same)
		# shellcheck disable=SC2086 # two file names, split on purpose
		set -- $arg
		a=$(lint -t "$type" -f json "$schema" "$datadir/$1" 2>&1)
		b=$(lint -t "$type" -f json "$schema" "$datadir/$2" 2>&1)
		if [ -n "$a" ] && [ "$a" = "$b" ]; then
			result OK "$what"
		else
			result FAIL "$what" "$1:
$a
$2:
$b"
		fi
		;;
	default)
		out=$(lint -t "$type" -d all -f json "$schema" "$datadir/$arg" 2>&1)
		if printf '%s\n' "$out" | grep -qF -e "$expect"; then
			result OK "$what"
		else
			result FAIL "$what" "no '$expect' in:
$out"
		fi
		;;
	bad)
		out=$(lint -t "$type" "$schema" "$datadir/$arg" 2>&1)
		rc=$?
		if [ $rc -eq 0 ]; then
			result FAIL "$what" "accepted: $datadir/$arg"
		elif [ $rc -ge 126 ]; then
			result FAIL "$what" "yanglint did not run or crashed (exit $rc): $out"
		elif ! printf '%s\n' "$out" | grep -qF -e "$expect"; then
			result FAIL "$what" "refused, but not with '$expect': $out"
		elif [ -n "$hide" ] && printf '%s\n' "$out" | grep -qF -e "$hide"; then
			result FAIL "$what" "the message quotes '$hide': $out"
		else
			result OK "$what"
		fi
		;;
	*)
		result FAIL "$what" "unknown test kind '$kind'"
		;;
	esac
}

total=$(printf '%s\n' "$tests" | grep -c .)
echo "1..$total"

# Read from a file descriptor other than stdin, so nothing a test runs can
# swallow the remaining lines.
while IFS='|' read -r kind type module arg expect hide what <&3; do
	[ -n "$kind" ] || continue
	run_test "$kind" "$type" "$module" "$arg" "$expect" "$hide" "$what"
done 3<<EOF
$tests
EOF

[ "$failures" -eq 0 ]
