/* test_item_table: the {"item_id","text"} JSON-lines catalogue (what it accepts, errors that
 * name the line); the name of the text-vector cache file, which other processes and earlier
 * runs must find again: FNV-1a 64 over the encoder's digest and the texts; and the check of an
 * item vector read back from the state store (item_table_load_record). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "codec.h"
#include "item_table.h"
#include "model.h"
#include "use_encoder.h"

static void spit(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    REQUIRE(f && fputs(text, f) >= 0 && fclose(f) == 0, "cannot write %s", path);
}

static void catalog_jsonl(const char *dir) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/items.jsonl", dir);
    spit(path, "{\"item_id\":\"i1\",\"text\":\"caf\\u00e9 \\\"q\\\"\"}\n"
               "\n"
               "  {\"text\":\"\",\"item_id\":\"\xe6\x97\xa5\",\"extra\":[1]}  \r\n"
               "{\"item_id\":\"i1\",\"text\":\"second\"}");
    item_catalog c;
    REQUIRE(item_catalog_jsonl(path, &c, err, sizeof err) == 0, "%s", err);
    CHECK(c.n == 3, "n = %zu", c.n);
    if (c.n == 3) {
        CHECK(!strcmp(c.ids[0], "i1") && !strcmp(c.texts[0], "caf\xc3\xa9 \"q\""), "line 1: %s %s", c.ids[0], c.texts[0]);
        CHECK(!strcmp(c.ids[1], "\xe6\x97\xa5") && !strcmp(c.texts[1], ""), "line 3: %s %s", c.ids[1], c.texts[1]);
        CHECK(!strcmp(c.ids[2], "i1") && !strcmp(c.texts[2], "second"), "line 4");
    }
    item_catalog_free(&c);

    static const struct { const char *text, *needle; } bad[] = {
        {"{\"item_id\":\"i\",\"text\":\"t\"}\nnot json\n", ":2: expected {\"item_id\": non-empty string, \"text\": string}: json: "},
        {"{\"item_id\":\"\",\"text\":\"t\"}", ":1: expected"},
        {"{\"item_id\":7,\"text\":\"t\"}", ":1: expected"},
        {"{\"item_id\":\"i\"}", ":1: expected"},
        {"{\"item_id\":\"i\",\"text\":null}", ":1: expected"},
        {"[\"i\",\"t\"]", ":1: expected"},
        {"{\"item_id\":\"a\\u0000b\",\"text\":\"t\"}", ":1: expected"},
        {"{\"item_id\":\"i\",\"item_id\":\"j\",\"text\":\"t\"}", "duplicate"},
        {"{\"item_id\":\"i\",\"text\":\"t\"} x", ":1: expected"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spit(path, bad[i].text);
        err[0] = 0;
        CHECK(item_catalog_jsonl(path, &c, err, sizeof err) != 0, "bad catalogue %zu accepted", i);
        CHECK(strstr(err, bad[i].needle) && !strncmp(err, path, strlen(path)), "bad catalogue %zu: '%s' lacks '%s'", i, err,
              bad[i].needle);
    }
    unlink(path);
}

/* FNV-1a 64, written out here as the independent reference of the cache file's name. */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
    return h;
}

/* A cache file under the name the hash gives is read back without opening the encoder (which
 * does not exist here): so the name is the one any other process computes. */
static void cache_name(const char *dir) {
    const char *texts[2] = {"a film", "\xe6\x97\xa5"};
    uint64_t h = fnv1a(0xcbf29ce484222325ull, USE_BLOB_SHA256, strlen(USE_BLOB_SHA256));
    for (int i = 0; i < 2; i++) {
        uint64_t len = strlen(texts[i]);
        h = fnv1a(fnv1a(h, &len, sizeof len), texts[i], len);
    }
    char path[600];
    snprintf(path, sizeof path, "%s/%016llx-2.f32", dir, (unsigned long long)h);
    float *want = malloc(2 * USE_DIM * sizeof *want), *got = calloc(2 * USE_DIM, sizeof *got);
    REQUIRE(want && got, "out of memory");
    for (int i = 0; i < 2 * USE_DIM; i++) want[i] = (float)i / 7;
    FILE *f = fopen(path, "wb");
    REQUIRE(f && fwrite(want, sizeof *want, 2 * USE_DIM, f) == 2 * USE_DIM && fclose(f) == 0, "cannot write %s", path);
    text_encode_stats st = {0};
    char err[512] = "";
    CHECK(text_encode_all("/nonexistent/use-lite", dir, texts, 2, got, &st, err, sizeof err) == 0 && st.from_cache == 2,
          "the cache file %s was not found: %s", path, err);
    CHECK(memcmp(want, got, 2 * USE_DIM * sizeof *want) == 0, "cached vectors differ");
    unlink(path);
    free(want);
    free(got);
}

/* A stored item is checked before it enters the table: width, id, key, finite floats. */
static void load_record(void) {
    item_table *t = NULL;
    REQUIRE(item_table_new(&t, 4) == 0, "item_table_new");
    float v[4] = {0.5f, -1, 2, 0}, scratch[4];
    char why[160], long_id[CODEC_MAX_ID_BYTES + 2];
    uint64_t key = model_item_key("i1", 2);
    CHECK(item_table_load_record(t, key, 7, "i1", 2, v, 4, scratch, why, sizeof why) == 0, "a good record: %s", why);
    CHECK(item_table_get(t, key) && item_table_get(t, key)[2] == 2, "the table holds it");
    CHECK(item_table_load_record(t, key, 7, "i1", 2, v, 3, scratch, why, sizeof why) != 0, "another width accepted");
    CHECK(item_table_load_record(t, key + 1, 7, "i1", 2, v, 4, scratch, why, sizeof why) != 0, "another key accepted");
    CHECK(item_table_load_record(t, model_item_key("\xff", 1), 7, "\xff", 1, v, 4, scratch, why, sizeof why) != 0,
          "an id that is not UTF-8 accepted");
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = 0;
    size_t ll = strlen(long_id);
    CHECK(item_table_load_record(t, model_item_key(long_id, ll), 7, long_id, ll, v, 4, scratch, why, sizeof why) != 0,
          "an id of %zu bytes accepted", ll);
    v[1] = NAN;
    CHECK(item_table_load_record(t, model_item_key("i2", 2), 7, "i2", 2, v, 4, scratch, why, sizeof why) != 0 &&
              strstr(why, "finite"),
          "a NaN vector accepted: %s", why);
    CHECK(item_table_get(t, model_item_key("i2", 2)) == NULL, "a refused record is in the table");
    item_table_free(t);
}

int main(void) {
    load_record();
    char dir[] = "/tmp/ievo-test-item-table-XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    catalog_jsonl(dir);
    cache_name(dir);
    rmdir(dir);
    return check_exit("test_item_table");
}
