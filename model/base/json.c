/* json: recursive-descent parser (depth-bounded) and an escaping writer. See json.h. */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define JSON_MAX_DEPTH 64

typedef struct {
    const char *s;
    size_t len, pos;
    char *err;
    size_t errlen;
} parser;

static void fail(parser *p, const char *what) {
    if (p->err && p->errlen && !p->err[0])
        snprintf(p->err, p->errlen, "json: %s at byte %zu", what, p->pos);
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static json_value *new_value(json_type t) {
    json_value *v = calloc(1, sizeof *v);
    if (v) v->type = t;
    return v;
}

void json_free(json_value *v) {
    if (!v) return;
    if (v->type == JSON_ARRAY || v->type == JSON_OBJECT) {
        for (size_t i = 0; i < v->len; i++) {
            json_free(v->items[i]);
            if (v->keys) free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
    }
    free(v->str);
    free(v);
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(parser *p, unsigned *out) {
    if (p->len - p->pos < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->s[p->pos + i]);
        if (h < 0) return -1;
        v = v * 16 + (unsigned)h;
    }
    p->pos += 4;
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string starting at the opening quote; returns a malloc'd buffer (NUL-terminated). */
static char *parse_string_raw(parser *p, size_t *out_len) {
    p->pos++; /* opening quote */
    /* Decoded text is never longer than the escaped text. */
    size_t start = p->pos, end = start;
    while (end < p->len && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->len) { fail(p, "unterminated string"); return NULL; }
    char *out = malloc(end - start + 1);
    if (!out) { fail(p, "out of memory"); return NULL; }
    size_t n = 0;
    while (p->pos < p->len) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') { p->pos++; out[n] = 0; *out_len = n; return out; }
        if (c < 0x20) { fail(p, "control character in string"); break; }
        if (c != '\\') { out[n++] = (char)c; p->pos++; continue; }
        p->pos++;
        if (p->pos >= p->len) { fail(p, "bad escape"); break; }
        char e = p->s[p->pos++];
        switch (e) {
        case '"': out[n++] = '"'; break;
        case '\\': out[n++] = '\\'; break;
        case '/': out[n++] = '/'; break;
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (read_hex4(p, &cp)) { fail(p, "bad \\u escape"); goto bad; }
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (p->len - p->pos >= 6 && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
                    p->pos += 2;
                    if (read_hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) { fail(p, "bad surrogate pair"); goto bad; }
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                cp = 0xFFFD;
            }
            /* \uXXXX is 6 bytes of input and at most 4 of output (a pair is 12 -> 4). */
            n += put_utf8(out + n, cp);
            break;
        }
        default: fail(p, "bad escape"); goto bad;
        }
    }
bad:
    free(out);
    return NULL;
}

static json_value *parse_value(parser *p, int depth);

static json_value *parse_number(parser *p) {
    size_t start = p->pos;
    int integral = 1;
    if (p->pos < p->len && p->s[p->pos] == '-') p->pos++;
    if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9') { fail(p, "bad number"); return NULL; }
    if (p->s[p->pos] == '0') p->pos++;
    else while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    if (p->pos < p->len && p->s[p->pos] == '.') {
        integral = 0;
        p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9') { fail(p, "bad number"); return NULL; }
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integral = 0;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9') { fail(p, "bad number"); return NULL; }
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    }
    char tmp[64];
    size_t n = p->pos - start;
    if (n >= sizeof tmp) { fail(p, "number too long"); return NULL; }
    memcpy(tmp, p->s + start, n);
    tmp[n] = 0;
    json_value *v = new_value(JSON_NUMBER);
    if (!v) { fail(p, "out of memory"); return NULL; }
    v->number = strtod(tmp, NULL);
    if (integral) {
        errno = 0;
        long long ll = strtoll(tmp, NULL, 10);
        if (errno == 0) { v->integer = ll; v->is_integer = 1; }
    }
    return v;
}

static int push(json_value *c, json_value *item, char *key, size_t *cap) {
    if (c->len == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        json_value **ni = realloc(c->items, nc * sizeof *ni);
        if (!ni) return -1;
        c->items = ni;
        if (c->type == JSON_OBJECT) {
            char **nk = realloc(c->keys, nc * sizeof *nk);
            if (!nk) return -1;
            c->keys = nk;
        }
        *cap = nc;
    }
    c->items[c->len] = item;
    if (c->type == JSON_OBJECT) c->keys[c->len] = key;
    c->len++;
    return 0;
}

static json_value *parse_container(parser *p, int depth, int is_object) {
    json_value *c = new_value(is_object ? JSON_OBJECT : JSON_ARRAY);
    size_t cap = 0;
    if (!c) { fail(p, "out of memory"); return NULL; }
    p->pos++; /* [ or { */
    skip_ws(p);
    char close = is_object ? '}' : ']';
    if (p->pos < p->len && p->s[p->pos] == close) { p->pos++; return c; }
    for (;;) {
        char *key = NULL;
        skip_ws(p);
        if (is_object) {
            size_t klen;
            if (p->pos >= p->len || p->s[p->pos] != '"') { fail(p, "expected object key"); goto bad; }
            if (!(key = parse_string_raw(p, &klen))) goto bad;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') { free(key); fail(p, "expected ':'"); goto bad; }
            p->pos++;
        }
        json_value *item = parse_value(p, depth + 1);
        if (!item) { free(key); goto bad; }
        if (push(c, item, key, &cap)) { json_free(item); free(key); fail(p, "out of memory"); goto bad; }
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') { p->pos++; continue; }
        if (p->pos < p->len && p->s[p->pos] == close) { p->pos++; return c; }
        fail(p, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
        goto bad;
    }
bad:
    json_free(c);
    return NULL;
}

static int match_word(parser *p, const char *w) {
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0) return 0;
    p->pos += n;
    return 1;
}

static json_value *parse_value(parser *p, int depth) {
    if (depth > JSON_MAX_DEPTH) { fail(p, "nesting too deep"); return NULL; }
    skip_ws(p);
    if (p->pos >= p->len) { fail(p, "unexpected end of input"); return NULL; }
    char c = p->s[p->pos];
    json_value *v;
    switch (c) {
    case '{': return parse_container(p, depth, 1);
    case '[': return parse_container(p, depth, 0);
    case '"': {
        size_t n;
        char *s = parse_string_raw(p, &n);
        if (!s) return NULL;
        if (!(v = new_value(JSON_STRING))) { free(s); fail(p, "out of memory"); return NULL; }
        v->str = s;
        v->len = n;
        return v;
    }
    case 't': case 'f': case 'n':
        if (match_word(p, "true") || match_word(p, "false")) {
            if (!(v = new_value(JSON_BOOL))) { fail(p, "out of memory"); return NULL; }
            v->boolean = (c == 't');
            return v;
        }
        if (match_word(p, "null")) {
            if (!(v = new_value(JSON_NULL))) fail(p, "out of memory");
            return v;
        }
        fail(p, "unexpected word");
        return NULL;
    default:
        return parse_number(p);
    }
}

json_value *json_parse(const char *text, size_t len, char *err, size_t errlen) {
    parser p = {text, len, 0, err, errlen};
    if (err && errlen) err[0] = 0;
    json_value *v = parse_value(&p, 0);
    if (!v) return NULL;
    skip_ws(&p);
    if (p.pos != p.len) {
        fail(&p, "trailing characters");
        json_free(v);
        return NULL;
    }
    return v;
}

const json_value *json_get(const json_value *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT) return NULL;
    for (size_t i = 0; i < obj->len; i++)
        if (strcmp(obj->keys[i], key) == 0) return obj->items[i];
    return NULL;
}

int json_get_string(const json_value *obj, const char *key, const char **out, size_t *len) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type != JSON_STRING) return -1;
    *out = v->str;
    if (len) *len = v->len;
    return 0;
}

int json_get_int(const json_value *obj, const char *key, int64_t *out) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type != JSON_NUMBER || !v->is_integer) return -1;
    *out = v->integer;
    return 0;
}

int json_get_number(const json_value *obj, const char *key, double *out) {
    const json_value *v = json_get(obj, key);
    if (!v || v->type != JSON_NUMBER) return -1;
    *out = v->number;
    return 0;
}

/* ---- writer ---------------------------------------------------------------------------- */

void json_buf_free(json_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int reserve(json_buf *b, size_t extra) {
    if (b->failed) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 256;
    while (nc < b->len + extra + 1) nc *= 2;
    char *nd = realloc(b->data, nc);
    if (!nd) { b->failed = 1; return -1; }
    b->data = nd;
    b->cap = nc;
    return 0;
}

int json_buf_append(json_buf *b, const char *s, size_t n) {
    if (reserve(b, n)) return -1;
    if (n) memcpy(b->data + b->len, s, n); /* s may be NULL when n == 0: memcpy(_, NULL, 0) is undefined */
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

int json_buf_printf(json_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || reserve(b, (size_t)n)) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t need;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { need = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { need = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { need = 4; cp = c & 0x07; }
    else return 0;
    if (n < need) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((need == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (need == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return need;
}

int json_buf_string(json_buf *b, const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    if (json_buf_append(b, "\"", 1)) return -1;
    size_t i = 0;
    while (i < n) {
        unsigned char c = u[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\'; esc[1] = (char)c;
            if (json_buf_append(b, esc, 2)) return -1;
            i++;
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            if (json_buf_append(b, esc, 6)) return -1;
            i++;
        } else {
            size_t k = utf8_seq(u + i, n - i);
            if (k == 0) {
                if (json_buf_append(b, "\xEF\xBF\xBD", 3)) return -1;
                i++;
            } else {
                if (json_buf_append(b, s + i, k)) return -1;
                i += k;
            }
        }
    }
    return json_buf_append(b, "\"", 1);
}

int json_buf_float(json_buf *b, float f) {
    if (!isfinite(f)) return json_buf_append(b, "null", 4);
    return json_buf_printf(b, "%.9g", (double)f);
}
