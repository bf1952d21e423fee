#!/bin/sh
# Installs the Debian packages skc needs to build and test, if missing.
# Runs apt-get as root, or through sudo; does nothing when all are present.
set -eu

# NNG itself is built from Debian's source package (cmake/nng/build.sh):
# dpkg-dev and patch unpack and patch it, libmbedtls-dev is its TLS engine
# (and the cluster cookie's HMAC, lib/auth.c); openssl makes the TLS
# tests' certificates.  libcurl4-openssl-dev and libcjson-dev: the etcd
# map source (optional at build time); etcd-server and etcd-client: its
# tests and make demo-etcd.
PKGS="build-essential cmake pkg-config dpkg-dev patch xz-utils libmbedtls-dev
libcmocka-dev liblua5.4-dev lua5.4 libmsgpack-dev python3 python3-msgpack
valgrind clang clang-format iproute2 nftables procps python3-pip python3-setuptools
luarocks libcurl4-openssl-dev libcjson-dev etcd-server etcd-client openssl"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "skc: installing missing Debian packages:$missing"
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "skc: need root or sudo to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
