/* cli: the command-line vocabulary every subcommand shares, and the one parser that reads it.
 *
 * Options mean the same thing in every command, as in kcat: -F/--config FILE (a properties
 * file), -b/--bootstrap BROKERS, -t/--topic TOPIC, -X KEY=VALUE (a setting or a librdkafka
 * property), -c/--count N, -G/--group GROUP, -e/--until-eof, -m/--model MODEL, -o/--out FILE,
 * --backend dnnl|scalar, and the event sources (--movielens DIR, --jsonl FILE, --synthetic U:E
 * with --synth-* knobs). Each command declares its options once, in a table; its parser, its
 * --help and its short usage on error all come from that table. Every command reads the same
 * settings sources (files < IEVO_CFG_* < -X and the options that stand for a key), notes the keys
 * it does not read instead of failing on them, and honours log.level and log.format.
 *
 * Exit status of every command: 0 done, 1 a runtime failure, 2 a usage or configuration error.
 */
#ifndef IEVO_CLI_H
#define IEVO_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "event_source.h"
#include "model.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

/* Option ids above any character, for options without a short letter. */
enum { CLI_LONG = 256 };

typedef struct {
    const char *name;     /* long name without "--"; NULL: short only */
    int key;              /* its short letter, or an id >= CLI_LONG */
    const char *arg;      /* the value's name in the help ("FILE"); NULL: a switch */
    const char *help;     /* one line */
    const char *setting;  /* the key it sets, as -X KEY=VALUE would; NULL: the command's own */
} cli_option;

/* The shared options, spelled once. */
#define CLI_OPT_CONFIG {"config", 'F', "FILE", "read settings from a properties file (repeatable)", NULL}
#define CLI_OPT_X {NULL, 'X', "KEY=VALUE", "set a setting (ievo config) or a librdkafka property", NULL}
#define CLI_OPT_BOOTSTRAP {"bootstrap", 'b', "BROKERS", "Kafka bootstrap servers", "bootstrap.servers"}
#define CLI_OPT_GROUP(what) {"group", 'G', "GROUP", what, "group.id"}
#define CLI_OPT_TOPIC(what, key) {"topic", 't', "TOPIC", what, key}
#define CLI_OPT_COUNT(what) {"count", 'c', "N", what, NULL}
#define CLI_OPT_UNTIL_EOF(what) {"until-eof", 'e', NULL, what, NULL}
#define CLI_OPT_MODEL(key) {"model", 'm', "MODEL", "the model file", key}
#define CLI_OPT_OUT(what) {"out", 'o', "FILE", what, NULL}
#define CLI_OPT_BACKEND(key) {"backend", CLI_OPT_ID_BACKEND, "dnnl|scalar", "compute backend (oneDNN or the scalar reference)", key}
#define CLI_OPT_END {NULL, 0, NULL, NULL, NULL}

/* The event sources of produce, train, eval and reference (cli_data_*). */
enum {
    CLI_OPT_ID_BACKEND = CLI_LONG,
    CLI_OPT_ID_MOVIELENS,
    CLI_OPT_ID_JSONL,
    CLI_OPT_ID_SYNTHETIC,
    CLI_OPT_ID_SYNTH_SEED,
    CLI_OPT_ID_SYNTH_TOPICS,
    CLI_OPT_ID_SYNTH_ITEMS,
    CLI_OPT_ID_SYNTH_SWITCH,
    CLI_OPT_ID_SYNTH_ON_TOPIC,
    CLI_OPT_ID_SYNTH_ZIPF,
    CLI_OPT_ID_SYNTH_START,
    CLI_OPT_ID_ITEMS,
    CLI_OPT_ID_TEXT_ENCODER,
    CLI_OPT_ID_TEXT_CACHE,
    CLI_OPT_ID_CELL,
    CLI_OPT_ID_ITEM_DIM,
    CLI_OPT_ID_ACTION_DIM,
    CLI_OPT_ID_HIDDEN,
    CLI_OPT_ID_ATTN_DIM,
    CLI_OPT_ID_OUT_DIM,
    CLI_OPT_ID_WINDOW,
    CLI_OPT_ID_NAME,
    CLI_OPT_ID_INIT_SEED,
    CLI_OPT_ID_LAYERS,
    CLI_OPT_ID_STATE_DIM,
    CLI_OPT_ID_FFN_DIM,
    CLI_OPT_ID_ATTENTION,
    CLI_OPT_ID_BLOCKS,
    CLI_OPT_ID_HEADS,
    CLI_OPT_ID_FIRST_FREE   /* a command's own long-only options start here */
};
#define CLI_OPTS_DATA                                                                                           \
    {"movielens", CLI_OPT_ID_MOVIELENS, "DIR", "MovieLens-100K events (DIR/u.data; items: DIR/u.item)", NULL},  \
    {"jsonl", CLI_OPT_ID_JSONL, "FILE", "UserAction JSON lines (- for stdin)", NULL},                           \
    {"synthetic", CLI_OPT_ID_SYNTHETIC, "USERS:EVENTS", "the synthetic generator's events", NULL},              \
    {"synth-seed", CLI_OPT_ID_SYNTH_SEED, "N", "generator seed (default 42)", NULL},                            \
    {"synth-topics", CLI_OPT_ID_SYNTH_TOPICS, "N", "generator: interest topics, 1..100 (default 20)", NULL},    \
    {"synth-items-per-topic", CLI_OPT_ID_SYNTH_ITEMS, "N", "generator: items per topic, 1..1000 (default 50)", NULL}, \
    {"synth-switch-prob", CLI_OPT_ID_SYNTH_SWITCH, "P", "generator: topic switch chance per event (0.05)", NULL}, \
    {"synth-on-topic", CLI_OPT_ID_SYNTH_ON_TOPIC, "P", "generator: share of events on the topic (0.8)", NULL},  \
    {"synth-zipf-users", CLI_OPT_ID_SYNTH_ZIPF, "S", "generator: activity skew across users, 0..10 (0.8)", NULL}, \
    {"synth-start-ts", CLI_OPT_ID_SYNTH_START, "MS", "generator: time of the first event, ms since the epoch", NULL}
#define CLI_OPTS_TEXT                                                                                           \
    {"items", CLI_OPT_ID_ITEMS, "FILE", "text models: the catalogue, {\"item_id\",\"text\"} lines (default with --movielens: u.item)", NULL}, \
    {"text-encoder", CLI_OPT_ID_TEXT_ENCODER, "DIR", "text models: USE-lite's weights", "text.encoder.dir"},  \
    {"text-cache", CLI_OPT_ID_TEXT_CACHE, "DIR|none", "text models: where encoded texts are cached", NULL}

/* The model's shape and identity, for `model init` and `train` (cli_model_option). */
#define CLI_OPTS_MODEL(cell_default)                                                                           \
    {"cell", CLI_OPT_ID_CELL, "lstm|gru|lru|none", "recurrent family (default " cell_default "; lru: a stack of "  \
     "linear recurrent units; none: the input projection alone)", NULL},                                         \
    {"layers", CLI_OPT_ID_LAYERS, "N", "lru: layers (default 2)", NULL},                                        \
    {"state-dim", CLI_OPT_ID_STATE_DIM, "N", "lru: complex state size per layer (default: --hidden)", NULL},    \
    {"ffn-dim", CLI_OPT_ID_FFN_DIM, "N", "lru, tf: feed-forward width (default 2 x --hidden)", NULL},           \
    {"attention", CLI_OPT_ID_ATTENTION, "window|tf", "what reads h_t: the window attention (default) or "      \
     "transformer blocks over the window", NULL},                                                                \
    {"blocks", CLI_OPT_ID_BLOCKS, "N", "tf: transformer blocks (default 2)", NULL},                             \
    {"heads", CLI_OPT_ID_HEADS, "N", "tf: attention heads per block (default 2)", NULL},                        \
    {"item-dim", CLI_OPT_ID_ITEM_DIM, "N", "item embedding size E (default 64)", NULL},                         \
    {"action-dim", CLI_OPT_ID_ACTION_DIM, "N", "action embedding size A (default 8)", NULL},                    \
    {"hidden", CLI_OPT_ID_HIDDEN, "N", "hidden size H (default 64)", NULL},                                    \
    {"attn-dim", CLI_OPT_ID_ATTN_DIM, "N", "attention size K (default 64)", NULL},                             \
    {"out-dim", CLI_OPT_ID_OUT_DIM, "N", "interest vector size D (default 64)", NULL},                         \
    {"window", CLI_OPT_ID_WINDOW, "N", "attention window W, in events (default 16)", NULL},                   \
    {"name", CLI_OPT_ID_NAME, "NAME", "model name, [A-Za-z0-9._-]{1,64} (default ievo)", NULL},                \
    {"init-seed", CLI_OPT_ID_INIT_SEED, "N", "seed of the initial weights (default 1)", NULL}

typedef struct {
    const char *name;      /* as typed after "ievo" ("consume", "model init") */
    const char *synopsis;  /* after "usage: ievo NAME "; more forms on further lines */
    const char *about;     /* what it does, for --help */
    const cli_option *opts;
    unsigned settings;     /* SETTINGS_CMD_* bits: the table keys it reads */
    int kafka;             /* passes librdkafka properties to its clients */
    const char *operands;  /* the operands it takes, for --help ("PATH"); NULL: none */
    int operands_first;    /* options stop at the first operand (its own arguments follow it) */
    const char *notes;     /* more text for --help, or NULL */
} cli_command;

typedef struct {
    config cfg;            /* the settings: files < environment < -X and setting options */
    char **operands;
    int n_operands;
} cli_args;

/* Called for each option of the command's table that the parser does not handle itself (-F, -X,
 * -h), in command-line order, after the settings sources are loaded; an option with a setting
 * is applied to the config first. Returns 0, or -1 with err saying what is wrong with value. */
typedef int (*cli_option_fn)(void *ctx, int key, const char *value, char *err, size_t errlen);

/* Parses argv (argv[0] is the command's name), loads the settings, checks the keys the command
 * reads, notes the ones it does not, and applies log.level / log.format. Returns CLI_OK; or -1
 * after printing --help (exit 0); or CLI_USAGE after printing what is wrong (the short usage
 * with it for a usage error). a->cfg is to be freed with cli_args_free in every case. */
int cli_parse(const cli_command *cmd, int argc, char **argv, cli_option_fn fn, void *ctx, cli_args *a);
void cli_args_free(cli_args *a);

/* Prints "ievo NAME: <message>" and the short usage; returns CLI_USAGE. */
int cli_usage_error(const cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Typed values of options: -1 with err ("'x' is not an integer in [0, 10]") when they do not parse. */
int cli_int(const char *v, int64_t min, int64_t max, int64_t *out, char *err, size_t errlen);
int cli_double(const char *v, double min, double max, double *out, char *err, size_t errlen);

/* A dispatcher of subcommands ("ievo model init"): runs the one argv[1] names. */
typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} cli_subcommand;
int cli_dispatch(const char *group, const cli_subcommand *subs, size_t n, int argc, char **argv);

/* The settings as a command applies them: its keys of the table (values or defaults), then the
 * librdkafka properties each client gets from c (roles: KAFKA_CONSUMER / KAFKA_PRODUCER bits,
 * 1 << role), secrets masked. Checks the properties with librdkafka; -1 with err naming one it
 * rejects. */
int cli_print_config(FILE *f, const cli_command *cmd, const config *c, unsigned roles, char *err, size_t errlen);

/* ---- event sources: --movielens, --jsonl, --synthetic and the generator's knobs ----------- */

typedef struct {
    const char *movielens, *jsonl, *synthetic;
    synth_opts synth;
} cli_data;

void cli_data_init(cli_data *d);
/* Takes one of the CLI_OPTS_DATA options: 1 when key is one (err filled on a bad value: -1), 0 when not. */
int cli_data_option(cli_data *d, int key, const char *value, char *err, size_t errlen);
/* How many sources were given (commands want exactly one). */
int cli_data_sources(const cli_data *d);
/* "movielens", "synthetic" or "jsonl", and the path or spec given. */
const char *cli_data_kind(const cli_data *d);
const char *cli_data_arg(const cli_data *d);
/* Loads the events of the source given. */
int cli_data_load(const cli_data *d, event_list *out, char *err, size_t errlen);

/* ---- text models: --items, --text-encoder, --text-cache ------------------------------------ */

typedef struct {
    const char *items;      /* --items FILE; NULL: u.item with --movielens, else no catalogue */
    const char *cache;      /* --text-cache DIR|none; NULL: the default place */
    char encoder_dir[4096], cache_dir[4096];
} cli_text;

/* Takes one of the CLI_OPTS_TEXT options: 1 when key is one, 0 when not. */
int cli_text_option(cli_text *t, int key, const char *value);
/* After parsing: the encoder's directory (text.encoder.dir or its default) and the cache's. */
void cli_text_resolve(cli_text *t, const config *cfg);

/* ---- the model's shape: CLI_OPTS_MODEL ------------------------------------------------------- */

typedef struct {
    model_config cfg;
    const char *name;
    uint64_t init_seed;
} cli_model;

/* Defaults: model_config_default's with the given cell, name "ievo", seed 1. */
void cli_model_init(cli_model *m, model_cell cell);
/* Takes one of the CLI_OPTS_MODEL options: 1 when key is one (err filled on a bad value: -1), 0 when not. */
int cli_model_option(cli_model *m, int key, const char *value, char *err, size_t errlen);

/* The one spelling of the compute backends (model.backend's values). */
int cli_backend_parse(const char *v, model_backend *out, char *err, size_t errlen);
const char *cli_backend_name(model_backend b);

#endif
