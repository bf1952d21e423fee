#!/bin/sh
# Builds the NNG that skc links when the system's NNG lacks the fixes skc
# needs: Debian's own nng 1.5.2 source package (with Debian's patches),
# plus skc's patch (nng-1.5.2-skc.patch beside this file), as a static,
# position-independent library with TLS (mbedTLS) and hidden symbols.
#
#   build.sh WORKDIR PREFIX
#
# The source comes from `apt-get source nng`, through a private sources list
# holding deb-src twins of this machine's own configured deb entries, so
# the machine's apt configuration is never touched.  SKC_NNG_DSC=path/to.dsc
# uses an already downloaded source package instead (offline builds).
set -eu

WORK=$1
PREFIX=$2
HERE=$(cd "$(dirname "$0")" && pwd)
PATCH=$HERE/nng-1.5.2-skc.patch
WANT=1.5.2

die() {
    echo "skc: cannot build the patched NNG: $*" >&2
    echo "skc: (configure with -DSKC_SYSTEM_NNG=ON to build against the" \
        "system NNG anyway; NNG 1.5.2's close wedge L1 is then open)" >&2
    exit 1
}

for tool in apt-get apt-config dpkg-source patch cmake; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "'$tool' not found (install dpkg-dev, patch, cmake: scripts/deps.sh)"
done

mkdir -p "$WORK"
cd "$WORK"

# 1. The source package.
if [ -n "${SKC_NNG_DSC:-}" ]; then
    DSC=$SKC_NNG_DSC
    [ -f "$DSC" ] || die "SKC_NNG_DSC=$DSC is not a file"
else
    APT=$WORK/apt
    rm -rf "$APT"
    mkdir -p "$APT/parts" "$APT/lists/partial" "$APT/cache/archives/partial"
    : >"$APT/empty.list"
    # deb-src twins of the configured deb entries, one-line and deb822.
    eval "$(apt-config shell ETC Dir::Etc/d LIST Dir::Etc::sourcelist/f \
        PARTS Dir::Etc::sourceparts/d)"
    for f in "$LIST" "$PARTS"/*.list; do
        [ -f "$f" ] || continue
        sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' "$f"
    done >"$APT/parts/skc-src.list"
    for f in "$PARTS"/*.sources; do
        [ -f "$f" ] || continue
        awk 'BEGIN { RS = ""; ORS = "\n\n" }
             /(^|\n)Types:[^\n]*[[:space:]]deb([[:space:]]|$)/ ||
             /(^|\n)Types:[[:space:]]*deb([[:space:]]|$)/ {
                 sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f"
    done >"$APT/parts/skc-src.sources"
    [ -s "$APT/parts/skc-src.list" ] || [ -s "$APT/parts/skc-src.sources" ] ||
        die "no 'deb' entries in $LIST or $PARTS to derive deb-src entries from"
    set -- -o "Dir::Etc::sourcelist=$APT/empty.list" \
        -o "Dir::Etc::sourceparts=$APT/parts" \
        -o "Dir::State::Lists=$APT/lists" \
        -o "Dir::Cache=$APT/cache" -o "Debug::NoLocking=1"
    echo "skc: fetching Debian's nng source package (apt-get source nng)"
    apt-get "$@" -qq update >"$APT/update.log" 2>&1 ||
        { cat "$APT/update.log" >&2; die "apt-get update of the deb-src lists failed"; }
    rm -f nng_*.dsc nng_*.tar.* nng_*.diff.gz
    apt-get "$@" -qq source --download-only nng >"$APT/source.log" 2>&1 ||
        { cat "$APT/source.log" >&2; die "apt-get source nng failed"; }
    DSC=$(ls nng_*.dsc 2>/dev/null | head -n 1)
    [ -n "$DSC" ] || die "apt-get source nng left no .dsc in $WORK"
fi

# 2. Unpack (Debian's patches applied), check the version, apply skc's.
rm -rf src
dpkg-source --no-check -x "$DSC" src >unpack.log 2>&1 ||
    { cat unpack.log >&2; die "dpkg-source -x $DSC failed"; }
VER=$(sed -n 's/^#define NNG_\(MAJOR\|MINOR\|PATCH\)_VERSION \([0-9]*\).*/\2/p' \
    src/include/nng/nng.h | paste -sd.)
[ "$VER" = "$WANT" ] ||
    die "Debian's source package is NNG $VER; skc's patch is for $WANT"
patch -d src -p1 --forward --quiet <"$PATCH" || die "$PATCH does not apply"

# 3. Build and install into PREFIX.
rm -rf build "$PREFIX"
cmake -S src -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" -DCMAKE_INSTALL_LIBDIR=lib \
    -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DCMAKE_C_FLAGS="-fvisibility=hidden" \
    -DNNG_ENABLE_TLS=ON -DNNG_TESTS=OFF -DNNG_TOOLS=OFF \
    -DNNG_ENABLE_NNGCAT=OFF >configure.log 2>&1 ||
    { tail -n 30 configure.log >&2; die "configuring NNG failed"; }
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >build.log 2>&1 ||
    { tail -n 30 build.log >&2; die "building NNG failed"; }
cmake --install build >install.log 2>&1 ||
    { tail -n 30 install.log >&2; die "installing NNG failed"; }
echo "skc: built NNG $VER ($(basename "$DSC" .dsc)) with skc's patch in $PREFIX"
