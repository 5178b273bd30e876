/* settings: the one table of ievo's own configuration keys, as librdkafka's rdkafka_conf.c is
 * for its properties. Each key is declared once (name, type, default, range or values, the
 * commands that read it, whether it is a secret, what it means); the typed getters below, the
 * commands' --help, `ievo config` and docs/configuration.md all read this table, and a test
 * compares the committed docs with what the table generates.
 *
 * Values still come from the config sources of config.h (properties file < IEVO_CFG_*
 * environment < -X); this module gives them types, defaults and checks. Every key that is not
 * in the table is a librdkafka property (kafka_clients.h routes it to the right client).
 */
#ifndef IEVO_SETTINGS_H
#define IEVO_SETTINGS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

typedef enum {
    SETTING_STRING,
    SETTING_INT,
    SETTING_BOOL,
    SETTING_ENUM,   /* one of the '|'-separated values; getters return its index */
    SETTING_MS,     /* an integer number of milliseconds */
    SETTING_BYTES,  /* an integer number of bytes */
} setting_type;

/* The commands that read settings (a key's `commands` is a set of these bits). */
enum {
    SETTINGS_CMD_WORKER = 1u << 0,    /* ievo worker and ievo replay */
    SETTINGS_CMD_CONSUME = 1u << 1,
    SETTINGS_CMD_PRODUCE = 1u << 2,
    SETTINGS_CMD_TRAIN = 1u << 3,
    SETTINGS_CMD_EVAL = 1u << 4,
    SETTINGS_CMD_REFERENCE = 1u << 5,
    SETTINGS_CMD_STATE = 1u << 6,
    SETTINGS_CMD_EMBED = 1u << 7,
    SETTINGS_CMD_BROKER = 1u << 8,
    SETTINGS_CMD_OTHER = 1u << 9,     /* broker-ctl, model, report, demo, config */
    SETTINGS_CMD_ALL = (1u << 10) - 1,
};

typedef struct {
    const char *name;
    setting_type type;
    const char *def;       /* the default as a file would spell it; NULL: unset unless def_doc */
    const char *def_doc;   /* for a default computed at run time (def is NULL): how */
    int64_t min, max;      /* SETTING_INT, _MS, _BYTES */
    const char *values;    /* SETTING_ENUM: "a|b|c", in the order of the C enum they map to */
    unsigned commands;     /* SETTINGS_CMD_* bits */
    int secret;            /* never printed, never echoed in an error */
    const char *doc;       /* one paragraph */
} setting;

/* The table, in documentation order. */
extern const setting SETTINGS[];
extern const size_t SETTINGS_COUNT;

/* The row of key, or NULL when key is not one of ievo's (a librdkafka property). */
const setting *settings_find(const char *key);
/* Every key of the table, NULL-terminated: the `ours` list of kafka_conf_for. */
const char *const *settings_names(void);

/* Typed reads through the table: the value of c, else the default; -1 with err naming the key
 * when the value does not parse, is out of range, is not one of the enum's values, or the key
 * is not of that type. A secret's value never appears in err. A string key with neither a value
 * nor a default gives NULL. */
int settings_string(const config *c, const char *key, const char **out, char *err, size_t errlen);
int settings_int(const config *c, const char *key, int64_t *out, char *err, size_t errlen);
/* The same for a key whose default is computed at run time (def NULL): `computed` when unset. */
int settings_int_or(const config *c, const char *key, int64_t computed, int64_t *out, char *err, size_t errlen);
int settings_bool(const config *c, const char *key, int *out, char *err, size_t errlen);
int settings_enum(const config *c, const char *key, int *out, char *err, size_t errlen);

/* The index of value among an enum key's values, or -1 (also when key is not an enum); and the
 * value at an index ("" when out of range). */
int settings_enum_index(const char *key, const char *value);
const char *settings_enum_value(const char *key, int index, char *buf, size_t n);

/* Checks every key of c that is in the table and read by one of `commands`. Returns 0, or -1
 * with err naming the first bad key. */
int settings_check(const config *c, unsigned commands, char *err, size_t errlen);

/* Whether key's value must be masked: the table's secret keys, and librdkafka's credentials
 * (after a consumer./producer. prefix): *.password, *.secret, sasl.username, sasl.password,
 * sasl.oauthbearer.config, sasl.oauthbearer.client.secret, ssl.key.pem and the other key
 * material, ssl.keystore.password. */
int settings_is_secret(const char *key);
/* What to print for key's value: the value, or "********" for a secret and for a value with
 * credentials in a URL (scheme://user:password@host). */
const char *settings_shown_value(const char *key, const char *value);

/* The table as text for people (`ievo config`): every key read by one of `commands`, or only
 * those named in keys[0..nkeys) (an unknown name is an error). */
int settings_print_text(FILE *f, unsigned commands, const char *const *keys, int nkeys, char *err, size_t errlen);
/* docs/configuration.md. */
void settings_print_markdown(FILE *f);
/* One line per key for scripts: name, type, default, range or values, commands, secret; tab-separated. */
void settings_print_keys(FILE *f);

#endif
