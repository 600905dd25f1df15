#!/bin/sh
# dockerd.sh - a private container engine for kfpc's docker executor (tests, benchmarks, demos).
#
# Usage: scripts/dockerd.sh [--podman] start|stop|restart|status [DIR]
#   start    install the engine with apt-get if it is missing (sudo when not root), start it
#            with all of its state under DIR, wait until it answers /_ping, and print
#              export DOCKER_HOST=unix://DIR/docker.sock      (podman: DIR/podman.sock)
#            Starting an engine that already runs in DIR only prints that line.
#   stop     stop the engine of DIR (its containers go with it) and unmount what it left;
#            the data (images) stay in DIR for the next start. `stop --purge` also deletes DIR.
#   restart  stop then start (same data: images survive).
#   status   exit 0 when the engine of DIR answers.
#   DIR      default: $KFPC_DOCKERD_DIR, else /tmp/kfpc-dockerd-UID. Keep it short: unix
#            socket paths are limited to 107 bytes.
#
# Docker: `dockerd --host unix://DIR/docker.sock --data-root DIR/data --exec-root DIR/exec
#   --pidfile DIR/docker.pid --iptables=false --ip-forward=false --ip-masq=false --bridge=none`
#   with its own containerd namespace (it starts a private containerd under DIR/exec unless
#   a system containerd runs; when DIR is too long for containerd's socket paths the exec root
#   is /tmp/kfpc-dexec-CKSUM instead). No bridge: steps use NetworkMode "none" (KFPC_DOCKER_NETWORK).
# Podman (--podman): `podman --root DIR/root --runroot DIR/run --runtime runc
#   --cgroup-manager cgroupfs system service --time=0 unix://DIR/podman.sock`. runc, not crun:
#   crun fails on hosts with hybrid cgroups (v1 controllers plus a v2 mount). Podman refuses
#   a runroot longer than 50 characters: a longer DIR/run becomes /tmp/kfpc-podrun-CKSUM.
# Logs: DIR/dockerd.log or DIR/podman.log. KFPC_DOCKERD_FLAGS: more flags for dockerd, or global
#   flags for podman (`--log-level=debug`; note that Podman then passes --syslog to the
#   `podman container cleanup` it runs when a container exits, which fails without /dev/log:
#   an exited container is then seen as stopped only when a request looks at it).
set -eu

engine=docker
if [ "${1:-}" = "--podman" ]; then
	engine=podman
	shift
fi
cmd=${1:-start}
[ $# -gt 0 ] && shift
purge=0
if [ "${1:-}" = "--purge" ]; then
	purge=1
	shift
fi
dir=${1:-${KFPC_DOCKERD_DIR:-/tmp/kfpc-dockerd-$(id -u)}}
case "$dir" in /*) ;; *) dir=$(pwd)/$dir ;; esac

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

say() { echo "dockerd.sh: $*" >&2; }
die() { say "$*"; exit 1; }

if [ $engine = docker ]; then
	sock=$dir/docker.sock
	pidfile=$dir/docker.pid
	log=$dir/dockerd.log
else
	sock=$dir/podman.sock
	pidfile=$dir/podman.pid
	log=$dir/podman.log
fi
[ ${#sock} -le 107 ] || die "socket path $sock is longer than 107 bytes: use a shorter DIR"

ping() {
	curl -sf --max-time 3 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1
}

alive() {
	[ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

install_missing() {
	pkgs=""
	if [ $engine = docker ]; then
		[ -x /usr/sbin/dockerd ] || command -v dockerd >/dev/null 2>&1 || pkgs="$pkgs docker.io"
	else
		command -v podman >/dev/null 2>&1 || pkgs="$pkgs podman"
	fi
	command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || pkgs="$pkgs runc"
	command -v curl >/dev/null 2>&1 || pkgs="$pkgs curl"
	[ -z "$pkgs" ] && return 0
	say "installing:$pkgs"
	$SUDO apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs >&2
}

print_env() {
	echo "export DOCKER_HOST=unix://$sock"
}

start() {
	mkdir -p "$dir"
	if alive && ping; then
		print_env
		return 0
	fi
	install_missing
	if [ $engine = docker ]; then
		dockerd=$(command -v dockerd 2>/dev/null || echo /usr/sbin/dockerd)
		# containerd's sockets live below the exec root: keep their paths within 107 bytes
		execroot=$dir/exec
		[ $((${#execroot} + 41)) -le 107 ] ||
			execroot=/tmp/kfpc-dexec-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
		echo "$execroot" >"$dir/execroot"
		# a containerd namespace of our own, so that several private engines never meet
		ns=kfpc-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
		$SUDO "$dockerd" --host "unix://$sock" --data-root "$dir/data" --exec-root "$execroot" \
			--pidfile "$pidfile" --iptables=false --ip-forward=false --ip-masq=false \
			--bridge=none --containerd-namespace "$ns" --containerd-plugins-namespace "$ns-p" \
			--shutdown-timeout 3 --log-level warn ${KFPC_DOCKERD_FLAGS:-} \
			>"$log" 2>&1 </dev/null &
		pid=$!
	else
		# Podman refuses a runroot longer than 50 characters: use a short one then
		runroot=$dir/run
		[ ${#runroot} -le 50 ] || runroot=/tmp/kfpc-podrun-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
		echo "$runroot" >"$dir/runroot"
		mkdir -p "$dir/root" "$runroot" "$dir/tmp" "$dir/cfg/containers"
		# Podman raises nofile/nproc beyond what a sandbox may allow: ours (nproc at most 32768)
		nofile=$(awk '/^Max open files/ { print $5 }' /proc/self/limits)
		nproc=$(awk '/^Max processes/ { print $4 }' /proc/self/limits)
		[ "$nofile" = unlimited ] && nofile=1048576
		{ [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
		[ -f "$dir/cfg/containers/containers.conf" ] || printf '%s\n' \
			'[engine]' 'runtime = "runc"' 'cgroup_manager = "cgroupfs"' 'events_logger = "file"' \
			"tmp_dir = \"$dir/tmp\"" \
			'[containers]' 'netns = "none"' 'log_driver = "k8s-file"' \
			"default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]" \
			>"$dir/cfg/containers/containers.conf"
		$SUDO env CONTAINERS_CONF="$dir/cfg/containers/containers.conf" \
			XDG_CONFIG_HOME="$dir/cfg" TMPDIR="$dir/tmp" \
			podman --root "$dir/root" --runroot "$runroot" --runtime runc \
			--cgroup-manager cgroupfs --events-backend file --tmpdir "$dir/tmp" \
			${KFPC_DOCKERD_FLAGS:-} system service --time=0 "unix://$sock" >"$log" 2>&1 </dev/null &
		pid=$!
		echo $pid >"$pidfile"
	fi
	i=0
	while ! ping; do
		if ! kill -0 $pid 2>/dev/null; then
			tail -n 20 "$log" >&2 || true
			die "$engine exited while starting (log: $log)"
		fi
		i=$((i + 1))
		[ $i -lt 300 ] || { tail -n 20 "$log" >&2; die "$engine did not answer within 60 s (log: $log)"; }
		sleep 0.2
	done
	if [ "$(id -u)" -ne 0 ]; then
		$SUDO chown "$(id -u):$(id -g)" "$sock"
	fi
	print_env
}

umount_under() {
	# everything mounted below $1, deepest first
	awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
		while read -r m; do $SUDO umount -l "$m" 2>/dev/null || true; done
}

stop() {
	if [ -f "$pidfile" ]; then
		pid=$(cat "$pidfile")
		if kill -0 "$pid" 2>/dev/null; then
			$SUDO kill -TERM "$pid" 2>/dev/null || true
			i=0
			while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do
				sleep 0.2
				i=$((i + 1))
			done
			kill -0 "$pid" 2>/dev/null && $SUDO kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$pidfile"
	fi
	execroot=$dir/exec
	[ -f "$dir/execroot" ] && execroot=$(cat "$dir/execroot")
	# a private containerd left behind by a killed dockerd
	for p in "$execroot"/containerd/containerd.pid; do
		[ -f "$p" ] || continue
		cpid=$(cat "$p" 2>/dev/null || true)
		[ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null && $SUDO kill -TERM "$cpid" 2>/dev/null || true
	done
	umount_under "$dir"
	runroot=""
	[ -f "$dir/runroot" ] && runroot=$(cat "$dir/runroot")
	case "$runroot" in /tmp/kfpc-podrun-*) umount_under "$runroot" ;; esac
	case "$execroot" in /tmp/kfpc-dexec-*) umount_under "$execroot" ;; esac
	rm -f "$sock"
	if [ $purge = 1 ]; then
		case "$runroot" in /tmp/kfpc-podrun-*) $SUDO rm -rf "$runroot" ;; esac
		case "$execroot" in /tmp/kfpc-dexec-*) $SUDO rm -rf "$execroot" ;; esac
		$SUDO rm -rf "$dir"
	fi
}

case "$cmd" in
start) start ;;
stop) stop ;;
restart) stop; start ;;
status) alive && ping ;;
*) die "usage: scripts/dockerd.sh [--podman] start|stop|restart|status [--purge] [DIR]" ;;
esac
