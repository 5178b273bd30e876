/* oracle_model: the C side of tests/oracle/test_model_oracle.py. It creates model files and
 * replays event files through model_step, dumping what the Python oracle recomputes with torch.
 *
 *   oracle_model init OUT CELL E A H K D W N_ITEMS N_ACTIONS SEED [TEXT_DIM]
 *       items "m1".."m<N_ITEMS>", actions "act1".."act<N_ACTIONS>"; writes a model file (a text
 *       model when TEXT_DIM > 0, with a random text.b so that the adaptor's bias counts). CELL is
 *       lstm, gru, none or lru:L:N:F (an LRU stack of L layers, complex state N, feed-forward F),
 *       each optionally followed by +tf:B:NH:F (B transformer blocks of NH heads and feed-forward F
 *       instead of the window attention); every LayerNorm's gains and shifts are made random so
 *       that both count.
 *   oracle_model run MODEL EVENTS BACKEND MAX_BATCH OUT_VEC OUT_STATES [TEXTS]
 *       EVENTS is text: "users U", then "wave" lines each followed by that wave's events
 *       "e USER ITEM_ID ACTION_ID TS HAS_VALUE VALUE [EVENT_TEXT_ROW]" (string ids, mapped with the
 *       model's vocabularies, unknown ids -> OOV; row -1 = no event text), and, between waves,
 *       "text ITEM_ID ROW" (the item's catalogue text is now row ROW, -1 = none; the next steps
 *       look it up by model_item_key(ITEM_ID)). TEXTS is a file of float32 rows of TEXT_DIM.
 *       BACKEND is scalar or dnnl. OUT_VEC gets, per event in file order, D float32 of u_t then
 *       the float32 drift; OUT_STATES the U state blobs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "model_init.h"

static int usage(void) {
    fprintf(stderr, "usage: oracle_model init OUT CELL E A H K D W N_ITEMS N_ACTIONS SEED [TEXT_DIM]\n"
                    "       oracle_model run MODEL EVENTS scalar|dnnl MAX_BATCH OUT_VEC OUT_STATES [TEXTS]\n");
    return 2;
}

/* The item text lookup of a run: item keys -> rows of the TEXTS file. */
#define MAX_TEXT_ITEMS 4096
static struct {
    uint64_t key[MAX_TEXT_ITEMS];
    const float *vec[MAX_TEXT_ITEMS];
    int n;
} g_lut;

static const float *lut_text(void *ctx, uint64_t key) {
    (void)ctx;
    for (int i = 0; i < g_lut.n; i++)
        if (g_lut.key[i] == key) return g_lut.vec[i];
    return NULL;
}

static int lut_set(uint64_t key, const float *v) {
    for (int i = 0; i < g_lut.n; i++)
        if (g_lut.key[i] == key) return g_lut.vec[i] = v, 0;
    if (g_lut.n == MAX_TEXT_ITEMS) return -1;
    g_lut.key[g_lut.n] = key, g_lut.vec[g_lut.n++] = v;
    return 0;
}

static int cmd_init(char **a, int text_dim) {
    model_config cfg;
    char err[MODEL_ERR_LEN];
    model_config_default(&cfg);
    cfg.text_dim = text_dim;
    const char *keys[] = {"cell", "item_dim", "action_dim", "hidden", "attn_dim", "out_dim", "window"};
    int lru = sscanf(a[1], "lru:%d:%d:%d", &cfg.layers, &cfg.state_dim, &cfg.ffn_dim) == 3;
    char cell[16];
    snprintf(cell, sizeof cell, "%.*s", (int)strcspn(a[1], ":+"), a[1]);
    const char *tf = strstr(a[1], "+tf:");
    if (tf && sscanf(tf, "+tf:%d:%d:%d", &cfg.blocks, &cfg.heads, &cfg.ffn_dim) == 3) cfg.attn = MODEL_ATTN_TF;
    for (int i = 0; i < 7; i++)
        if (model_config_set(&cfg, keys[i], i == 0 ? cell : a[1 + i], err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
    int ni = atoi(a[8]), na = atoi(a[9]);
    uint64_t seed = strtoull(a[10], NULL, 10);
    char **items = malloc((size_t)ni * sizeof *items + 1), **acts = malloc((size_t)na * sizeof *acts + 1);
    for (int i = 0; i < ni; i++) {
        items[i] = malloc(24);
        snprintf(items[i], 24, "m%d", i + 1);
    }
    for (int i = 0; i < na; i++) {
        acts[i] = malloc(24);
        snprintf(acts[i], 24, "act%d", i + 1);
    }
    model *m = NULL;
    int rc = model_init_random(&m, &cfg, "oracle", (const char *const *)items, ni, (const char *const *)acts, na, seed,
                               err, sizeof err);
    if (rc == 0 && text_dim > 0) { /* a random text.b: the bias of the adaptor must count */
        for (int i = 0; i < text_dim; i++) m->t[T_TEXT_B].data[i] = 0.02f * (float)((i * 37) % 11 - 5);
        rc = model_add_heads(m, 0, 0, err, sizeof err); /* identity only */
    }
    if (rc == 0 && (lru || tf)) { /* LayerNorm gains and shifts away from 1 and 0 */
        const int ln[] = {T_LRU_LN, T_TF_LN, T_TF_LNF};
        for (int k = 0; k < 3; k++)
            for (size_t i = 0; i < m->t[ln[k]].numel; i++) m->t[ln[k]].data[i] += 0.1f * (float)((int)(i * 13 % 9) - 4);
        rc = model_add_heads(m, 0, 0, err, sizeof err);
    }
    if (rc == 0) rc = model_set_meta(m, "{\"purpose\":\"oracle test\",\"seed\":1}", err, sizeof err);
    if (rc == 0) rc = model_save(m, a[0], err, sizeof err);
    if (rc) fprintf(stderr, "oracle_model init: %s\n", err);
    for (int i = 0; i < ni; i++) free(items[i]);
    for (int i = 0; i < na; i++) free(acts[i]);
    free(items);
    free(acts);
    model_free(m);
    return rc ? 1 : 0;
}

static int cmd_run(char **a, const char *texts_path) {
    char err[MODEL_ERR_LEN];
    model *m = NULL;
    float *texts = NULL;
    long n_texts = 0;
    if (model_load(&m, a[0], err, sizeof err)) {
        fprintf(stderr, "oracle_model run: %s\n", err);
        return 1;
    }
    model_backend be = strcmp(a[2], "dnnl") == 0 ? MODEL_BACKEND_DNNL : MODEL_BACKEND_SCALAR;
    int max_batch = atoi(a[3]), D = m->cfg.out_dim, rc = 1;
    model_runtime_init(1);
    model_runner *r = NULL;
    FILE *in = fopen(a[1], "r"), *ov = fopen(a[4], "wb"), *os = fopen(a[5], "wb");
    size_t ss = model_state_size(m);
    int users = 0;
    char *pool = NULL;
    void **st = calloc((size_t)max_batch, sizeof *st);
    model_event *ev = calloc((size_t)max_batch, sizeof *ev);
    float *vec = calloc((size_t)max_batch * D, sizeof *vec), *drift = calloc((size_t)max_batch, sizeof *drift);
    if (!in || !ov || !os || !st || !ev || !vec || !drift) {
        fprintf(stderr, "oracle_model run: cannot open files\n");
        goto done;
    }
    if (model_runner_new(&r, m, be, max_batch, err, sizeof err)) {
        fprintf(stderr, "oracle_model run: %s\n", err);
        goto done;
    }
    if (texts_path) {
        FILE *tf = fopen(texts_path, "rb");
        long T = m->cfg.text_dim;
        if (!tf || T <= 0 || fseek(tf, 0, SEEK_END) || (n_texts = ftell(tf) / (4 * T)) <= 0 || fseek(tf, 0, SEEK_SET) ||
            !(texts = malloc((size_t)n_texts * T * 4)) || fread(texts, 4 * T, (size_t)n_texts, tf) != (size_t)n_texts) {
            fprintf(stderr, "oracle_model run: cannot read the texts %s for text_dim %ld\n", texts_path, T);
            if (tf) fclose(tf);
            goto done;
        }
        fclose(tf);
        model_runner_set_text(r, lut_text, NULL);
    }
    if (fscanf(in, " users %d", &users) != 1 || users < 1) {
        fprintf(stderr, "oracle_model run: bad events header\n");
        goto done;
    }
    pool = malloc(ss * (size_t)users);
    for (int u = 0; u < users; u++) model_state_init(m, pool + ss * (size_t)u);
    char word[16];
    int n = 0, more = fscanf(in, " %15s", word) == 1;
    while (more) {
        if (strcmp(word, "text") == 0) {
            char item[256];
            long row;
            if (fscanf(in, " %255s %ld", item, &row) != 2 || row >= n_texts ||
                lut_set(model_item_key(item, strlen(item)), row < 0 ? NULL : texts + (size_t)row * m->cfg.text_dim)) {
                fprintf(stderr, "oracle_model run: bad text line\n");
                goto done;
            }
            more = fscanf(in, " %15s", word) == 1;
            continue;
        }
        if (strcmp(word, "wave") != 0) {
            fprintf(stderr, "oracle_model run: expected 'wave', got '%s'\n", word);
            goto done;
        }
        n = 0;
        while ((more = fscanf(in, " %15s", word) == 1) && strcmp(word, "e") == 0) {
            int user, hv;
            char item[256], action[256];
            long long ts;
            float value;
            long trow = -1;
            if (fscanf(in, " %d %255s %255s %lld %d %f", &user, item, action, &ts, &hv, &value) != 6 || user < 0 ||
                user >= users || n == max_batch || (texts && (fscanf(in, " %ld", &trow) != 1 || trow >= n_texts))) {
                fprintf(stderr, "oracle_model run: bad event line\n");
                goto done;
            }
            st[n] = pool + ss * (size_t)user;
            ev[n] = (model_event){model_item_index(m, item, strlen(item)), model_action_index(m, action, strlen(action)),
                                  ts, value, hv, texts ? model_item_key(item, strlen(item)) : 0,
                                  trow >= 0 ? texts + (size_t)trow * m->cfg.text_dim : NULL};
            n++;
        }
        if (model_step(r, n, st, ev, vec, drift, err, sizeof err)) {
            fprintf(stderr, "oracle_model run: %s\n", err);
            goto done;
        }
        for (int i = 0; i < n; i++) {
            fwrite(vec + (size_t)i * D, sizeof(float), (size_t)D, ov);
            fwrite(&drift[i], sizeof(float), 1, ov);
        }
    }
    fwrite(pool, ss, (size_t)users, os);
    rc = 0;
done:
    if (in) fclose(in);
    if (ov && fclose(ov)) rc = 1;
    if (os && fclose(os)) rc = 1;
    model_runner_free(r);
    model_free(m);
    free(pool), free(st), free(ev), free(vec), free(drift), free(texts);
    return rc;
}

int main(int argc, char **argv) {
    if ((argc == 13 || argc == 14) && strcmp(argv[1], "init") == 0) return cmd_init(argv + 2, argc == 14 ? atoi(argv[13]) : 0);
    if ((argc == 8 || argc == 9) && strcmp(argv[1], "run") == 0) return cmd_run(argv + 2, argc == 9 ? argv[8] : NULL);
    return usage();
}
