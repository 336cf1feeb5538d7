# Which Debian source packages snapctl links (sourced by build-deps.sh).
# A mirror may list a revision in its signed Sources index whose files it no longer (or does not
# yet) serve, so build-deps.sh tries every version the index lists within each series, newest
# first, and takes the first whose files download and verify; build/deps-*/VERSIONS records what
# was actually built. Bookworm ships mbedTLS 2.28 only (end of life); 3.6 LTS comes from trixie.
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SUITE=${DEBIAN_SUITE:-trixie}
# source package name, then the upstream series it must come from
DEPS="mbedtls:3.6. zlib:1.3 lz4:1.10. libzstd:1.5."
