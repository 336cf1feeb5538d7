# Which Debian source packages snapctl links (sourced by build-deps.sh).
# The mirror keeps only the current revision of each package, so we take whatever trixie has
# and check the upstream series; build/deps-*/VERSIONS records what was actually built.
# Bookworm ships mbedTLS 2.28 only (end of life); 3.6 LTS comes from trixie.
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SUITE=${DEBIAN_SUITE:-trixie}
MBEDTLS_SERIES=3.6.
ZLIB_SERIES=1.3
LZ4_SERIES=1.10.
