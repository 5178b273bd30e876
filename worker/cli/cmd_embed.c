/* cmd_embed: `ievo embed`, text in, Universal Sentence Encoder lite vectors out, for people and
 * scripts.
 *
 * Reads lines of UTF-8 text on stdin (a trailing "\r" is dropped; every line, empty ones too,
 * gets exactly one output line, in order), encodes them in batches with model/use_encoder.h and
 * prints one JSON object per line:
 *     {"text": "...", "tokens": N, "vector": [512 floats]}         (+ "ids": [...] with --ids)
 * "tokens" counts every token id of the text; the vector reads the first 128. The weights come
 * from scripts/fetch-use-lite.sh's cache directory. --stats prints the encode speed to stderr
 * (time inside the encoder only, not reading or printing), which bench/bench_embed.sh reads.
 * Exit codes: 0 done, 1 failed (the message says why), 2 usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "json.h"
#include "model.h"
#include "use_encoder.h"

#define EMBED_DEFAULT_BATCH 32
#define EMBED_DEFAULT_MAX_LINE 65536

static void embed_usage(FILE *f) {
    fprintf(f,
            "usage: ievo embed [--weights DIR] [--backend onednn|scalar] [--batch N] [--ids]\n"
            "                  [--max-line BYTES] [--stats] [--tokenize | --normalize]\n"
            "\n"
            "Reads lines of UTF-8 text on stdin and prints, for each line, one JSON line\n"
            "  {\"text\": ..., \"tokens\": N, \"vector\": [512 floats]}\n"
            "with the Universal Sentence Encoder lite (512-d unit vectors; cosine = dot product).\n"
            "  --weights DIR      use_lite.f32 + vocab.json, as written by scripts/fetch-use-lite.sh\n"
            "                     (default ${IEVO_CACHE:-$HOME/.cache/ievo}/use-lite)\n"
            "  --backend B        onednn (default) or scalar (reference kernels, 100-200x slower)\n"
            "  --batch N          texts per encoder call, 1..4096 (default %d); results do not depend on it\n"
            "  --ids              also print \"ids\", the token ids (all of them; the vector reads 128)\n"
            "  --max-line BYTES   longest line accepted (default %d); a longer line is an error\n"
            "  --stats            print texts/s and tokens/s of the encoder itself to stderr at the end\n"
            "  --tokenize         print {\"text\", \"tokens\", \"ids\"} per line instead (reads only vocab.json)\n"
            "  --normalize        print {\"text\", \"nfkc\"} per line instead: the NFKC text the\n"
            "                     tokenizer sees (needs no weights)\n",
            EMBED_DEFAULT_BATCH, EMBED_DEFAULT_MAX_LINE);
}

typedef struct {
    const char *weights;
    use_backend backend;
    int batch, ids, stats, normalize, tokenize;
    long max_line;
} embed_opts;

static double embed_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Returns 0, 1 for --help, -1 on a usage error (printed). */
static int embed_parse_args(int argc, char **argv, embed_opts *o) {
    o->backend = USE_BACKEND_ONEDNN;
    o->batch = EMBED_DEFAULT_BATCH;
    o->max_line = EMBED_DEFAULT_MAX_LINE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return 1;
        if (!strcmp(a, "--ids")) { o->ids = 1; continue; }
        if (!strcmp(a, "--stats")) { o->stats = 1; continue; }
        if (!strcmp(a, "--normalize")) { o->normalize = 1; continue; }
        if (!strcmp(a, "--tokenize")) { o->tokenize = 1; continue; }
        if (i + 1 >= argc) {
            fprintf(stderr, "ievo embed: unknown option or missing value: %s\n", a);
            return -1;
        }
        const char *v = argv[++i];
        char *end;
        if (!strcmp(a, "--weights")) {
            o->weights = v;
        } else if (!strcmp(a, "--backend")) {
            int b = use_backend_parse(v);
            if (b < 0) {
                fprintf(stderr, "ievo embed: --backend must be onednn or scalar, not '%s'\n", v);
                return -1;
            }
            o->backend = (use_backend)b;
        } else if (!strcmp(a, "--batch")) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 4096) {
                fprintf(stderr, "ievo embed: --batch must be 1..4096, not '%s'\n", v);
                return -1;
            }
            o->batch = (int)n;
        } else if (!strcmp(a, "--max-line")) {
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > USE_TEXT_MAX_BYTES) {
                fprintf(stderr, "ievo embed: --max-line must be 1..%d, not '%s'\n", USE_TEXT_MAX_BYTES, v);
                return -1;
            }
            o->max_line = n;
        } else {
            fprintf(stderr, "ievo embed: unknown option %s\n", a);
            return -1;
        }
    }
    return 0;
}

/* Prints the batch's n JSON lines. */
static int embed_print(json_buf *b, use_encoder *enc, int want_ids, char **texts, const size_t *lens, int n,
                       const int *ntok, const float *vec, int *idbuf, char *err, size_t errlen) {
    for (int i = 0; i < n; i++) {
        b->len = 0;
        json_buf_append(b, "{\"text\": ", 9);
        json_buf_string(b, texts[i], lens[i]);
        json_buf_printf(b, ", \"tokens\": %d", ntok[i]);
        if (want_ids) {
            int k = use_tokenizer_encode(use_encoder_tokenizer(enc), texts[i], lens[i], idbuf, ntok[i], err, errlen);
            if (k < 0) return -1;
            json_buf_append(b, ", \"ids\": [", 10);
            for (int j = 0; j < k; j++) json_buf_printf(b, j ? ", %d" : "%d", idbuf[j]);
            json_buf_append(b, "]", 1);
        }
        json_buf_append(b, ", \"vector\": [", 13);
        for (int j = 0; j < USE_DIM; j++) {
            if (j) json_buf_append(b, ", ", 2);
            json_buf_float(b, vec[(long)i * USE_DIM + j]);
        }
        json_buf_append(b, "]}\n", 3);
        if (b->failed) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (fwrite(b->data, 1, b->len, stdout) != b->len) {
            snprintf(err, errlen, "writing stdout: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int embed_tokenize_line(json_buf *b, use_tokenizer *tok, const char *text, size_t len, int **ids, size_t *cap,
                               char *err, size_t errlen) {
    int n = use_tokenizer_encode(tok, text, len, *ids, (int)*cap, err, errlen);
    if (n < 0) return -1;
    if ((size_t)n > *cap) { /* again with room for all of them */
        int *p = realloc(*ids, (size_t)n * sizeof *p);
        if (!p) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        *ids = p;
        *cap = (size_t)n;
        if (use_tokenizer_encode(tok, text, len, *ids, (int)*cap, err, errlen) < 0) return -1;
    }
    b->len = 0;
    json_buf_append(b, "{\"text\": ", 9);
    json_buf_string(b, text, len);
    json_buf_printf(b, ", \"tokens\": %d, \"ids\": [", n);
    for (int j = 0; j < n; j++) json_buf_printf(b, j ? ", %d" : "%d", (*ids)[j]);
    json_buf_append(b, "]}\n", 3);
    if (b->failed) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return fwrite(b->data, 1, b->len, stdout) == b->len ? 0 : -1;
}

static int embed_normalize_line(json_buf *b, const char *text, size_t len, char *err, size_t errlen) {
    char *nf;
    size_t nlen;
    if (use_tokenizer_nfkc_utf8(text, len, &nf, &nlen, err, errlen)) return -1;
    b->len = 0;
    json_buf_append(b, "{\"text\": ", 9);
    json_buf_string(b, text, len);
    json_buf_append(b, ", \"nfkc\": ", 10);
    json_buf_string(b, nf, nlen);
    json_buf_append(b, "}\n", 2);
    free(nf);
    if (b->failed) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return fwrite(b->data, 1, b->len, stdout) == b->len ? 0 : -1;
}

int cmd_embed(int argc, char **argv) {
    embed_opts o = {0};
    int rc = embed_parse_args(argc, argv, &o);
    if (rc > 0) {
        embed_usage(stdout);
        return 0;
    }
    if (rc < 0 || (o.tokenize && o.normalize)) {
        if (rc == 0) fprintf(stderr, "ievo embed: --tokenize and --normalize exclude each other\n");
        fprintf(stderr, "(ievo embed --help lists the options)\n");
        return 2;
    }
    char dirbuf[4096], err[1024] = "";
    if (!o.weights) {
        const char *cache = getenv("IEVO_CACHE"), *home = getenv("HOME");
        if (cache && *cache) snprintf(dirbuf, sizeof dirbuf, "%s/use-lite", cache);
        else snprintf(dirbuf, sizeof dirbuf, "%s/.cache/ievo/use-lite", home ? home : ".");
        o.weights = dirbuf;
    }
    use_encoder *enc = NULL;
    use_tokenizer *tok = NULL;
    size_t tok_cap = 0;
    char **texts = calloc((size_t)o.batch, sizeof *texts);
    size_t *lens = calloc((size_t)o.batch, sizeof *lens);
    int *ntok = calloc((size_t)o.batch, sizeof *ntok);
    int *idbuf = NULL;
    float *vec = malloc((size_t)o.batch * USE_DIM * sizeof *vec);
    char *line = NULL;
    size_t cap = 0;
    json_buf b = {0};
    int n = 0, status = 1;
    long lineno = 0, total_texts = 0, total_tokens = 0;
    double t_encode = 0, t_start = embed_now();
    if (!texts || !lens || !ntok || !vec) {
        fprintf(stderr, "ievo embed: out of memory\n");
        goto done;
    }
    if (o.tokenize) {
        char vpath[4200];
        snprintf(vpath, sizeof vpath, "%s/%s", o.weights, USE_VOCAB_FILE);
        if (use_tokenizer_load(&tok, vpath, err, sizeof err)) {
            fprintf(stderr, "ievo embed: %s (run scripts/fetch-use-lite.sh to download the vocabulary)\n", err);
            goto done;
        }
    } else if (!o.normalize) {
        model_runtime_init(1);
        double t0 = embed_now();
        if (use_encoder_open(&enc, o.weights, o.backend, err, sizeof err)) {
            fprintf(stderr, "ievo embed: %s\n", err);
            goto done;
        }
        if (o.stats)
            fprintf(stderr, "ievo embed: loaded %s (sha256 checked) in %.3f s; backend %s (%s)\n", o.weights,
                    embed_now() - t0, use_backend_name(o.backend), use_encoder_impl(enc));
    }
    for (;;) {
        ssize_t got = getline(&line, &cap, stdin);
        int eof = got < 0;
        if (eof && ferror(stdin)) {
            fprintf(stderr, "ievo embed: reading stdin: %s\n", strerror(errno));
            goto done;
        }
        if (!eof) {
            lineno++;
            size_t len = (size_t)got;
            if (len && line[len - 1] == '\n') len--;
            if (len && line[len - 1] == '\r') len--;
            if ((long)len > o.max_line) {
                fprintf(stderr, "ievo embed: line %ld has %zu bytes, more than --max-line %ld\n", lineno, len,
                        o.max_line);
                goto done;
            }
            if (o.tokenize) {
                if (embed_tokenize_line(&b, tok, line, len, &idbuf, &tok_cap, err, sizeof err)) {
                    fprintf(stderr, "ievo embed: line %ld: %s\n", lineno, err[0] ? err : "cannot write stdout");
                    goto done;
                }
                continue;
            }
            if (o.normalize) {
                if (embed_normalize_line(&b, line, len, err, sizeof err)) {
                    fprintf(stderr, "ievo embed: line %ld: %s\n", lineno, err[0] ? err : "cannot write stdout");
                    goto done;
                }
                continue;
            }
            free(texts[n]);
            if (!(texts[n] = malloc(len + 1))) {
                fprintf(stderr, "ievo embed: out of memory\n");
                goto done;
            }
            memcpy(texts[n], line, len);
            texts[n][len] = 0;
            lens[n++] = len;
        }
        if (n == o.batch || (eof && n > 0)) {
            double t0 = embed_now();
            if (use_encoder_encode(enc, (const char *const *)texts, lens, n, vec, ntok, err, sizeof err)) {
                fprintf(stderr, "ievo embed: lines %ld..%ld: %s\n", lineno - n + 1, lineno, err);
                goto done;
            }
            t_encode += embed_now() - t0;
            total_texts += n;
            for (int i = 0; i < n; i++) total_tokens += ntok[i] < USE_MAX_TOKENS ? ntok[i] : USE_MAX_TOKENS;
            if (o.ids) { /* room for the longest id list of the batch */
                size_t most = 1;
                for (int i = 0; i < n; i++) most = (size_t)ntok[i] > most ? (size_t)ntok[i] : most;
                if (most > tok_cap) {
                    int *p = realloc(idbuf, most * sizeof *p);
                    if (!p) {
                        fprintf(stderr, "ievo embed: out of memory\n");
                        goto done;
                    }
                    idbuf = p;
                    tok_cap = most;
                }
            }
            if (embed_print(&b, enc, o.ids, texts, lens, n, ntok, vec, idbuf, err, sizeof err)) {
                fprintf(stderr, "ievo embed: %s\n", err);
                goto done;
            }
            n = 0;
        }
        if (eof) break;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "ievo embed: writing stdout: %s\n", strerror(errno));
        goto done;
    }
    if (o.stats && enc)
        fprintf(stderr,
                "ievo embed: %ld texts, %ld tokens encoded in %.3f s (batch %d): %.1f texts/s, %.1f tokens/s "
                "(%.1f s wall)\n",
                total_texts, total_tokens, t_encode, o.batch, t_encode > 0 ? total_texts / t_encode : 0.0,
                t_encode > 0 ? total_tokens / t_encode : 0.0, embed_now() - t_start);
    status = 0;
done:
    if (texts)
        for (int i = 0; i < o.batch; i++) free(texts[i]);
    free(texts);
    free(lens);
    free(ntok);
    free(idbuf);
    free(vec);
    free(line);
    json_buf_free(&b);
    use_tokenizer_free(tok);
    use_encoder_free(enc);
    return status;
}
