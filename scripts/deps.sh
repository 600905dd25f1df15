#!/bin/sh
# Installs the Debian 12 packages kfpc needs. Usage: scripts/deps.sh [build|test]
#   build: the compiler toolchain and libraries (enough to build and run kfpc)
#   test:  build + what the test suite uses (clang/libFuzzer, a Docker engine, Podman, ninja, jq...)
set -eu
want=${1:-build}
BUILD="build-essential cmake pkg-config flex bison libjson-c-dev liblmdb-dev libpcre2-dev
       libssl-dev libcurl4-openssl-dev libmicrohttpd-dev libyaml-dev python3"
TEST="$BUILD clang libclang-rt-14-dev python3-jsonschema jq ninja-build time valgrind lmdb-utils
      docker.io podman runc busybox-static curl procps iproute2 uidmap"
case "$want" in
  build) pkgs=$BUILD ;;
  test) pkgs=$TEST ;;
  *) echo "usage: scripts/deps.sh [build|test]" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "scripts/deps.sh: installing:$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
