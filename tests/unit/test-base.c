/* Unit tests of lib/base: errors, sizes, UUIDs, hex, JSON, the allocation counter. */
#include "test.h"

#include "base/buf.h"
#include "base/bytes.h"
#include "base/err.h"
#include "base/io.h"
#include "codec/json.h"
#include "base/mem.h"
#include "base/util.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

TEST(base_err_messages_and_exit_codes)
{
    for (int e = 0; e < SNAP_ERR__COUNT; e++)
        CHECK(strcmp(snap_strerror(e), "unknown error") != 0);
    CHECK_STR(snap_strerror(SNAP_ERR__COUNT), "unknown error");
    CHECK_EQ(snap_exit_code(SNAP_OK), 0);
    CHECK_EQ(snap_exit_code(SNAP_EUSAGE), 2);
    CHECK_EQ(snap_exit_code(SNAP_EFORMAT), 3);
    CHECK_EQ(snap_exit_code(SNAP_EHASH), 6);
    CHECK_EQ(snap_fail(SNAP_EFORMAT, "field %s", "x"), SNAP_EFORMAT);
    CHECK_STR(snap_errmsg(SNAP_EFORMAT), "field x");
    snap_fail_ctx(SNAP_EFORMAT, "file %d", 7);
    CHECK_STR(snap_errmsg(SNAP_EFORMAT), "file 7: field x");
    snap_errclear();
    CHECK_STR(snap_errmsg(SNAP_EFORMAT), "malformed data");
}

TEST(base_parse_size)
{
    uint64_t v;
    CHECK_EQ(snap_parse_size("4096", &v, "s"), 0); CHECK_EQ(v, 4096);
    CHECK_EQ(snap_parse_size("4K", &v, "s"), 0); CHECK_EQ(v, 4096);
    CHECK_EQ(snap_parse_size("50MiB", &v, "s"), 0); CHECK_EQ(v, 50u << 20);
    CHECK_EQ(snap_parse_size("8G", &v, "s"), 0); CHECK_EQ(v, 8ull << 30);
    CHECK_EQ(snap_parse_size("2MB", &v, "s"), 0); CHECK_EQ(v, 2000000);
    CHECK_ERR(snap_parse_size("", &v, "--part-size"), SNAP_EUSAGE, "--part-size");
    CHECK_ERR(snap_parse_size("-1", &v, "s"), SNAP_EUSAGE, "not a size");
    CHECK_ERR(snap_parse_size("5X", &v, "s"), SNAP_EUSAGE, "suffix");
    CHECK_ERR(snap_parse_size("99999999999T", &v, "s"), SNAP_EUSAGE, "too large");
    CHECK_ERR(snap_parse_size("99999999999999999999", &v, "s"), SNAP_EUSAGE, "too large");
}

TEST(base_uuid_roundtrip)
{
    snap_uuid u;
    char s[37];
    CHECK_EQ(snap_uuid_parse("11111111-2222-3333-4444-555555555555", &u), 0);
    CHECK_EQ(u.b[0], 0x11); CHECK_EQ(u.b[4], 0x22); CHECK_EQ(u.b[15], 0x55);
    snap_uuid_format(&u, s);
    CHECK_STR(s, "11111111-2222-3333-4444-555555555555");
    CHECK_EQ(snap_uuid_parse("ABCDEF01-2222-3333-4444-555555555555", &u), 0);
    snap_uuid_format(&u, s);
    CHECK_STR(s, "abcdef01-2222-3333-4444-555555555555");
    CHECK_ERR(snap_uuid_parse("11111111-2222-3333-4444-55555555555", &u), SNAP_EFORMAT, "UUID");
    CHECK_ERR(snap_uuid_parse("11111111-2222-3333-4444-5555555555555", &u), SNAP_EFORMAT, "UUID");
    CHECK_ERR(snap_uuid_parse("1111111g-2222-3333-4444-555555555555", &u), SNAP_EFORMAT, "UUID");
    CHECK_ERR(snap_uuid_parse("../../etc/passwd", &u), SNAP_EFORMAT, "UUID");
    CHECK_EQ(snap_uuid_random(&u), 0);
    CHECK_EQ(u.b[6] >> 4, 4);
    CHECK(!snap_uuid_is_zero(&u));
}

TEST(base_hex)
{
    uint8_t b[3] = {0x00, 0xab, 0xff}, o[3];
    char s[7];
    snap_hex(b, 3, s);
    CHECK_STR(s, "00abff");
    CHECK_EQ(snap_unhex("00ABff", o, 3), 0);
    CHECK_MEM(o, b, 3);
    CHECK_ERR(snap_unhex("00abf", o, 3), SNAP_EFORMAT, "hex");
    CHECK_ERR(snap_unhex("00abffee", o, 3), SNAP_EFORMAT, "hex");
}

TEST(base_bytes)
{
    uint8_t p[8];
    put_le64(p, 0x0102030405060708ull);
    CHECK_EQ(p[0], 8);
    CHECK_EQ(get_le64(p), 0x0102030405060708ull);
    put_be32(p, 0x25609513);
    CHECK_EQ(p[0], 0x25);
    CHECK_EQ(get_be32(p), 0x25609513);
}

TEST(base_json_escapes)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    struct json j;
    json_init(&j, f);
    json_obj_begin(&j);
    json_key(&j, "a");
    json_str(&j, "q\"\n\x01");
    json_key(&j, "l");
    json_arr_begin(&j);
    json_u64(&j, 1);
    json_i64(&j, -2);
    json_bool(&j, true);
    json_arr_end(&j);
    json_obj_end(&j);
    json_finish(&j);
    fclose(f);
    CHECK_STR(buf, "{\"a\":\"q\\\"\\n\\u0001\",\"l\":[1,-2,true]}\n");
    free(buf);
}

TEST(base_alloc_counter_and_fault_injection)
{
    uint64_t before = snap_alloc_count();
    void *p = snap_malloc(10);
    CHECK(p);
    CHECK_EQ(snap_alloc_count(), before + 1);
    snap_free(p);
    snap_mem_fail_after(1);
    void *a = snap_malloc(1), *b = snap_malloc(1);
    snap_mem_fail_after(-1);
    CHECK(a != NULL);
    CHECK(b == NULL);
    snap_free(a);
    p = snap_malloc(1);
    CHECK(p != NULL);
    snap_free(p);
}

TEST(base_atomic_file)
{
    char path[512];
    snprintf(path, sizeof path, "%s/atomic.txt", test_tmpdir());
    CHECK_EQ(snap_write_file_atomic(path, "hello", 5, 0644), 0);
    uint8_t *buf;
    size_t n;
    CHECK_EQ(snap_read_file(path, 100, &buf, &n), 0);
    CHECK_EQ(n, 5);
    CHECK_MEM(buf, "hello", 5);
    snap_free(buf);
    CHECK_ERR(snap_read_file(path, 4, &buf, &n), SNAP_ETOOBIG, "limit");
    snprintf(path, sizeof path, "%s/nope", test_tmpdir());
    CHECK_ERR(snap_read_file(path, 4, &buf, &n), SNAP_ENOTFOUND, "nope");
}

TEST(base_buf_grows_to_its_limit_and_no_further)
{
    struct snap_buf b;
    snap_buf_init(&b, 4, 20);
    CHECK(b.data == NULL);
    CHECK_EQ(snap_buf_append(&b, "abc", 3), 0);
    CHECK_EQ(b.cap, 4);
    CHECK_EQ(snap_buf_append(&b, "defgh", 5), 0);
    CHECK_EQ(b.cap, 8);
    CHECK_EQ(snap_buf_reserve(&b, 17), 0);
    CHECK_EQ(b.cap, 20); /* doubling stops at the limit */
    CHECK_EQ(b.len, 8);
    CHECK_MEM(b.data, "abcdefgh", 8);
    CHECK_ERR(snap_buf_reserve(&b, 21), SNAP_ETOOBIG, "limit of 20");
    CHECK_ERR(snap_buf_append(&b, "0123456789abc", 13), SNAP_ETOOBIG, "limit of 20");
    CHECK_EQ(b.len, 8);
    CHECK_EQ(b.cap, 20);
    CHECK_EQ(snap_buf_append(&b, "0123456789ab", 12), 0);
    CHECK_EQ(b.len, 20);
    snap_buf_free(&b);
    CHECK(b.data == NULL);
    CHECK_EQ(b.cap, 0);
}

TEST(base_buf_reuse_allocates_nothing)
{
    struct snap_buf b;
    snap_buf_init(&b, 16, 1024);
    CHECK_EQ(snap_buf_reserve(&b, 100), 0);
    uint64_t before = snap_alloc_count();
    for (int i = 0; i < 50; i++) {
        snap_buf_reset(&b);
        CHECK_EQ(snap_buf_append(&b, "0123456789", 10), 0);
        CHECK_EQ(snap_buf_reserve(&b, 128), 0);
    }
    CHECK_EQ(snap_alloc_count(), before);
    uint8_t *p = snap_buf_take(&b);
    CHECK(p != NULL);
    CHECK(b.data == NULL);
    CHECK_EQ(b.len, 0);
    snap_free(p);
    snap_mem_fail_after(0);
    int err = snap_buf_reserve(&b, 10);
    snap_mem_fail_after(-1);
    CHECK_EQ(err, SNAP_ENOMEM);
    CHECK(b.data == NULL);
    CHECK_EQ(b.cap, 0);
}

TEST(base_open_regular_refuses_other_files)
{
    char path[512];
    snprintf(path, sizeof path, "%s/regular.txt", test_tmpdir());
    CHECK_EQ(snap_write_file_atomic(path, "hello", 5, 0644), 0);
    int fd = -1;
    uint64_t size = 0;
    CHECK_EQ(snap_open_regular(path, O_RDONLY, &fd, &size), 0);
    CHECK(fd >= 0);
    CHECK_EQ(size, 5);
    close(fd);
    fd = -1;
    CHECK_ERR(snap_open_regular(test_tmpdir(), O_RDONLY, &fd, &size), SNAP_EUSAGE, "not a regular file");
    CHECK_EQ(fd, -1);
    snprintf(path, sizeof path, "%s/absent", test_tmpdir());
    CHECK_ERR(snap_open_regular(path, O_RDONLY, &fd, &size), SNAP_ENOTFOUND, "absent");
}

TEST(base_punch_and_zero_keep_size_or_say_unsupported)
{
    char path[512];
    uint8_t data[3 * 4096], back[sizeof data];
    memset(data, 0xab, sizeof data);
    snprintf(path, sizeof path, "%s/holes.bin", test_tmpdir());
    CHECK_EQ(snap_write_file_atomic(path, data, sizeof data, 0644), 0);
    int fd;
    uint64_t size;
    CHECK_EQ(snap_open_regular(path, O_RDWR, &fd, &size), 0);
    int e = snap_punch_hole(fd, 0, 4096, path);
    CHECK(e == 0 || e == SNAP_ENOTSUP);
    if (e == 0)
        memset(data, 0, 4096);
    e = snap_zero_range(fd, 8192, 4096, path);
    CHECK(e == 0 || e == SNAP_ENOTSUP);
    if (e == 0)
        memset(data + 8192, 0, 4096);
    CHECK_EQ(snap_pread_full(fd, back, sizeof back, 0, path), 0);
    CHECK_MEM(back, data, sizeof data);
    struct stat st;
    CHECK_EQ(fstat(fd, &st), 0);
    CHECK_EQ((uint64_t)st.st_size, sizeof data);
    close(fd);
    CHECK_ERR(snap_punch_hole(-1, 0, 4096, "nofd"), SNAP_EIO, "nofd: punch hole");
}
