/* cli: the shared command-line parser, help, settings loading and the option groups several
 * commands take (event sources, text models, backends). See cli.h. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"      /* CODEC_TS_MAX */
#include "item_table.h" /* text_default_dirs */
#include "kafka_clients.h"
#include "log.h"
#include "settings.h"

#define CLI_MAX_OPTS 128   /* a command's own options and the common ones */

/* The options every command takes, after its own. */
static const cli_option COMMON[] = {
    CLI_OPT_CONFIG,
    CLI_OPT_X,
    {"help", 'h', NULL, "print this help", NULL},
};
#define N_COMMON (sizeof COMMON / sizeof COMMON[0])

static size_t count_opts(const cli_option *o) {
    size_t n = 0;
    while (o && o[n].key) n++;
    return n;
}

/* The option of the command (or a common one) with this key. */
static const cli_option *find_opt(const cli_command *cmd, int key) {
    for (size_t i = 0; cmd->opts && cmd->opts[i].key; i++)
        if (cmd->opts[i].key == key) return &cmd->opts[i];
    for (size_t i = 0; i < N_COMMON; i++)
        if (COMMON[i].key == key) return &COMMON[i];
    return NULL;
}

/* "--count" or "-X": how an option is written in messages. */
static void flag_text(const cli_option *o, char *out, size_t n) {
    if (o->name) snprintf(out, n, "--%s", o->name);
    else snprintf(out, n, "-%c", o->key);
}

/* ---- help ---------------------------------------------------------------------------------- */

static void usage_lines(const cli_command *cmd, FILE *f) {
    const char *p = cmd->synopsis;
    int indent = (int)strlen("usage: ievo ") + (int)strlen(cmd->name) + 1;
    for (int first = 1; *p; first = 0) {
        size_t n = strcspn(p, "\n");
        if (first) fprintf(f, "usage: ievo %s %.*s\n", cmd->name, (int)n, p);
        else if (*p == ' ') fprintf(f, "%*s%.*s\n", indent, "", (int)(n - 1), p + 1);
        else fprintf(f, "       ievo %s %.*s\n", cmd->name, (int)n, p);
        p += n;
        if (*p) p++;
    }
}

static void option_line(const cli_option *o, FILE *f) {
    char left[96];
    int n;
    if (o->key < CLI_LONG && o->name) n = snprintf(left, sizeof left, "-%c, --%s", o->key, o->name);
    else if (o->name) n = snprintf(left, sizeof left, "    --%s", o->name);
    else n = snprintf(left, sizeof left, "-%c", o->key);
    if (o->arg && n > 0 && (size_t)n < sizeof left) snprintf(left + n, sizeof left - (size_t)n, " %s", o->arg);
    fprintf(f, "  %-32s %s", left, o->help);
    if (o->setting) fprintf(f, " (-X %s)", o->setting);
    fputc('\n', f);
}

static void settings_section(const cli_command *cmd, FILE *f) {
    fprintf(f, "\nsettings it reads, with their defaults (`ievo config KEY` explains one; docs/configuration.md):\n");
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const setting *s = &SETTINGS[i];
        if (!(s->commands & cmd->settings)) continue;
        fprintf(f, "  %-30s %s\n", s->name, s->def ? s->def : s->def_doc);
    }
    if (cmd->kafka)
        fprintf(f, "any other key is a librdkafka property for its Kafka client(s) (consumer.KEY / producer.KEY:\n"
                   "one client only)\n");
    else
        fprintf(f, "other keys are ignored, with a note\n");
}

/* The whole help (stdout for --help). */
static void cli_help(const cli_command *cmd, FILE *f) {
    usage_lines(cmd, f);
    if (cmd->about) fprintf(f, "\n%s", cmd->about);
    fprintf(f, "\noptions:\n");
    for (size_t i = 0; cmd->opts && cmd->opts[i].key; i++) option_line(&cmd->opts[i], f);
    for (size_t i = 0; i < N_COMMON; i++) option_line(&COMMON[i], f);
    if (cmd->notes) fprintf(f, "\n%s", cmd->notes);
    settings_section(cmd, f);
    fprintf(f, "\nexit status: 0 done, 1 runtime failure, 2 usage or configuration error\n");
}

static void short_usage(const cli_command *cmd, FILE *f) {
    usage_lines(cmd, f);
    fprintf(f, "Try 'ievo help %s' for the options.\n", cmd->name);
}

int cli_usage_error(const cli_command *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ievo %s: ", cmd->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    short_usage(cmd, stderr);
    return CLI_USAGE;
}

/* A configuration error: the message alone (the command line itself was fine). */
static int config_error(const cli_command *cmd, const char *err) {
    fprintf(stderr, "ievo %s: %s\n", cmd->name, err);
    return CLI_USAGE;
}

/* ---- parsing ------------------------------------------------------------------------------- */

typedef struct {
    const cli_option *opt;
    char *value;   /* in argv */
    int secret;    /* -X with a secret, masked in argv since */
} parsed_option;

/* getopt_long's tables for the command: optstring "[+]:ab:c..." and the long options (room for
 * CLI_MAX_OPTS of each). -1 when the command declares more options than that. */
static int getopt_tables(const cli_command *cmd, char *optstring, struct option *longopts) {
    size_t k = 0, l = 0;
    if (cmd->operands_first) optstring[k++] = '+';
    optstring[k++] = ':';
    size_t own = count_opts(cmd->opts);
    if (own + N_COMMON >= CLI_MAX_OPTS) return -1;
    for (size_t i = 0; i < own + N_COMMON; i++) {
        const cli_option *o = i < own ? &cmd->opts[i] : &COMMON[i - own];
        if (o->key < CLI_LONG) {
            optstring[k++] = (char)o->key;
            if (o->arg) optstring[k++] = ':';
        }
        if (o->name) longopts[l++] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL, o->key};
    }
    optstring[k] = 0;
    longopts[l] = (struct option){NULL, 0, NULL, 0};
    return 0;
}

/* Keys the command does not read: ievo's keys of other commands, and librdkafka properties when
 * it has no Kafka client. One note for all of them. */
static void note_unused(const cli_command *cmd, const config *c) {
    char list[1024] = "";
    size_t len = 0;
    int n = 0;
    for (size_t i = 0; i < c->n; i++) {
        const setting *s = settings_find(c->e[i].key);
        if (s ? (s->commands & cmd->settings) != 0 : cmd->kafka) continue;
        int w = snprintf(list + len, sizeof list - len, "%s%s", n++ ? ", " : "", c->e[i].key);
        if (w > 0 && (size_t)w < sizeof list - len) len += (size_t)w;
    }
    if (n) LOG_I(cmd->name, "ignoring %d setting%s this command does not read: %s", n, n > 1 ? "s" : "", list);
}

static int apply_logging(const config *c, char *err, size_t errlen) {
    int level, format;
    if (settings_enum(c, "log.level", &level, err, errlen) || settings_enum(c, "log.format", &format, err, errlen))
        return -1;
    log_set_level((log_level)level);   /* the table lists the levels in log_level's order */
    log_set_json(format == 1);
    return 0;
}

/* Whether -X KEY=VALUE (kv) gives a secret: a value settings_shown_value masks (a secret key, or
 * credentials in a URL). key receives KEY. */
static int kv_is_secret(const char *kv, char *key, size_t keylen) {
    const char *eq = strchr(kv, '=');
    size_t kn = eq ? (size_t)(eq - kv) : 0;
    if (!eq || kn >= keylen) return 0;
    memcpy(key, kv, kn);
    key[kn] = 0;
    return settings_shown_value(key, eq + 1) != eq + 1;
}

/* A secret given as -X KEY=VALUE: every local user reads it in ps and /proc/PID/cmdline. Its
 * value is overwritten in argv (what /proc shows from then on; the config holds a copy); the
 * caller logs the warning once logging is configured. */
static int secret_on_command_line(char *kv, char *key, size_t keylen) {
    if (!kv_is_secret(kv, key, keylen)) return 0;
    char *eq = strchr(kv, '=');
    for (char *p = eq + 1; *p; p++) *p = '*';
    return 1;
}

/* The warnings for secrets given with -X: where to put them instead. */
static void warn_secrets_on_command_line(const cli_command *cmd, const parsed_option *po, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (!po[i].secret) continue;
        char key[256], env[256];
        size_t k = 0;
        for (; po[i].value[k] && po[i].value[k] != '=' && k < sizeof key - 1; k++) key[k] = po[i].value[k];
        key[k] = 0;
        for (k = 0; key[k]; k++) env[k] = key[k] == '.' ? '_' : (char)toupper((unsigned char)key[k]);
        env[k] = 0;
        LOG_W(cmd->name, "-X %s: a secret on the command line is readable by every local user (ps, /proc/PID/cmdline) "
              "until this process masks it; give it in a properties file (-F FILE, mode 0600) or as IEVO_CFG_%s "
              "(docs/security.md)", key, env);
    }
}

/* After getopt: the files, the environment, then -X, the setting options and the command's own
 * options in command-line order. */
static int load_settings(const cli_command *cmd, parsed_option *po, size_t n, cli_option_fn fn, void *ctx,
                         cli_args *a) {
    char err[1024], flag[64], key[256];
    int secrets = 0;
    for (size_t i = 0; i < n; i++)
        if (po[i].opt->key == 'F' && config_load_file(&a->cfg, po[i].value, err, sizeof err))
            return config_error(cmd, err);
    if (config_load_env(&a->cfg, err, sizeof err)) return config_error(cmd, err);
    for (size_t i = 0; i < n; i++) {
        const cli_option *o = po[i].opt;
        if (o->key == 'F') continue;
        flag_text(o, flag, sizeof flag);
        if (o->key == 'X') {
            if (config_set_kv(&a->cfg, po[i].value, err, sizeof err)) return cli_usage_error(cmd, "-X: %s", err);
            secrets += po[i].secret = secret_on_command_line(po[i].value, key, sizeof key);
            continue;
        }
        if (o->setting && config_set(&a->cfg, o->setting, po[i].value ? po[i].value : "true"))
            return config_error(cmd, "out of memory");
        err[0] = 0;
        if (fn && fn(ctx, o->key, po[i].value, err, sizeof err)) return cli_usage_error(cmd, "%s: %s", flag, err);
    }
    if (settings_check(&a->cfg, cmd->settings, err, sizeof err) || apply_logging(&a->cfg, err, sizeof err))
        return config_error(cmd, err);
    if (secrets) warn_secrets_on_command_line(cmd, po, n);
    note_unused(cmd, &a->cfg);
    return CLI_OK;
}

int cli_parse(const cli_command *cmd, int argc, char **argv, cli_option_fn fn, void *ctx, cli_args *a) {
    memset(a, 0, sizeof *a);
    char optstring[3 * CLI_MAX_OPTS + 4];
    struct option longopts[CLI_MAX_OPTS];
    if (getopt_tables(cmd, optstring, longopts))
        return config_error(cmd, "the command declares more options than the parser holds (a bug)");
    parsed_option *po = calloc((size_t)(argc > 0 ? argc : 1), sizeof *po);
    if (!po) return config_error(cmd, "out of memory");
    size_t n = 0;
    int c, rc = CLI_OK;
    optind = 0;   /* GNU getopt: start afresh (a subcommand parses after its group) */
    opterr = 0;
    while (rc == CLI_OK && (c = getopt_long(argc, argv, optstring, longopts, NULL)) != -1) {
        if (c == 'h') {
            cli_help(cmd, stdout);
            rc = -1;
        } else if (c == '?') {
            if (optopt && optopt < CLI_LONG) rc = cli_usage_error(cmd, "unknown option '-%c'", optopt);
            else rc = cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        } else if (c == ':') {
            const cli_option *o = find_opt(cmd, optopt);
            char flag[64] = "";
            if (o) flag_text(o, flag, sizeof flag);
            rc = cli_usage_error(cmd, "option '%s' needs a value", o ? flag : argv[optind - 1]);
        } else {
            po[n++] = (parsed_option){find_opt(cmd, c), optarg, 0};
        }
    }
    if (rc == CLI_OK) {
        a->operands = argv + optind;
        a->n_operands = argc - optind;
        if (a->n_operands && !cmd->operands) rc = cli_usage_error(cmd, "unexpected argument '%s'", a->operands[0]);
    }
    if (rc == CLI_OK) rc = load_settings(cmd, po, n, fn, ctx, a);
    free(po);
    return rc;
}

void cli_args_free(cli_args *a) { config_free(&a->cfg); }

int cli_int(const char *v, int64_t min, int64_t max, int64_t *out, char *err, size_t errlen) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < min || x > max) {
        snprintf(err, errlen, "'%s' is not an integer in [%lld, %lld]", v, (long long)min, (long long)max);
        return -1;
    }
    *out = x;
    return 0;
}

int cli_double(const char *v, double min, double max, double *out, char *err, size_t errlen) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= min && x <= max)) {
        snprintf(err, errlen, "'%s' is not a number in [%g, %g]", v, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

/* ---- subcommands --------------------------------------------------------------------------- */

static void cli_subcommands_help(const char *group, const cli_subcommand *subs, size_t n, FILE *f) {
    fprintf(f, "usage: ievo %s <command> [options]   (ievo %s <command> --help for its options)\n\ncommands:\n", group,
            group);
    for (size_t i = 0; i < n; i++) fprintf(f, "  %-10s %s\n", subs[i].name, subs[i].help);
    fprintf(f, "\nexit status: 0 done, 1 runtime failure, 2 usage or configuration error\n");
}

int cli_dispatch(const char *group, const cli_subcommand *subs, size_t n, int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        cli_subcommands_help(group, subs, n, stdout);
        return CLI_OK;
    }
    for (size_t i = 0; argc >= 2 && i < n; i++)
        if (!strcmp(argv[1], subs[i].name)) return subs[i].fn(argc - 1, argv + 1);
    if (argc < 2) fprintf(stderr, "ievo %s: give a subcommand\n", group);
    else fprintf(stderr, "ievo %s: unknown subcommand '%s'\n", group, argv[1]);
    cli_subcommands_help(group, subs, n, stderr);
    return CLI_USAGE;
}

/* ---- --print-config ------------------------------------------------------------------------ */

/* What kafka_conf_for gives one client of c's librdkafka properties: scoped keys over unscoped
 * ones, in the order first set. */
static int role_properties(const config *c, kafka_role role, config *props) {
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < c->n; i++) {
            int scoped;
            const char *prop = kafka_prop_for(c->e[i].key, role, settings_names(), &scoped);
            if (prop && scoped == pass && config_set(props, prop, c->e[i].value)) return -1;
        }
    return 0;
}

int cli_print_config(FILE *f, const cli_command *cmd, const config *c, unsigned roles, char *err, size_t errlen) {
    static const char *const role_names[] = {"the consumer", "the producers"};
    config props[2] = {{0}, {0}};
    int rc = 0;
    for (int role = KAFKA_CONSUMER; role <= KAFKA_PRODUCER && !rc; role++) {
        if (!(roles & (1u << role))) continue;
        rd_kafka_conf_t *kc = kafka_conf_for(c, (kafka_role)role, NULL, settings_names(), err, errlen);
        if (!kc) rc = -1;   /* librdkafka rejects a property: err names it */
        else rd_kafka_conf_destroy(kc);
        if (!rc && role_properties(c, (kafka_role)role, &props[role])) rc = -1, snprintf(err, errlen, "out of memory");
    }
    if (rc) goto done;
    fprintf(f, "# ievo %s: the settings as it applies them (secrets masked)\n", cmd->name);
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const setting *s = &SETTINGS[i];
        if (!(s->commands & cmd->settings)) continue;
        const char *v = config_get(c, s->name, s->def);
        if (v) fprintf(f, "%s=%s\n", s->name, settings_shown_value(s->name, v));
        else fprintf(f, "# %s is not set: %s\n", s->name, s->def_doc);
    }
    for (int role = KAFKA_CONSUMER; role <= KAFKA_PRODUCER; role++) {
        if (!(roles & (1u << role))) continue;
        fprintf(f, "# librdkafka properties for %s, on top of its defaults (docs/configuration.md)\n",
                role_names[role]);
        for (size_t i = 0; i < props[role].n; i++)
            fprintf(f, "%s=%s\n", props[role].e[i].key, settings_shown_value(props[role].e[i].key, props[role].e[i].value));
    }
done:
    config_free(&props[0]);
    config_free(&props[1]);
    return rc;
}

/* ---- event sources ------------------------------------------------------------------------- */

void cli_data_init(cli_data *d) {
    memset(d, 0, sizeof *d);
    synth_opts_default(&d->synth);
}

int cli_data_option(cli_data *d, int key, const char *value, char *err, size_t errlen) {
    int64_t x = 0;
    switch (key) {
    case CLI_OPT_ID_MOVIELENS: d->movielens = value; return 1;
    case CLI_OPT_ID_JSONL: d->jsonl = value; return 1;
    case CLI_OPT_ID_SYNTHETIC:
        d->synthetic = value;
        return synth_opts_parse(&d->synth, value, err, errlen) ? -1 : 1;
    case CLI_OPT_ID_SYNTH_SEED:
        if (cli_int(value, 0, INT64_MAX, &x, err, errlen)) return -1;
        d->synth.seed = (uint64_t)x;
        return 1;
    case CLI_OPT_ID_SYNTH_TOPICS:
        if (cli_int(value, 1, 100, &x, err, errlen)) return -1;
        d->synth.topics = (int)x;
        return 1;
    case CLI_OPT_ID_SYNTH_ITEMS:
        if (cli_int(value, 1, 1000, &x, err, errlen)) return -1;
        d->synth.items_per_topic = (int)x;
        return 1;
    case CLI_OPT_ID_SYNTH_SWITCH: return cli_double(value, 0, 1, &d->synth.switch_prob, err, errlen) ? -1 : 1;
    case CLI_OPT_ID_SYNTH_ON_TOPIC: return cli_double(value, 0, 1, &d->synth.on_topic, err, errlen) ? -1 : 1;
    case CLI_OPT_ID_SYNTH_ZIPF: return cli_double(value, 0, 10, &d->synth.zipf_users, err, errlen) ? -1 : 1;
    case CLI_OPT_ID_SYNTH_START:
        if (cli_int(value, 0, CODEC_TS_MAX - 1, &x, err, errlen)) return -1;
        d->synth.start_ts = x;
        return 1;
    default: return 0;
    }
}

int cli_data_sources(const cli_data *d) { return !!d->movielens + !!d->jsonl + !!d->synthetic; }

const char *cli_data_kind(const cli_data *d) {
    return d->movielens ? "movielens" : d->synthetic ? "synthetic" : "jsonl";
}

const char *cli_data_arg(const cli_data *d) {
    return d->movielens ? d->movielens : d->synthetic ? d->synthetic : d->jsonl;
}

int cli_data_load(const cli_data *d, event_list *out, char *err, size_t errlen) {
    if (d->movielens) return events_load_movielens(d->movielens, out, err, errlen);
    if (d->synthetic) return events_generate_synthetic(&d->synth, out, err, errlen);
    return events_load_jsonl_path(d->jsonl, out, err, errlen);
}

/* ---- text models --------------------------------------------------------------------------- */

int cli_text_option(cli_text *t, int key, const char *value) {
    if (key == CLI_OPT_ID_ITEMS) t->items = value;
    else if (key == CLI_OPT_ID_TEXT_CACHE) t->cache = value;
    else return key == CLI_OPT_ID_TEXT_ENCODER;   /* a setting: read back in cli_text_resolve */
    return 1;
}

void cli_text_resolve(cli_text *t, const config *cfg) {
    text_default_dirs(t->encoder_dir, sizeof t->encoder_dir, t->cache_dir, sizeof t->cache_dir);
    const char *dir = config_get(cfg, "text.encoder.dir", NULL);
    if (dir) snprintf(t->encoder_dir, sizeof t->encoder_dir, "%s", dir);
    if (t->cache) snprintf(t->cache_dir, sizeof t->cache_dir, "%s", t->cache);
}

/* ---- the model's shape ---------------------------------------------------------------------- */

void cli_model_init(cli_model *m, model_cell cell) {
    model_config_default(&m->cfg);
    m->cfg.cell = cell;
    m->name = "ievo";
    m->init_seed = 1;
}

int cli_model_option(cli_model *m, int key, const char *value, char *err, size_t errlen) {
    static const struct {
        int key;
        const char *config_key;
    } shape[] = {{CLI_OPT_ID_CELL, "cell"},         {CLI_OPT_ID_ITEM_DIM, "item_dim"}, {CLI_OPT_ID_ACTION_DIM, "action_dim"},
                 {CLI_OPT_ID_HIDDEN, "hidden"},     {CLI_OPT_ID_ATTN_DIM, "attn_dim"}, {CLI_OPT_ID_OUT_DIM, "out_dim"},
                 {CLI_OPT_ID_WINDOW, "window"},     {CLI_OPT_ID_LAYERS, "layers"},     {CLI_OPT_ID_STATE_DIM, "state_dim"},
                 {CLI_OPT_ID_FFN_DIM, "ffn_dim"},   {CLI_OPT_ID_ATTENTION, "attention"}, {CLI_OPT_ID_BLOCKS, "blocks"},
                 {CLI_OPT_ID_HEADS, "heads"}};
    for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++)
        if (key == shape[i].key) return model_config_set(&m->cfg, shape[i].config_key, value, err, errlen) ? -1 : 1;
    int64_t x = 0;
    if (key == CLI_OPT_ID_NAME) m->name = value;
    else if (key == CLI_OPT_ID_INIT_SEED) {
        if (cli_int(value, 0, INT64_MAX, &x, err, errlen)) return -1;
        m->init_seed = (uint64_t)x;
    } else {
        return 0;
    }
    return 1;
}

/* ---- backends ------------------------------------------------------------------------------ */

int cli_backend_parse(const char *v, model_backend *out, char *err, size_t errlen) {
    int i = settings_enum_index("model.backend", v);
    if (i < 0) {
        snprintf(err, errlen, "'%s' is not dnnl or scalar", v);
        return -1;
    }
    *out = (model_backend)i;   /* model.backend lists its values in model_backend's order */
    return 0;
}

const char *cli_backend_name(model_backend b) { return b == MODEL_BACKEND_DNNL ? "dnnl" : "scalar"; }
