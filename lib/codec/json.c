/* json.c -- a tiny streaming JSON writer. */
#include "codec/json.h"

#include <string.h>

void json_init(struct json *j, FILE *f)
{
    memset(j, 0, sizeof *j);
    j->f = f;
}

static void json_sep(struct json *j)
{
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->need_comma[j->depth])
        fputc(',', j->f);
    j->need_comma[j->depth] = true;
}

static void json_open(struct json *j, int c)
{
    json_sep(j);
    fputc(c, j->f);
    if (j->depth < 31)
        j->depth++;
    j->need_comma[j->depth] = false;
}

static void json_close(struct json *j, int c)
{
    if (j->depth > 0)
        j->depth--;
    fputc(c, j->f);
}

void json_obj_begin(struct json *j) { json_open(j, '{'); }
void json_obj_end(struct json *j) { json_close(j, '}'); }
void json_arr_begin(struct json *j) { json_open(j, '['); }
void json_arr_end(struct json *j) { json_close(j, ']'); }

static void json_quoted(struct json *j, const char *s, size_t n)
{
    fputc('"', j->f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"': fputs("\\\"", j->f); break;
        case '\\': fputs("\\\\", j->f); break;
        case '\n': fputs("\\n", j->f); break;
        case '\r': fputs("\\r", j->f); break;
        case '\t': fputs("\\t", j->f); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(j->f, "\\u%04x", c);
            else
                fputc(c, j->f);
        }
    }
    fputc('"', j->f);
}

void json_key(struct json *j, const char *k)
{
    json_sep(j);
    json_quoted(j, k, strlen(k));
    fputc(':', j->f);
    j->after_key = true;
}

void json_strn(struct json *j, const char *s, size_t n)
{
    json_sep(j);
    json_quoted(j, s, n);
}

void json_str(struct json *j, const char *s)
{
    if (!s) {
        json_null(j);
        return;
    }
    json_strn(j, s, strlen(s));
}

void json_u64(struct json *j, uint64_t v)
{
    json_sep(j);
    fprintf(j->f, "%llu", (unsigned long long)v);
}

void json_i64(struct json *j, int64_t v)
{
    json_sep(j);
    fprintf(j->f, "%lld", (long long)v);
}

void json_double(struct json *j, double v)
{
    json_sep(j);
    if (v != v || v > 1e308 || v < -1e308)
        fputs("null", j->f);
    else
        fprintf(j->f, "%.6g", v);
}

void json_bool(struct json *j, bool v)
{
    json_sep(j);
    fputs(v ? "true" : "false", j->f);
}

void json_null(struct json *j)
{
    json_sep(j);
    fputs("null", j->f);
}

void json_finish(struct json *j)
{
    fputc('\n', j->f);
    fflush(j->f);
}

void json_kv_u64(struct json *j, const char *k, uint64_t v)
{
    json_key(j, k);
    json_u64(j, v);
}

void json_kv_str(struct json *j, const char *k, const char *v)
{
    json_key(j, k);
    json_str(j, v);
}

void json_kv_bool(struct json *j, const char *k, bool v)
{
    json_key(j, k);
    json_bool(j, v);
}
