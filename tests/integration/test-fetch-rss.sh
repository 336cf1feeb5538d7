# Peak RSS of a 4 GiB fetch stays under 16 MiB: memory does not grow with the asset's size.
. tests/integration/functions.sh
[ "$VARIANT" = release ] || skip "RSS is measured on the release build (sanitizers inflate it)"
[ -x /usr/bin/time ] || skip "requires /usr/bin/time (package time)"
T=$(mktmpdir)
free_kib=$(df -Pk "$T" | awk 'NR==2 {print $4}')
[ "$free_kib" -gt $((5 * 1024 * 1024)) ] || skip "needs 5 GiB free in ${TMPDIR:-/tmp} for the 4 GiB fetch (has $((free_kib / 1024)) MiB)"
mkdir -p "$T/src" "$T/cache"
truncate -s 4G "$T/src/zeros.img"     # sparse: a 4 GiB source that costs no disk
H=$(head -c 4G /dev/zero | sha256sum | cut -c1-64)
/usr/bin/time -f '%M' -o "$T/rss" "$SNAPCTL" fetch "file://$T/src/zeros.img" --sha256 "$H" --cache-dir "$T/cache" >/dev/null
kib=$(cat "$T/rss")
echo "peak RSS of a 4 GiB fetch: $kib KiB"
[ "$(stat -c %s "$T/cache/$H")" -eq 4294967296 ] || die "size"
[ "$kib" -lt 16384 ] || die "peak RSS $kib KiB is over 16 MiB"
echo ok
