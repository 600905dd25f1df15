#!/bin/sh
# images.sh - builds the two step images kfpc's examples and tests use, offline, and imports
# them into the engine at $DOCKER_HOST (Docker or Podman) through the Engine API.
#
# Usage: scripts/images.sh [--force] [--cache DIR] [busybox] [python]   (default: both)
#   busybox:1.36       Debian's busybox-static: /bin/busybox and a symlink per applet (in /bin
#                      and /usr/bin), /tmp, /root, /etc/passwd and /etc/group.
#   python:3.11-slim   the busybox rootfs plus the host's /usr/bin/python3.11, the shared
#                      libraries it and its extension modules load (ldd), and the standard
#                      library /usr/lib/python3.11 without its test suites.
# The root filesystems are built once into the cache (default $KFPC_IMAGES_CACHE, else
# ${XDG_CACHE_HOME:-~/.cache}/kfpc-images) as tar files; an image that is already present in
# the engine is not imported again unless --force. Needs: busybox-static, python3.11, curl
# (installed with apt-get when missing; sudo when not root). Nothing is downloaded from a
# registry.
set -eu

force=0
cache=${KFPC_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kfpc-images}
want=""
while [ $# -gt 0 ]; do
	case "$1" in
	--force) force=1 ;;
	--cache) shift; cache=$1 ;;
	busybox|python) want="$want $1" ;;
	*) echo "usage: scripts/images.sh [--force] [--cache DIR] [busybox] [python]" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$want" ] || want="busybox python"

say() { echo "images.sh: $*" >&2; }
die() { say "$*"; exit 1; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
need=""
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need="$need busybox-static"
[ -x /usr/bin/python3.11 ] || need="$need python3.11"
command -v curl >/dev/null 2>&1 || need="$need curl"
if [ -n "$need" ]; then
	say "installing:$need"
	$SUDO apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >&2
fi
busybox=$(command -v busybox)
file "$busybox" 2>/dev/null | grep -q "dynamically linked" &&
	die "$busybox is dynamically linked: install busybox-static"

host=${DOCKER_HOST:-unix:///var/run/docker.sock}
case "$host" in
unix://*) api() { curl -sS --max-time 600 --unix-socket "${host#unix://}" "$@"; }; base=http://localhost ;;
tcp://*) api() { curl -sS --max-time 600 "$@"; }; base=http://${host#tcp://} ;;
*) die "DOCKER_HOST=$host is not supported" ;;
esac
api -f "$base/_ping" >/dev/null || die "no engine answers at $host (start one: scripts/dockerd.sh start)"

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# busybox_rootfs DIR: a minimal root filesystem with busybox and its applets
busybox_rootfs() {
	r=$1
	mkdir -p "$r/bin" "$r/usr/bin" "$r/sbin" "$r/etc" "$r/tmp" "$r/root" "$r/proc" "$r/sys" \
		"$r/dev" "$r/home" "$r/var/tmp"
	chmod 1777 "$r/tmp" "$r/var/tmp"
	cp "$busybox" "$r/bin/busybox"
	for a in $("$busybox" --list); do
		[ "$a" = busybox ] && continue
		[ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"
		[ -e "$r/usr/bin/$a" ] || ln -s /bin/busybox "$r/usr/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
}

# copy_with_libs ROOT FILE...: copies each FILE and the shared libraries it loads into ROOT
copy_libs() {
	r=$1
	shift
	for f in "$@"; do
		ldd "$f" 2>/dev/null | awk '/=> \// { print $3 } /^[ \t]*\/[^ ]*ld-linux/ { print $1 }'
	done | sort -u | while read -r lib; do
		[ -f "$lib" ] || continue
		mkdir -p "$r$(dirname "$lib")"
		[ -e "$r$lib" ] || cp -L "$lib" "$r$lib"
		# the loader is looked up under /lib64 and /lib
		real=$(readlink -f "$lib")
		if [ "$real" != "$lib" ] && [ ! -e "$r$real" ]; then
			mkdir -p "$r$(dirname "$real")"
			cp -L "$lib" "$r$real"
		fi
	done
}

python_rootfs() {
	r=$1
	busybox_rootfs "$r"
	mkdir -p "$r/usr/bin" "$r/usr/lib" "$r/usr/local/bin" "$r/etc"
	cp /usr/bin/python3.11 "$r/usr/bin/python3.11"
	ln -sf python3.11 "$r/usr/bin/python3"
	ln -sf python3.11 "$r/usr/bin/python"
	ln -sf /usr/bin/python3.11 "$r/usr/local/bin/python3"
	ln -sf /usr/bin/python3.11 "$r/usr/local/bin/python"
	# the standard library, without test suites and tools nobody runs in a step
	(cd /usr/lib && tar -cf - --exclude='python3.11/test' --exclude='python3.11/*/tests' \
		--exclude='python3.11/*/test' --exclude='python3.11/idlelib' \
		--exclude='python3.11/tkinter' --exclude='python3.11/turtledemo' \
		--exclude='python3.11/ensurepip' --exclude='python3.11/lib2to3' \
		--exclude='python3.11/config-3.11-*' python3.11) | (cd "$r/usr/lib" && tar -xf -)
	[ -d /etc/python3.11 ] && cp -a /etc/python3.11 "$r/etc/"
	copy_libs "$r" /usr/bin/python3.11 /usr/lib/python3.11/lib-dynload/*.so
	"$r/usr/bin/python3.11" -c 'import sys' 2>/dev/null || true
}

# build NAME FUNC: builds cache/NAME.tar with FUNC unless present
build() {
	name=$1
	func=$2
	tarf=$cache/$name.tar
	[ -f "$tarf" ] && [ $force = 0 ] && return 0
	tmp=$(mktemp -d "$cache/.build-XXXXXX")
	$func "$tmp/root"
	tar --numeric-owner --owner=0 --group=0 -C "$tmp/root" -cf "$tmp/rootfs.tar" .
	mv "$tmp/rootfs.tar" "$tarf"
	rm -rf "$tmp"
}

present() {
	api -f -o /dev/null "$base/v1.41/images/$1/json" 2>/dev/null
}

# import REPO TAG TARFILE CHANGES...: POST /images/create?fromSrc=- with the rootfs as body
import() {
	repo=$1
	tag=$2
	tarf=$3
	shift 3
	if present "$repo:$tag" && [ $force = 0 ]; then
		return 0
	fi
	q="fromSrc=-&repo=$repo&tag=$tag"
	for c in "$@"; do
		q="$q&changes=$(printf '%s' "$c" | sed 's/ /%20/g; s/"/%22/g; s/\[/%5B/g; s/\]/%5D/g; s/=/%3D/g; s/:/%3A/g; s/,/%2C/g; s/\//%2F/g')"
	done
	out=$(api -X POST -H 'Content-Type: application/x-tar' --data-binary "@$tarf" \
		"$base/v1.41/images/create?$q") || die "importing $repo:$tag failed: $out"
	case "$out" in *'"error'*|*'"message"'*) die "importing $repo:$tag failed: $out" ;; esac
	# Podman's compatible API ignores `tag` on import (it tags REPO:latest): tag by id
	id=$(printf '%s' "$out" | grep -o 'sha256:[0-9a-f]\{64\}' | tail -n 1)
	[ -n "$id" ] || die "importing $repo:$tag failed: no image id in the answer: $out"
	api -f -X POST "$base/v1.41/images/$id/tag?repo=$repo&tag=$tag" >/dev/null ||
		die "tagging $id as $repo:$tag failed"
	present "$repo:$tag" || die "importing $repo:$tag failed: the engine does not list it: $out"
	say "imported $repo:$tag"
}

PATHENV="ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
for w in $want; do
	case $w in
	busybox)
		build busybox busybox_rootfs
		import busybox 1.36 "$cache/busybox.tar" "$PATHENV" 'CMD ["sh"]'
		;;
	python)
		build python311 python_rootfs
		import python 3.11-slim "$cache/python311.tar" "$PATHENV" "ENV LANG=C.UTF-8" 'CMD ["python3"]'
		;;
	esac
done
