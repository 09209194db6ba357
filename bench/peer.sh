#!/usr/bin/env bash
# Runs the load tool (examples/load) against the example server and against
# Debian's Prosody 0.12 with an equivalent configuration, on this machine,
# and prints the two results side by side with their ratios.
#
#   bench/peer.sh                 # every scenario, the figures of bench/README.md
#   bench/peer.sh pipelined mam   # only these
#   N=1000 bench/peer.sh pipelined
#
# Each server gets a fresh data directory under a temporary directory and
# loopback ports chosen free; both are stopped at exit. Prosody is installed
# with apt when missing (as root). Results are kept in $OUT (default: the
# temporary directory, removed at exit unless OUT is set).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-10000}          # messages of pipelined and senders
K=${K:-8}              # senders
IDLE=${IDLE:-200}      # idle sessions (each login costs the example server an Argon2id hash)
MAM_N=${MAM_N:-2000}   # messages archived before paging
UPLOADS=${UPLOADS:-20} # files of 1 MiB
RATE=${RATE:-1000}     # open loop: messages per second in total across the K senders
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(pipelined plain senders latency loaded-latency mam upload idle)

work=$(mktemp -d)
chmod 711 "$work" # the prosody user must reach its directory inside
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -z "${OUT:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

freeport() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}
waitport() { # port pid log
	local i
	for i in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || { cat "$3" >&2; return 1; }
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}

if ! command -v prosody >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prosody >/dev/null
		# Debian starts a system instance on the default ports; ours runs apart.
		systemctl stop prosody 2>/dev/null || service prosody stop 2>/dev/null || true
	else
		echo "prosody is not installed (apt-get install prosody)" >&2
		exit 1
	fi
fi

echo "building the example server and the load tool" >&2
go build -o "$work/server" ./examples/server
go build -o "$work/load" ./examples/load

# The example server: fresh data dir, its self-signed certificate (valid for
# localhost, upload.localhost, conference.localhost), open registration.
o_c2s=$(freeport) o_http=$(freeport)
"$work/server" -data "$work/ours" -c2s "127.0.0.1:$o_c2s" -c2s-tls "" -http "127.0.0.1:$o_http" \
	-open-registration >"$work/ours.log" 2>&1 &
ours_pid=$!
pids+=("$ours_pid")
waitport "$o_c2s" "$ours_pid" "$work/ours.log"

# Prosody: the same profile. TLS required on c2s, archive (mod_mam) with
# the default set by the tool (XEP-0441 prefs always), HTTPS upload
# (mod_http_file_share), in-band registration (loopback is not throttled),
# rooms, the same certificate, its own data dir and loopback ports. It
# refuses to run as root, so it runs as the prosody user.
p_c2s=$(freeport) p_https=$(freeport)
pd="$work/prosody"
mkdir -p "$pd/data"
cp "$work/ours/cert.pem" "$work/ours/key.pem" "$pd/"
cat >"$pd/prosody.cfg.lua" <<EOF
pidfile = "$pd/prosody.pid"
data_path = "$pd/data"
log = { info = "$pd/prosody.log" }
daemonize = false
interfaces = { "127.0.0.1" }
c2s_ports = { $p_c2s }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { }
http_ports = { }
https_ports = { $p_https }
https_interfaces = { "127.0.0.1" }
ssl = { certificate = "$pd/cert.pem", key = "$pd/key.pem" }
https_ssl = { certificate = "$pd/cert.pem", key = "$pd/key.pem" }
c2s_require_encryption = true
allow_registration = true
authentication = "internal_hashed"
storage = "internal"
default_archive_policy = false
archive_expires_after = "never"
modules_enabled = {
	"roster"; "saslauth"; "tls"; "dialback"; "disco"; "posix";
	"register"; "mam"; "ping"; "carbons"; "blocklist"; "vcard4"; "private";
	"smacks";
}
modules_disabled = { "s2s" }
http_file_share_size_limit = 104857600
http_file_share_expires_after = 30*24*60*60
VirtualHost "localhost"
Component "conference.localhost" "muc"
Component "upload.localhost" "http_file_share"
EOF
asuser=()
if [ "$(id -u)" = 0 ]; then
	chown -R prosody: "$pd"
	asuser=(setpriv --reuid=prosody --regid=prosody --init-groups)
fi
"${asuser[@]}" prosody -F --config "$pd/prosody.cfg.lua" >"$pd/stdout.log" 2>&1 &
prosody_pid=$!
pids+=("$prosody_pid")
waitport "$p_c2s" "$prosody_pid" "$pd/stdout.log"

run() { # name out-file args...
	local name=$1 out=$2
	shift 2
	"$work/load" -domain localhost -insecure -json -timeout 5m "$@" >>"$out"
}
both() { # scenario-label args...
	local s=$1
	shift
	echo "== $s: $*" >&2
	run ours "$work/ours.json" -label ours -addr "127.0.0.1:$o_c2s" -server-pid "$ours_pid" "$@" || true
	run prosody "$work/prosody.json" -label prosody -addr "127.0.0.1:$p_c2s" -server-pid "$prosody_pid" \
		-http-addr "127.0.0.1:$p_https" "$@" || true
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for s in "${scenarios[@]}"; do
	case $s in
	pipelined) both pipelined -scenario pipelined -archive -n "$N" ;;
	senders) both senders -scenario senders -archive -n "$N" -k "$K" ;;
	plain) both plain -scenario pipelined -name plain -n "$N" -user-prefix plain ;; # no archive: the cost of routing alone
	latency) both latency -scenario pipelined -name latency -archive -n 1000 -window 1 -user-prefix lat ;;
	latency-sm) both latency-sm -scenario pipelined -name latency-sm -archive -n 1000 -window 1 -sm -user-prefix lsm ;; # the idle hop with XEP-0198 on
	loaded-open) both loaded-open -scenario senders -name loaded-open -archive -n "$N" -k "$K" -rate "$RATE" -user-prefix lo ;; # open loop: K senders at RATE msg/s in total, hops timed from the scheduled send
	loaded-open-sm) both loaded-open-sm -scenario senders -name loaded-open-sm -archive -n "$N" -k "$K" -rate "$RATE" -sm -user-prefix losm ;;
	loaded-latency) both loaded-latency -scenario senders -name loaded-latency -archive -n "$N" -k "$K" -window 4 -user-prefix ll ;; # hop latency under 8 senders, each with at most 4 in flight (compare with latency's p50)
	rooms) both rooms -scenario rooms -n "$N" -k "$K" -window 16 ;; # unbounded, the fan-out overflows the example server's 256-stanza queues
	mam) both mam -scenario mam -n "$MAM_N" -user-prefix mam ;;
	upload) both upload -scenario upload -n "$UPLOADS" -k 2 ;;
	idle) both idle -scenario idle -k "$IDLE" -conc 1 -user-prefix idle ;; # one login at a time: one Argon2id hash in memory
	*) echo "unknown scenario $s" >&2; exit 2 ;;
	esac
done
echo "machine after: load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$work/load" -compare "$work/ours.json" "$work/prosody.json"
if [ -n "${OUT:-}" ]; then
	mkdir -p "$OUT"
	cp "$work/ours.json" "$work/prosody.json" "$OUT/"
fi
