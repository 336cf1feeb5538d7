/* json.h -- a tiny streaming JSON writer for --json output.
 *
 *   struct json j; json_init(&j, stdout);
 *   json_obj_begin(&j); json_key(&j, "size"); json_u64(&j, 42); json_obj_end(&j);
 *   json_finish(&j);  // newline
 * Commas are placed automatically; strings are escaped (control characters, quotes, UTF-8 kept).
 */
#ifndef SNAP_JSON_H
#define SNAP_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct json {
    FILE *f;
    int depth;
    bool need_comma[32];
    bool after_key;
};

void json_init(struct json *j, FILE *f);
void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
void json_key(struct json *j, const char *k);
void json_str(struct json *j, const char *s);
void json_strn(struct json *j, const char *s, size_t n);
void json_u64(struct json *j, uint64_t v);
void json_i64(struct json *j, int64_t v);
void json_double(struct json *j, double v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
void json_finish(struct json *j);
/* A member of the object being written: json_key(k) and the value. */
void json_kv_u64(struct json *j, const char *k, uint64_t v);
void json_kv_str(struct json *j, const char *k, const char *v);
void json_kv_bool(struct json *j, const char *k, bool v);

#endif
