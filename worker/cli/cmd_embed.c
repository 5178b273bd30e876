/* cmd_embed: `ievo embed`, text in, Universal Sentence Encoder lite vectors out, for people and
 * scripts.
 *
 * Reads lines of UTF-8 text on stdin (a trailing "\r" is dropped; every line, empty ones too,
 * gets exactly one output line, in order), encodes them in batches with model/use_encoder.h and
 * prints one JSON object per line:
 *     {"text": "...", "tokens": N, "vector": [512 floats]}         (+ "ids": [...] with --ids)
 * "tokens" counts every token id of the text; the vector reads the first 128. The weights come
 * from scripts/fetch-use-lite.sh's directory (text.encoder.dir). --stats prints the encode
 * speed to stderr (time inside the encoder only, not reading or printing), which
 * bench/bench_embed.sh reads. The lines keep the spaces after ':' and ',' that scripts match.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "clock.h"
#include "commands.h"
#include "json_text.h"
#include "model.h"
#include "settings.h"
#include "use_encoder.h"

#define EMBED_DEFAULT_BATCH 32
#define EMBED_DEFAULT_MAX_LINE 65536
#define EMBED_DUMP JSON_REAL_PRECISION(9)   /* not compact: ", " and ": ", which scripts match */

enum { OPT_BATCH = CLI_OPT_ID_FIRST_FREE, OPT_IDS, OPT_MAX_LINE, OPT_STATS, OPT_TOKENIZE, OPT_NORMALIZE };

static const cli_option OPTS[] = {
    {"text-encoder", CLI_OPT_ID_TEXT_ENCODER, "DIR", "use_lite.f32 + vocab.json, as scripts/fetch-use-lite.sh writes them", "text.encoder.dir"},
    CLI_OPT_BACKEND("model.backend"),
    {"batch", OPT_BATCH, "N", "texts per encoder call, 1..4096 (default 32); results do not depend on it", NULL},
    {"ids", OPT_IDS, NULL, "also print \"ids\", the token ids (all of them; the vector reads 128)", NULL},
    {"max-line", OPT_MAX_LINE, "BYTES", "longest line accepted (default 65536); a longer line is an error", NULL},
    {"stats", OPT_STATS, NULL, "print texts/s and tokens/s of the encoder itself to stderr at the end", NULL},
    {"tokenize", OPT_TOKENIZE, NULL, "print {\"text\", \"tokens\", \"ids\"} per line instead (reads only vocab.json)", NULL},
    {"normalize", OPT_NORMALIZE, NULL, "print {\"text\", \"nfkc\"} per line instead: the NFKC text the tokenizer sees", NULL},
    CLI_OPT_END,
};

static const cli_command CMD = {
    .name = "embed",
    .synopsis = "[--text-encoder DIR] [--backend dnnl|scalar] [--batch N] [--ids] [--max-line BYTES] [--stats]\n"
                " [--tokenize | --normalize]",
    .about = "Reads lines of UTF-8 text on stdin and prints, for each line, one JSON line\n"
             "  {\"text\": ..., \"tokens\": N, \"vector\": [512 floats]}\n"
             "with the Universal Sentence Encoder lite (512-d unit vectors; cosine = dot product).\n",
    .opts = OPTS,
    .settings = SETTINGS_CMD_EMBED,
};

typedef struct {
    cli_text text;
    int batch, ids, stats, normalize, tokenize;
    int64_t max_line;
} embed_opts;

static int on_option(void *ctx, int key, const char *value, char *err, size_t errlen) {
    embed_opts *o = ctx;
    int64_t x = 0;
    if (cli_text_option(&o->text, key, value)) return 0;
    switch (key) {
    case OPT_BATCH:
        if (cli_int(value, 1, 4096, &x, err, errlen)) return -1;
        o->batch = (int)x;
        break;
    case OPT_MAX_LINE: return cli_int(value, 1, USE_TEXT_MAX_BYTES, &o->max_line, err, errlen);
    case OPT_IDS: o->ids = 1; break;
    case OPT_STATS: o->stats = 1; break;
    case OPT_TOKENIZE: o->tokenize = 1; break;
    case OPT_NORMALIZE: o->normalize = 1; break;
    }
    return 0;
}

static int print_json(json_t *line, char *err, size_t errlen) {
    int bad = !line || json_dumpf(line, stdout, EMBED_DUMP) || putchar('\n') == EOF;
    json_decref(line);
    if (bad) snprintf(err, errlen, "cannot write stdout: %s", line ? strerror(errno) : "out of memory");
    return bad ? -1 : 0;
}

static json_t *ids_json(const int *ids, int n) {
    json_t *a = json_array();
    for (int j = 0; a && j < n; j++) json_array_append_new(a, json_integer(ids[j]));
    return a;
}

/* ---- the three modes: one line in, one JSON line out ---------------------------------------- */

typedef struct {
    const embed_opts *o;
    use_encoder *enc;
    use_tokenizer *tok;      /* --tokenize */
    int *ids;                /* token ids of one text */
    size_t ids_cap;
    char **texts;            /* the batch */
    size_t *lens;
    int *ntok, n;
    float *vec;
    long lineno, total_texts, total_tokens;
    double t_encode;
} embed_run;

/* Room for n token ids. */
static int embed_ids_room(embed_run *r, size_t n, char *err, size_t errlen) {
    if (n <= r->ids_cap) return 0;
    int *p = realloc(r->ids, n * sizeof *p);
    if (!p) return snprintf(err, errlen, "out of memory"), -1;
    r->ids = p;
    r->ids_cap = n;
    return 0;
}

static int embed_tokenize_line(embed_run *r, const char *text, size_t len, char *err, size_t errlen) {
    int n = use_tokenizer_encode(r->tok, text, len, r->ids, (int)r->ids_cap, err, errlen);
    if (n < 0) return -1;
    if ((size_t)n > r->ids_cap) { /* again with room for all of them */
        if (embed_ids_room(r, (size_t)n, err, errlen) ||
            use_tokenizer_encode(r->tok, text, len, r->ids, (int)r->ids_cap, err, errlen) < 0)
            return -1;
    }
    return print_json(json_pack("{s:o,s:i,s:o}", "text", json_string_lossy(text, len), "tokens", n, "ids",
                                ids_json(r->ids, n)),
                      err, errlen);
}

static int embed_normalize_line(const char *text, size_t len, char *err, size_t errlen) {
    char *nf;
    size_t nlen;
    if (use_tokenizer_nfkc_utf8(text, len, &nf, &nlen, err, errlen)) return -1;
    int rc = print_json(json_pack("{s:o,s:o}", "text", json_string_lossy(text, len), "nfkc", json_string_lossy(nf, nlen)),
                        err, errlen);
    free(nf);
    return rc;
}

/* Encodes the batch and prints its lines. */
static int embed_flush(embed_run *r, char *err, size_t errlen) {
    if (r->n == 0) return 0;
    double t0 = clock_mono_s();
    if (use_encoder_encode(r->enc, (const char *const *)r->texts, r->lens, r->n, r->vec, r->ntok, err, errlen)) {
        char inner[512];
        snprintf(inner, sizeof inner, "%s", err);
        snprintf(err, errlen, "lines %ld..%ld: %s", r->lineno - r->n + 1, r->lineno, inner);
        return -1;
    }
    r->t_encode += clock_mono_s() - t0;
    r->total_texts += r->n;
    for (int i = 0; i < r->n; i++) {
        r->total_tokens += r->ntok[i] < USE_MAX_TOKENS ? r->ntok[i] : USE_MAX_TOKENS;
        json_t *vec = json_array(), *line = NULL;
        for (int j = 0; vec && j < USE_DIM; j++) json_array_append_new(vec, json_real_or_null(r->vec[(long)i * USE_DIM + j]));
        if (r->o->ids) {
            int k = embed_ids_room(r, (size_t)(r->ntok[i] > 0 ? r->ntok[i] : 1), err, errlen) ? -1
                    : use_tokenizer_encode(use_encoder_tokenizer(r->enc), r->texts[i], r->lens[i], r->ids,
                                           (int)r->ids_cap, err, errlen);
            if (k < 0) return json_decref(vec), -1;
            line = json_pack("{s:o,s:i,s:o,s:o}", "text", json_string_lossy(r->texts[i], r->lens[i]), "tokens",
                             r->ntok[i], "ids", ids_json(r->ids, k), "vector", vec);
        } else {
            line = json_pack("{s:o,s:i,s:o}", "text", json_string_lossy(r->texts[i], r->lens[i]), "tokens", r->ntok[i],
                             "vector", vec);
        }
        if (print_json(line, err, errlen)) return -1;
    }
    r->n = 0;
    return 0;
}

/* One line of stdin (its newline and '\r' gone), by the mode. */
static int embed_line(embed_run *r, const char *line, size_t len, char *err, size_t errlen) {
    if (r->o->tokenize) return embed_tokenize_line(r, line, len, err, errlen);
    if (r->o->normalize) return embed_normalize_line(line, len, err, errlen);
    free(r->texts[r->n]);
    if (!(r->texts[r->n] = malloc(len + 1))) return snprintf(err, errlen, "out of memory"), -1;
    memcpy(r->texts[r->n], line, len);
    r->texts[r->n][len] = 0;
    r->lens[r->n++] = len;
    return r->n == r->o->batch ? embed_flush(r, err, errlen) : 0;
}

/* ---- the run -------------------------------------------------------------------------------- */

/* What the mode needs: the vocabulary alone (--tokenize), nothing (--normalize), the encoder. */
static int embed_open(embed_run *r, model_backend backend, char *err, size_t errlen) {
    const embed_opts *o = r->o;
    if (o->tokenize) {
        char vpath[4200];
        snprintf(vpath, sizeof vpath, "%s/%s", o->text.encoder_dir, USE_VOCAB_FILE);
        if (use_tokenizer_load(&r->tok, vpath, err, errlen)) return -1;
        return 0;
    }
    if (o->normalize) return 0;
    model_runtime_init(1);
    double t0 = clock_mono_s();
    use_backend b = backend == MODEL_BACKEND_DNNL ? USE_BACKEND_ONEDNN : USE_BACKEND_SCALAR;
    if (use_encoder_open(&r->enc, o->text.encoder_dir, b, err, errlen)) return -1;
    if (o->stats)
        fprintf(stderr, "ievo embed: loaded %s (sha256 checked) in %.3f s; backend %s (%s)\n", o->text.encoder_dir,
                clock_mono_s() - t0, cli_backend_name(backend), use_encoder_impl(r->enc));
    return 0;
}

static int embed_stdin(embed_run *r, char *err, size_t errlen) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    while (!rc && (got = getline(&line, &cap, stdin)) >= 0) {
        r->lineno++;
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        if (len && line[len - 1] == '\r') len--;
        if ((int64_t)len > r->o->max_line)
            rc = -1, snprintf(err, errlen, "line %ld has %zu bytes, more than --max-line %lld", r->lineno, len,
                              (long long)r->o->max_line);
        else if ((rc = embed_line(r, line, len, err, errlen)) && r->o->tokenize + r->o->normalize) {
            char inner[512];
            snprintf(inner, sizeof inner, "%s", err);
            snprintf(err, errlen, "line %ld: %s", r->lineno, inner);
        }
    }
    free(line);
    if (!rc && ferror(stdin)) rc = -1, snprintf(err, errlen, "reading stdin: %s", strerror(errno));
    return rc ? rc : embed_flush(r, err, errlen);
}

static int embed_main(const embed_opts *o, model_backend backend) {
    char err[1024] = "";
    embed_run r = {.o = o};
    double t_start = clock_mono_s();
    int rc = CLI_FAILED;
    r.texts = calloc((size_t)o->batch, sizeof *r.texts);
    r.lens = calloc((size_t)o->batch, sizeof *r.lens);
    r.ntok = calloc((size_t)o->batch, sizeof *r.ntok);
    r.vec = malloc((size_t)o->batch * USE_DIM * sizeof *r.vec);
    if (!r.texts || !r.lens || !r.ntok || !r.vec) snprintf(err, sizeof err, "out of memory");
    else if (embed_open(&r, backend, err, sizeof err))
        fprintf(stderr, "ievo embed: %s (scripts/fetch-use-lite.sh downloads the weights)\n", err), err[0] = 0;
    else if (embed_stdin(&r, err, sizeof err) == 0) {
        if (fflush(stdout)) snprintf(err, sizeof err, "writing stdout: %s", strerror(errno));
        else rc = CLI_OK;
    }
    if (rc) {
        if (err[0]) fprintf(stderr, "ievo embed: %s\n", err);
    } else if (o->stats && r.enc) {
        fprintf(stderr,
                "ievo embed: %ld texts, %ld tokens encoded in %.3f s (batch %d): %.1f texts/s, %.1f tokens/s "
                "(%.1f s wall)\n",
                r.total_texts, r.total_tokens, r.t_encode, o->batch, r.t_encode > 0 ? r.total_texts / r.t_encode : 0.0,
                r.t_encode > 0 ? r.total_tokens / r.t_encode : 0.0, clock_mono_s() - t_start);
    }
    for (int i = 0; r.texts && i < o->batch; i++) free(r.texts[i]);
    free(r.texts), free(r.lens), free(r.ntok), free(r.vec), free(r.ids);
    use_tokenizer_free(r.tok);
    use_encoder_free(r.enc);
    return rc;
}

int cmd_embed(int argc, char **argv) {
    embed_opts o = {.batch = EMBED_DEFAULT_BATCH, .max_line = EMBED_DEFAULT_MAX_LINE};
    cli_args a;
    char err[512];
    int backend = 0;
    int rc = cli_parse(&CMD, argc, argv, on_option, &o, &a);
    if (rc == CLI_OK && o.tokenize && o.normalize) rc = cli_usage_error(&CMD, "--tokenize and --normalize exclude each other");
    if (rc == CLI_OK && settings_enum(&a.cfg, "model.backend", &backend, err, sizeof err))
        rc = cli_usage_error(&CMD, "%s", err);
    if (rc == CLI_OK) {
        cli_text_resolve(&o.text, &a.cfg);
        rc = embed_main(&o, (model_backend)backend);
    }
    cli_args_free(&a);
    return rc < 0 ? CLI_OK : rc;
}
