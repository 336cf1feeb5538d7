# serve-nbd over header chains 1, 10 and 50 generations deep (each generation one 4-64 KiB write
# over the last, at a random offset, so a full read touches every build): cold and warm nbdcopy
# reads equal the expected image, and the server's threads do not grow with the depth -- every
# build's chunker shares the process's fetch pool (docs/chunker.md, "Fetch pool").  Open files
# may grow by one cache file per build read.  tests/bench/chain-depth.sh does the work; run it
# with --gens "1 10 50 100 200" for the table in docs/chunker.md.
. tests/integration/functions.sh
requires nbdcopy /usr/bin/python3
/usr/bin/python3 -c 'import nbd' 2>/dev/null || skip "requires python3-libnbd"
T=$(mktmpdir)
# Before the pool, generation 50 held ~820 threads (16 per build read, kept while the device is
# open); now at most the pool's 24 fetch threads, so a deeper chain may add at most that many over
# the shallowest one (whose reads start only a few).  Open files: one cache file per build read,
# and the store's connections.
# Under the sanitizers every generation's export costs seconds: 25 generations still hold ~400
# threads without the pool.
gens="1 10 50"; [ "${VARIANT:-release}" = release ] || gens="1 10 25"
for store in http file; do
    TMPDIR=$T SNAPCTL=$SNAPCTL "$TOP/tests/bench/chain-depth.sh" --gens "$gens" --size 16 --store $store \
        --max-fetch 24 --max-thread-growth 24 --max-fds-growth 100 || die "chain-depth over $store"
done
