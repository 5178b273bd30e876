/* config: properties file + environment + -X overrides (typed reads: settings.h; the librdkafka
 * pass-through: kafka_clients.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* The text is never echoed: without an '=' there is no telling key from value, and the
     * line may be a password (`sasl.password: x`, or a value wrapped onto its own line). */
    if (!eq) {
        snprintf(err, errlen, "expected key=value, found no '='%s; the text is not shown, as it may hold a secret",
                 strchr(kv, ':') ? " (written 'key: value'? settings are key=value)" : "");
        return -1;
    }
    if (eq == kv) {
        snprintf(err, errlen, "expected key=value, found no key before the '='");
        return -1;
    }
    char key[256];
    size_t kn = (size_t)(eq - kv);
    if (kn >= sizeof key) {
        snprintf(err, errlen, "a key of %zu bytes (at most %zu)", kn, sizeof key - 1);
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
