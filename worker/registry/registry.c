/* registry: the Schema Registry client over one libcurl easy handle (kept-alive connections), its
 * failover and retries, and its caches. See registry.h for the API and the error classes. */
#include "registry.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define REGISTRY_MAX_ANSWER (16u << 20)   /* a schema answer larger than this is refused */

typedef struct {
    int32_t id;
    char *schema;
} registry_by_id;

typedef struct {
    char *subject, *schema;
    int32_t id;
    int version;      /* -1: not known (a registration's answer carries only the id) */
} registry_by_subject;

struct registry {
    const registry_opts *o;
    CURL *curl;
    struct curl_slist *headers;
    char *shown[8];          /* the URLs without their user info, for messages */
    int current;             /* the URL that answered last: asked first */
    char curl_err[CURL_ERROR_SIZE];
    char *answer;
    size_t answer_len, answer_cap;
    int answer_too_big;
    registry_by_id *ids;
    int n_ids, cap_ids;
    registry_by_subject *subjects;
    int n_subjects, cap_subjects;
    int64_t requests, hits;
};

static pthread_once_t registry_curl_once = PTHREAD_ONCE_INIT;
static CURLcode registry_curl_init_rc;
static void registry_curl_init(void) { registry_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t registry_on_data(char *p, size_t size, size_t n, void *opaque) {
    registry *r = opaque;
    size_t len = size * n;
    if (r->answer_len + len + 1 > REGISTRY_MAX_ANSWER) {
        r->answer_too_big = 1;
        return 0;   /* makes curl fail the transfer */
    }
    if (r->answer_len + len + 1 > r->answer_cap) {
        size_t c = r->answer_cap ? r->answer_cap : 4096;
        while (c < r->answer_len + len + 1) c *= 2;
        char *a = realloc(r->answer, c);
        if (!a) return 0;
        r->answer = a;
        r->answer_cap = c;
    }
    memcpy(r->answer + r->answer_len, p, len);
    r->answer_len += len;
    r->answer[r->answer_len] = 0;
    return len;
}

/* url without "user:password@" (a URL may carry the credentials: never show them). */
static char *registry_redact(const char *url) {
    const char *s = strstr(url, "://"), *host = s ? s + 3 : url;
    const char *at = strchr(host, '@'), *slash = strchr(host, '/');
    if (!at || (slash && slash < at)) return strdup(url);
    size_t pre = (size_t)(host - url);
    char *out = malloc(strlen(url) + 1);
    if (!out) return NULL;
    memcpy(out, url, pre);
    strcpy(out + pre, at + 1);
    return out;
}

int registry_new(const registry_opts *o, registry **out, char *err, size_t errlen) {
    *out = NULL;
    if (o->n_urls <= 0) return snprintf(err, errlen, "schema.registry.url is not set"), -1;
    pthread_once(&registry_curl_once, registry_curl_init);
    if (registry_curl_init_rc) {
        snprintf(err, errlen, "libcurl: %s", curl_easy_strerror(registry_curl_init_rc));
        return -1;
    }
    registry *r = calloc(1, sizeof *r);
    if (!r) return snprintf(err, errlen, "out of memory"), -1;
    r->o = o;
    for (int i = 0; i < o->n_urls; i++)
        if (!(r->shown[i] = registry_redact(o->urls[i]))) goto oom;
    if (!(r->curl = curl_easy_init())) goto oom;
    r->headers = curl_slist_append(NULL, "Accept: application/vnd.schemaregistry.v1+json, application/json");
    struct curl_slist *h2 = r->headers ? curl_slist_append(r->headers, "Content-Type: application/vnd.schemaregistry.v1+json") : NULL;
    if (!h2) goto oom;
    r->headers = h2;
    CURL *c = r->curl;
    int bad = 0;
    bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, registry_on_data) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, r) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->curl_err) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;   /* other threads, no SIGALRM */
    bad |= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)o->timeout_ms) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "ievo") != CURLE_OK;
    if (o->user_info) {
        bad |= curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC) != CURLE_OK;
        bad |= curl_easy_setopt(c, CURLOPT_USERPWD, o->user_info) != CURLE_OK;
    }
    if (o->ca_location) bad |= curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_location) != CURLE_OK;
    if (o->cert_location) bad |= curl_easy_setopt(c, CURLOPT_SSLCERT, o->cert_location) != CURLE_OK;
    if (o->key_location) bad |= curl_easy_setopt(c, CURLOPT_SSLKEY, o->key_location) != CURLE_OK;
    if (o->key_password) bad |= curl_easy_setopt(c, CURLOPT_KEYPASSWD, o->key_password) != CURLE_OK;
    if (!o->verify_host) bad |= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK;
    if (bad) {
        snprintf(err, errlen, "libcurl refused an option (this libcurl lacks a feature the settings ask for)");
        registry_free(r);
        return -1;
    }
    *out = r;
    return 0;
oom:
    registry_free(r);
    return snprintf(err, errlen, "out of memory"), -1;
}

void registry_free(registry *r) {
    if (!r) return;
    if (r->curl) curl_easy_cleanup(r->curl);
    curl_slist_free_all(r->headers);
    for (int i = 0; i < 8; i++) free(r->shown[i]);
    for (int i = 0; i < r->n_ids; i++) free(r->ids[i].schema);
    for (int i = 0; i < r->n_subjects; i++) free(r->subjects[i].subject), free(r->subjects[i].schema);
    free(r->ids);
    free(r->subjects);
    free(r->answer);
    free(r);
}

void registry_counts(const registry *r, int64_t *requests, int64_t *cache_hits) {
    *requests = r->requests;
    *cache_hits = r->hits;
}

static void registry_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {}
}

/* One request, with failover over the URLs and retries with backoff. On REGISTRY_OK an answer
 * below 500 arrived: its status in *status, its body in r->answer. */
static registry_status registry_exchange(registry *r, const char *method, const char *path, const char *body,
                                         long *status, char *err, size_t errlen) {
    const registry_opts *o = r->o;
    char last[512] = "";
    int backoff = o->backoff_ms;
    for (int attempt = 0; attempt <= o->retries; attempt++) {
        if (attempt) {
            LOG_W("registry", "%s %s: %s; retrying in %d ms (attempt %d of %d)", method, path, last, backoff,
                  attempt + 1, o->retries + 1);
            registry_sleep_ms(backoff);
            backoff = backoff * 2 > o->backoff_max_ms ? o->backoff_max_ms : backoff * 2;
        }
        for (int k = 0; k < o->n_urls; k++) {
            int u = (r->current + k) % o->n_urls;
            const char *base = o->urls[u];
            size_t bl = strlen(base);
            while (bl && base[bl - 1] == '/') bl--;
            char url[2048];
            if (snprintf(url, sizeof url, "%.*s%s", (int)bl, base, path) >= (int)sizeof url) {
                snprintf(err, errlen, "schema registry URL too long: %s%s", r->shown[u], path);
                return REGISTRY_REFUSED;
            }
            r->answer_len = 0;
            r->answer_too_big = 0;
            if (r->answer) r->answer[0] = 0;
            r->curl_err[0] = 0;
            curl_easy_setopt(r->curl, CURLOPT_URL, url);
            if (body) {
                curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
            } else {
                curl_easy_setopt(r->curl, CURLOPT_HTTPGET, 1L);
            }
            CURLcode cc = curl_easy_perform(r->curl);
            r->requests++;
            if (cc == CURLE_OK) {
                curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, status);
                if (*status < 500) {
                    r->current = u;
                    return REGISTRY_OK;
                }
                snprintf(last, sizeof last, "%s answered HTTP %ld", r->shown[u], *status);
            } else if (r->answer_too_big) {
                snprintf(err, errlen, "%s %s: %s answered more than %u bytes", method, path, r->shown[u],
                         REGISTRY_MAX_ANSWER);
                return REGISTRY_REFUSED;
            } else {
                snprintf(last, sizeof last, "%s: %s", r->shown[u], r->curl_err[0] ? r->curl_err : curl_easy_strerror(cc));
            }
        }
    }
    snprintf(err, errlen, "schema registry unavailable: %s %s failed at every URL (%d attempt%s); last: %s", method,
             path, o->retries + 1, o->retries ? "s" : "", last);
    return REGISTRY_UNAVAILABLE;
}

/* The answer of a request: a 2xx body as JSON in *out, or the error class with the registry's
 * error_code and message. what: the request in words, for the message. */
static registry_status registry_answer(registry *r, long status, const char *what, json_t **out, char *err,
                                       size_t errlen) {
    json_error_t je;
    json_t *j = r->answer_len ? json_loadb(r->answer, r->answer_len, 0, &je) : NULL;
    if (status >= 200 && status < 300) {
        if (!json_is_object(j)) {
            json_decref(j);
            snprintf(err, errlen, "%s: the registry's answer is not a JSON object (HTTP %ld)", what, status);
            return REGISTRY_REFUSED;
        }
        *out = j;
        return REGISTRY_OK;
    }
    long long code = json_integer_value(json_object_get(j, "error_code"));
    const char *msg = json_string_value(json_object_get(j, "message"));
    char detail[400];
    if (msg) snprintf(detail, sizeof detail, "error %lld: %.300s", code, msg);
    else snprintf(detail, sizeof detail, "no error message");
    registry_status st = REGISTRY_REFUSED;
    if (status == 404) {
        snprintf(err, errlen, "%s: not found (HTTP 404, %s)", what, detail);
        st = REGISTRY_NOT_FOUND;
    } else if (status == 401 || status == 403) {
        snprintf(err, errlen, "%s: the registry refused the credentials (HTTP %ld, %s); check basic.auth.user.info", what,
                 status, detail);
    } else if (status == 409) {
        snprintf(err, errlen, "%s: the registry refused the schema as incompatible with the subject's versions (HTTP "
                 "409, %s)", what, detail);
    } else {
        snprintf(err, errlen, "%s: HTTP %ld (%s)", what, status, detail);
    }
    json_decref(j);
    return st;
}

/* GET or POST path, and its answer. */
static registry_status registry_call(registry *r, const char *method, const char *path, const char *body,
                                     const char *what, json_t **out, char *err, size_t errlen) {
    long status = 0;
    registry_status st = registry_exchange(r, method, path, body, &status, err, errlen);
    if (st) {
        /* err says what failed; name the request too */
        char tmp[1024];
        snprintf(tmp, sizeof tmp, "%s: %s", what, err);
        snprintf(err, errlen, "%s", tmp);
        return st;
    }
    return registry_answer(r, status, what, out, err, errlen);
}

static const char *registry_cache_id(registry *r, int32_t id, const char *schema) {
    for (int i = 0; i < r->n_ids; i++)
        if (r->ids[i].id == id) return r->ids[i].schema;
    if (r->n_ids == r->cap_ids) {
        int c = r->cap_ids ? r->cap_ids * 2 : 16;
        registry_by_id *n = realloc(r->ids, (size_t)c * sizeof *n);
        if (!n) return NULL;
        r->ids = n, r->cap_ids = c;
    }
    char *s = strdup(schema);
    if (!s) return NULL;
    r->ids[r->n_ids++] = (registry_by_id){id, s};
    return s;
}

static registry_by_subject *registry_find_subject(registry *r, const char *subject, const char *schema, int version) {
    for (int i = 0; i < r->n_subjects; i++) {
        registry_by_subject *e = &r->subjects[i];
        if (strcmp(e->subject, subject)) continue;
        if (schema ? !strcmp(e->schema, schema) : e->version == version) return e;
    }
    return NULL;
}

static registry_by_subject *registry_cache_subject(registry *r, const char *subject, const char *schema, int32_t id,
                                                   int version) {
    registry_by_subject *e = registry_find_subject(r, subject, schema, -2);
    if (e) {
        if (version >= 0) e->version = version;
        return e;
    }
    if (r->n_subjects == r->cap_subjects) {
        int c = r->cap_subjects ? r->cap_subjects * 2 : 8;
        registry_by_subject *n = realloc(r->subjects, (size_t)c * sizeof *n);
        if (!n) return NULL;
        r->subjects = n, r->cap_subjects = c;
    }
    e = &r->subjects[r->n_subjects];
    if (!(e->subject = strdup(subject)) || !(e->schema = strdup(schema))) {
        free(e->subject);
        return NULL;
    }
    e->id = id, e->version = version;
    r->n_subjects++;
    return e;
}

registry_status registry_schema_by_id(registry *r, int32_t id, const char **schema, char *err, size_t errlen) {
    for (int i = 0; i < r->n_ids; i++)
        if (r->ids[i].id == id) {
            r->hits++;
            *schema = r->ids[i].schema;
            return REGISTRY_OK;
        }
    char path[64], what[96];
    snprintf(path, sizeof path, "/schemas/ids/%d", (int)id);
    snprintf(what, sizeof what, "schema id %d", (int)id);
    json_t *j = NULL;
    registry_status st = registry_call(r, "GET", path, NULL, what, &j, err, errlen);
    if (st) return st;
    const char *s = json_string_value(json_object_get(j, "schema"));
    const char *type = json_string_value(json_object_get(j, "schemaType"));
    if (!s) {
        snprintf(err, errlen, "%s: the registry's answer has no schema", what);
        json_decref(j);
        return REGISTRY_REFUSED;
    }
    if (type && strcmp(type, "AVRO")) { /* no Avro schema under this id: for an Avro reader, none at all */
        snprintf(err, errlen, "%s: a %.40s schema, not Avro", what, type);
        json_decref(j);
        return REGISTRY_NOT_FOUND;
    }
    *schema = registry_cache_id(r, id, s);
    json_decref(j);
    if (!*schema) return snprintf(err, errlen, "out of memory"), REGISTRY_REFUSED;
    return REGISTRY_OK;
}

/* "/subjects/<escaped subject><tail>" */
static int registry_subject_path(registry *r, const char *subject, const char *tail, char *path, size_t len, char *err,
                                 size_t errlen) {
    char *esc = curl_easy_escape(r->curl, subject, 0);
    if (!esc) return snprintf(err, errlen, "out of memory"), -1;
    int n = snprintf(path, len, "/subjects/%s%s", esc, tail);
    curl_free(esc);
    if (n < 0 || (size_t)n >= len) return snprintf(err, errlen, "subject too long: %.100s", subject), -1;
    return 0;
}

static char *registry_schema_body(const char *schema) {
    json_t *b = json_pack("{s:s}", "schema", schema);
    char *s = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    return s;
}

/* POST body to /subjects/<subject><tail>: the id (and version, when the answer has one). */
static registry_status registry_post_schema(registry *r, const char *subject, const char *tail, const char *schema,
                                            const char *what, int32_t *id, int *version, char *err, size_t errlen) {
    char path[1024];
    if (registry_subject_path(r, subject, tail, path, sizeof path, err, errlen)) return REGISTRY_REFUSED;
    char *body = registry_schema_body(schema);
    if (!body) return snprintf(err, errlen, "out of memory"), REGISTRY_REFUSED;
    json_t *j = NULL;
    registry_status st = registry_call(r, "POST", path, body, what, &j, err, errlen);
    free(body);
    if (st) return st;
    json_t *jid = json_object_get(j, "id"), *jv = json_object_get(j, "version");
    if (!json_is_integer(jid)) {
        json_decref(j);
        snprintf(err, errlen, "%s: the registry's answer has no id", what);
        return REGISTRY_REFUSED;
    }
    *id = (int32_t)json_integer_value(jid);
    *version = json_is_integer(jv) ? (int)json_integer_value(jv) : -1;
    json_decref(j);
    if (!registry_cache_subject(r, subject, schema, *id, *version) || !registry_cache_id(r, *id, schema))
        return snprintf(err, errlen, "out of memory"), REGISTRY_REFUSED;
    return REGISTRY_OK;
}

registry_status registry_register(registry *r, const char *subject, const char *schema, int32_t *id, char *err,
                                  size_t errlen) {
    registry_by_subject *e = registry_find_subject(r, subject, schema, -2);
    if (e) {
        r->hits++;
        *id = e->id;
        return REGISTRY_OK;
    }
    char what[600];
    int version;
    snprintf(what, sizeof what, "registering a schema under subject %.500s", subject);
    return registry_post_schema(r, subject, "/versions", schema, what, id, &version, err, errlen);
}

registry_status registry_lookup(registry *r, const char *subject, const char *schema, int32_t *id, int *version,
                                char *err, size_t errlen) {
    registry_by_subject *e = registry_find_subject(r, subject, schema, -2);
    if (e && e->version >= 0) {
        r->hits++;
        *id = e->id, *version = e->version;
        return REGISTRY_OK;
    }
    char what[600];
    snprintf(what, sizeof what, "looking up the schema under subject %.500s", subject);
    return registry_post_schema(r, subject, "", schema, what, id, version, err, errlen);
}

registry_status registry_latest(registry *r, const char *subject, int32_t *id, int *version, const char **schema,
                                char *err, size_t errlen) {
    char path[1024], what[600];
    if (registry_subject_path(r, subject, "/versions/latest", path, sizeof path, err, errlen)) return REGISTRY_REFUSED;
    snprintf(what, sizeof what, "the latest version of subject %.500s", subject);
    json_t *j = NULL;
    registry_status st = registry_call(r, "GET", path, NULL, what, &j, err, errlen);
    if (st) return st;
    json_t *jid = json_object_get(j, "id"), *jv = json_object_get(j, "version");
    const char *s = json_string_value(json_object_get(j, "schema"));
    if (!json_is_integer(jid) || !json_is_integer(jv) || !s) {
        json_decref(j);
        snprintf(err, errlen, "%s: the registry's answer lacks its id, version or schema", what);
        return REGISTRY_REFUSED;
    }
    *id = (int32_t)json_integer_value(jid);
    *version = (int)json_integer_value(jv);
    registry_by_subject *e = registry_cache_subject(r, subject, s, *id, *version);
    *schema = registry_cache_id(r, *id, s);
    json_decref(j);
    if (!e || !*schema) return snprintf(err, errlen, "out of memory"), REGISTRY_REFUSED;
    return REGISTRY_OK;
}

int registry_subject(registry_subject_strategy s, const char *topic, const char *schema, char *out, size_t outlen,
                     char *err, size_t errlen) {
    char full[512] = "";
    if (s != SUBJECT_TOPIC_NAME) {
        json_t *j = json_loads(schema, 0, NULL);
        const char *name = json_string_value(json_object_get(j, "name"));
        const char *space = json_string_value(json_object_get(j, "namespace"));
        if (!name) {
            json_decref(j);
            return snprintf(err, errlen, "the record-name subject strategies need a named record schema"), -1;
        }
        if (strchr(name, '.') || !space || !*space) snprintf(full, sizeof full, "%s", name);
        else snprintf(full, sizeof full, "%s.%s", space, name);
        json_decref(j);
    }
    int n = s == SUBJECT_TOPIC_NAME    ? snprintf(out, outlen, "%s-value", topic)
            : s == SUBJECT_RECORD_NAME ? snprintf(out, outlen, "%s", full)
                                       : snprintf(out, outlen, "%s-%s", topic, full);
    if (n < 0 || (size_t)n >= outlen) return snprintf(err, errlen, "subject name too long for topic %.100s", topic), -1;
    return 0;
}
