/* config: properties file + environment + -X overrides, and the librdkafka pass-through. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

void config_free(config *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].key);
        free(c->e[i].value);
    }
    free(c->e);
    memset(c, 0, sizeof *c);
}

int config_set(config *c, const char *key, const char *value) {
    char *v = strdup(value);
    if (!v) return -1;
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->e[i].key, key) == 0) {
            free(c->e[i].value);
            c->e[i].value = v;
            return 0;
        }
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        config_entry *ne = realloc(c->e, nc * sizeof *ne);
        if (!ne) { free(v); return -1; }
        c->e = ne;
        c->cap = nc;
    }
    char *k = strdup(key);
    if (!k) { free(v); return -1; }
    c->e[c->n].key = k;
    c->e[c->n].value = v;
    c->n++;
    return 0;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

int config_set_kv(config *c, const char *kv, char *err, size_t errlen) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        snprintf(err, errlen, "expected key=value, got '%s'", kv);
        return -1;
    }
    char key[256];
    size_t kn = (size_t)(eq - kv);
    if (kn >= sizeof key) {
        snprintf(err, errlen, "key too long in '%.40s...'", kv);
        return -1;
    }
    memcpy(key, kv, kn);
    key[kn] = 0;
    const char *val = eq + 1;
    while (isspace((unsigned char)*val)) val++;
    if (config_set(c, trim(key), val)) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int config_load_file(config *c, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#' || *s == '!') continue;
        if (config_set_kv(c, s, err, errlen)) {
            char inner[200];
            snprintf(inner, sizeof inner, "%s", err);
            snprintf(err, errlen, "%s:%d: %s", path, lineno, inner);
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

int config_load_env(config *c, char *err, size_t errlen) {
    static const char prefix[] = "IEVO_CFG_";
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, prefix, sizeof prefix - 1) != 0) continue;
        const char *name = *e + sizeof prefix - 1;
        const char *eq = strchr(name, '=');
        if (!eq || eq == name) continue;
        char key[256];
        size_t kn = (size_t)(eq - name);
        if (kn >= sizeof key) continue;
        for (size_t i = 0; i < kn; i++) key[i] = name[i] == '_' ? '.' : (char)tolower((unsigned char)name[i]);
        key[kn] = 0;
        if (config_set(c, key, eq + 1)) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
}

const char *config_get(const config *c, const char *key, const char *def) {
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->e[i].key, key) == 0) return c->e[i].value;
    return def;
}

int config_get_int(const config *c, const char *key, int64_t def, int64_t min, int64_t max,
                   int64_t *out, char *err, size_t errlen) {
    const char *v = config_get(c, key, NULL);
    if (!v) { *out = def; return 0; }
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *trim(end)) {
        snprintf(err, errlen, "%s: '%s' is not an integer", key, v);
        return -1;
    }
    if (x < min || x > max) {
        snprintf(err, errlen, "%s: %lld is outside [%lld, %lld]", key, x, (long long)min, (long long)max);
        return -1;
    }
    *out = x;
    return 0;
}

int config_get_double(const config *c, const char *key, double def, double min, double max,
                      double *out, char *err, size_t errlen) {
    const char *v = config_get(c, key, NULL);
    if (!v) { *out = def; return 0; }
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *trim(end) || !isfinite(x)) {
        snprintf(err, errlen, "%s: '%s' is not a number", key, v);
        return -1;
    }
    if (x < min || x > max) {
        snprintf(err, errlen, "%s: %g is outside [%g, %g]", key, x, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

int config_get_bool(const config *c, const char *key, int def, int *out, char *err, size_t errlen) {
    const char *v = config_get(c, key, NULL);
    if (!v) { *out = def; return 0; }
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")) { *out = 1; return 0; }
    if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no")) { *out = 0; return 0; }
    snprintf(err, errlen, "%s: '%s' is not a boolean (true/false)", key, v);
    return -1;
}

int config_key_in(const char *key, const char *const *list) {
    for (; list && *list; list++)
        if (strcmp(key, *list) == 0) return 1;
    return 0;
}

int config_kafka_defaults(rd_kafka_conf_t *kc, const char *const *defaults, char *err, size_t errlen) {
    char kerr[512];
    for (const char *const *d = defaults; d && d[0]; d += 2) {
        if (rd_kafka_conf_set(kc, d[0], d[1], kerr, sizeof kerr) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "kafka default %s=%s: %s", d[0], d[1], kerr);
            return -1;
        }
    }
    return 0;
}

static int has_prefix(const char *key, const char *const *prefixes) {
    for (; prefixes && *prefixes; prefixes++)
        if (strncmp(key, *prefixes, strlen(*prefixes)) == 0) return 1;
    return 0;
}

rd_kafka_conf_t *config_kafka_conf(const config *c, const char *const *defaults, const char *const *ours,
                                   const char *const *our_prefixes, char *err, size_t errlen) {
    rd_kafka_conf_t *kc = rd_kafka_conf_new();
    char kerr[512];
    if (config_kafka_defaults(kc, defaults, err, errlen)) goto bad;
    for (size_t i = 0; i < c->n; i++) {
        const char *k = c->e[i].key;
        if (config_key_in(k, ours) || has_prefix(k, our_prefixes)) continue;
        if (rd_kafka_conf_set(kc, k, c->e[i].value, kerr, sizeof kerr) != RD_KAFKA_CONF_OK) {
            snprintf(err, errlen, "property %s: %s", k, kerr);
            goto bad;
        }
    }
    return kc;
bad:
    rd_kafka_conf_destroy(kc);
    return NULL;
}
