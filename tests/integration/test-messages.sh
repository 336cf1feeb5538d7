# Messages for people (issue 12, item 7): each mistake below exits with its documented code and
# says once what was wrong and what to do -- and not the wrong thing it used to say.
#   option mistakes (one line naming the option, for every applet and benchmark), --listen
#   addresses (no "another server" hint unless the port is taken), --header blaming --store,
#   --header and --store as plain paths (served and read back with nbdcopy), peer frob,
#   URLs written wrong ('s3:/x', 'http://[::1'), fetch --max-size on a cache hit, APPLET
#   --version through the symlink, the unix socket file removed at SIGTERM, upload --build of
#   a directory that is not a build.
. tests/integration/functions.sh
. tests/integration/functions-nbd.sh
requires nbdcopy python3 cmp
T=$(mktmpdir)

# has TEXT: the last command's stderr holds TEXT; hasnt TEXT: it does not.
has() { grep -qF -- "$1" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "expected '$1' in the message"; }; }
hasnt() { ! grep -qF -- "$1" "$LAST_ERR" || { cat "$LAST_ERR" >&2; die "'$1' should not be in the message"; }; }
# once TEXT: TEXT is in exactly one line of it.
once() {
    n=$(grep -cF -- "$1" "$LAST_ERR" || true)
    [ "$n" -eq 1 ] || { cat "$LAST_ERR" >&2; die "'$1' is in $n lines of the message, expected 1"; }
}

# --- options: one message naming the option, then the --help line ---------------------------
expect_exit 2 "$SNAPCTL" serve-nbd --file
has "option '--file' needs a value"
hasnt "unknown option"
hasnt "requires an argument"
[ "$(wc -l <"$LAST_ERR")" -eq 2 ] || { cat "$LAST_ERR" >&2; die "serve-nbd --file: two lines expected"; }
has "Try 'snapctl serve-nbd --help'."

expect_exit 2 "$SNAPCTL" fetch --bogus
once "bogus"
has "unknown option '--bogus'"
hasnt "unrecognized"

expect_exit 2 "$SNAPCTL" serve-nbd -l
has "option '-l' needs a value"
expect_exit 2 "$SNAPCTL" serve-nbd --file --read-only
has "option '--file' needs a value, but the word after it is the option '--read-only'"
expect_exit 2 "$SNAPCTL" upload --json=1 a file:///b
has "option '--json' takes no value"
expect_exit 2 "$SNAPCTL" serve-nbd --fi x
has "option '--fi' is ambiguous"
has "--file, --file-name"
expect_exit 2 "$SNAPCTL" inspect-header --lookup
has "option '--lookup' needs a value"
hasnt "incomplete"
# A benchmark's options are its own: the message and its --help line name it.
expect_exit 2 "$SNAPCTL" bench sha256 --bogus
has "snapctl bench sha256: unknown option '--bogus'"
has "Try 'snapctl bench sha256 --help'."
expect_exit 2 "$SNAPCTL" bench chunker --callers
has "option '--callers' needs a value"

# --- peer: an unknown subcommand is named, not answered with the whole usage ----------------
expect_exit 2 "$SNAPCTL" peer frob
has "unknown subcommand 'frob'"
has "peer serve"
hasnt "Usage:"

# --- --listen: the address's mistake, and the "another server" hint only for a taken port ---
F=$T/img
head -c 4194304 /dev/urandom >"$F"
expect_exit 2 "$SNAPCTL" serve-nbd --file "$F" -r -l bogus
has "'bogus': expected HOST:PORT"
hasnt "another server"
expect_exit 2 "$SNAPCTL" serve-nbd --file "$F" -r -l :99999
has "the port '99999' is not a number from 0 to 65535"
hasnt "another server"
hasnt "Unrecognized service"
expect_exit 2 "$SNAPCTL" peer serve --data-dir "$T" -l '[::1'
has "never closed"
hasnt "another server"
p=$(free_port)
rm -f "$T/pid1"
start_server "$T/pid1" "$SNAPCTL" serve-nbd --file "$F" -r -l "127.0.0.1:$p" --pid-file "$T/pid1"
held=$_spid
expect_exit 5 "$SNAPCTL" serve-nbd --file "$F" -r -l "127.0.0.1:$p"
has "the address is in use: is another server listening there?"
has "choose another address with --listen"
kill_pid "$held"

# --- URLs written wrong are named as URLs, not read as local files --------------------------
(cd "$T" && expect_exit 2 "$SNAPCTL" inspect-header s3:/x && has "'s3:/x' is a malformed URL" &&
    has "s3://bucket/key" && has "write ./s3:/x" && hasnt "No such file")
expect_exit 2 "$SNAPCTL" inspect-header 'http://[::1'
has "the '[' that starts the IPv6 address is never closed"
hasnt "does not name an object"
expect_exit 2 "$SNAPCTL" serve-nbd --object 'https://[::1/x'
has "never closed"

# --- fetch --max-size holds on a cache hit (exit 7, as uncached) ----------------------------
mkdir -p "$T/store" "$T/cache"
cp "$F" "$T/store/obj"
sum=$(sha256 "$F")
expect_exit 7 "$SNAPCTL" fetch "file://$T/store/obj" --sha256 "$sum" --cache-dir "$T/cache" --max-size 1M
"$SNAPCTL" fetch -q "file://$T/store/obj" --sha256 "$sum" --cache-dir "$T/cache" >/dev/null
[ -f "$T/cache/$sum" ] || die "the fetch without a limit did not cache the object"
expect_exit 7 "$SNAPCTL" fetch "file://$T/store/obj" --sha256 "$sum" --cache-dir "$T/cache" --max-size 1M
has "the cached file is 4194304 bytes, more than the limit of 1048576 bytes (--max-size)"
has "raise --max-size"

# --- APPLET --version through the applet's symlink ------------------------------------------
ln -s "$SNAPCTL" "$T/serve-nbd"
"$T/serve-nbd" --version | grep -Eq '^snapctl [0-9]+\.[0-9]+\.[0-9]+' || die "serve-nbd --version via the symlink"
"$SNAPCTL" fetch --version | grep -Eq '^snapctl [0-9]' || die "snapctl fetch --version"

# --- upload --build of a directory that is not a build: nothing was uploaded ----------------
expect_exit 2 "$SNAPCTL" upload --build "$T/store" "file://$T/store"
has "not a build directory"
hasnt "already uploaded"
mkdir "$T/11111111-2222-3333-4444-555555555555"
expect_exit 4 "$SNAPCTL" upload --build "$T/11111111-2222-3333-4444-555555555555" "file://$T/store"
has "no build files in it"
hasnt "already uploaded"

# --- --header: a missing store blames --header (not --store); plain paths are served --------
expect_exit 4 "$SNAPCTL" serve-nbd --header "file://$T/nonexistent/$(cat /proc/sys/kernel/random/uuid)/rootfs.ext4.header"
has "--header file://$T/nonexistent/"
hasnt "serve-nbd: --store"
hasnt "inspect-header --check"

# A base build made by serve-nbd --size over a unix socket; the socket file goes at SIGTERM.
mkdir "$T/out"
sock=$T/nbd.sock
rm -f "$T/pid"
start_server "$T/pid" "$SNAPCTL" serve-nbd --size 4M --export-diff "$T/out" -l "unix:$sock" --pid-file "$T/pid"
[ -S "$sock" ] || die "no socket file at $sock while serving"
nbdcopy "$F" "nbd+unix:///?socket=$sock"
kill -TERM "$_spid"
wait "$_spid" || die "serve-nbd --size exited $? at SIGTERM"
[ ! -e "$sock" ] || die "serve-nbd left its unix socket file $sock after SIGTERM"
B=$(ls "$T/out")
[ -f "$T/out/$B/rootfs.ext4.header" ] || die "no build exported to $T/out"

# Served by plain path (absolute, then relative to the current directory), read back equal.
for hdr in "$T/out/$B/rootfs.ext4.header" "out/$B/rootfs.ext4.header"; do
    rm -f "$T/pid" "$T/back"
    start_server "$T/pid" sh -c 'cd "$1" && shift && exec "$@"' sh "$T" \
        "$SNAPCTL" serve-nbd --header "$hdr" -r -l "unix:$sock" --pid-file "$T/pid"
    spid=$_spid
    nbdcopy "nbd+unix:///?socket=$sock" "$T/back"
    cmp "$F" "$T/back" || die "serve-nbd --header $hdr: the data read back differs"
    kill -TERM "$spid"
    wait "$spid" || die "serve-nbd --header $hdr exited $? at SIGTERM"
    [ ! -e "$sock" ] || die "serve-nbd --header left its unix socket file"
done
# --store as a plain path too.
rm -f "$T/pid"
start_server "$T/pid" expect_exit 0 "$SNAPCTL" serve-nbd --header "$T/out/$B/rootfs.ext4.header" \
    --store "$T/out" -r -l "unix:$sock" --oneshot --pid-file "$T/pid"
spid=$_spid
nbdcopy "nbd+unix:///?socket=$sock" "$T/back2"
wait "$spid" || die "serve-nbd --store PATH --oneshot failed"
cmp "$F" "$T/back2" || die "serve-nbd --store PATH: the data read back differs"
[ ! -e "$sock" ] || die "serve-nbd --oneshot left its unix socket file"
echo ok
