/* test_event_source: the event loaders (worker/event_source.h).
 *
 * - MovieLens: ties in u.data are kept in file order (a tiny u.data in a temp dir), fields map
 *   as documented, u.item ids (Latin-1 titles) in file order, bad lines named; the real
 *   MovieLens-100K when shared/data is present.
 * - JSON lines: value absent/null/number, text absent/null/string, stable sort; every bad line
 *   class is an error naming the line.
 * - Synthetic: same seed same stream, other seed other stream; exact totals with every user
 *   active; sorted by ts with ties by user; topics recorded and consistent with the items;
 *   the documented shares (switches, on-topic, actions, texts) within loose bounds.
 * - IEVO_BENCH_SYNTH=USERS:EVENTS times a large generation and prints the peak RSS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"
#include "clock.h"
#include "event_source.h"

static void remove_file(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

static void test_movielens(void) {
    char dir[] = "/tmp/ievo-ml-XXXXXX", err[512];
    REQUIRE(mkdtemp(dir), "mkdtemp");
    /* Ties at ts 50 and 100; file order must survive the sort. */
    check_write_file(dir, "u.data",
               "1\t10\t5\t100\n"
               "2\t20\t4\t50\n"
               "3\t30\t3\t100\n"
               "1\t40\t2\t50\n"
               "2\t50\t1\t100\r\n"
               "9\t60\t4\t7\n");
    check_write_file(dir, "u.item", "1|Caf\xe9 Society (1995)|01-Jan-1995||http://x|0|1\n2|Se\xf1or (1996)|x\n\n17|T|x\n");
    event_list l;
    REQUIRE(events_load_movielens(dir, &l, err, sizeof err) == 0, "%s", err);
    static const char *const items[] = {"60", "20", "40", "10", "30", "50"};
    static const char *const users[] = {"9", "2", "1", "1", "3", "2"};
    static const int64_t ts[] = {7000, 50000, 50000, 100000, 100000, 100000};
    static const float ratings[] = {4, 4, 2, 5, 3, 1};
    CHECK(l.n == 6, "n = %zu", l.n);
    for (size_t i = 0; i < l.n && i < 6; i++) {
        CHECK(strcmp(l.ev[i].item_id, items[i]) == 0, "position %zu: item %s, want %s (ties by file order)", i,
              l.ev[i].item_id, items[i]);
        CHECK(strcmp(l.ev[i].user_id, users[i]) == 0, "position %zu: user %s", i, l.ev[i].user_id);
        CHECK(l.ev[i].ts == ts[i], "position %zu: ts %lld", i, (long long)l.ev[i].ts);
        CHECK(l.ev[i].has_value && l.ev[i].value == ratings[i], "position %zu: value %g", i, l.ev[i].value);
        CHECK(strcmp(l.ev[i].action, "rate") == 0 && !l.ev[i].text && l.ev[i].topic == SOURCE_NO_TOPIC, "position %zu", i);
    }
    CHECK(l.n == 6 && l.ev[2].user_id == l.ev[3].user_id, "user ids are interned");
    event_list_free(&l);

    char **ids;
    int n;
    REQUIRE(movielens_item_ids(dir, &ids, &n, err, sizeof err) == 0, "%s", err);
    CHECK(n == 3 && strcmp(ids[0], "1") == 0 && strcmp(ids[1], "2") == 0 && strcmp(ids[2], "17") == 0, "u.item ids (n=%d)", n);
    synth_item_ids_free(ids, n);

    check_write_file(dir, "u.data", "1\t10\t5\t100\n1\t10\t5\n");
    CHECK(events_load_movielens(dir, &l, err, sizeof err) != 0, "short line accepted");
    CHECK(strstr(err, "u.data:2:") != NULL, "error does not name the line: %s", err);
    check_write_file(dir, "u.data", "1\t10\t5\t100\n1\t10\tfive\t100\n");
    CHECK(events_load_movielens(dir, &l, err, sizeof err) != 0 && strstr(err, "u.data:2:"), "bad rating: %s", err);
    check_write_file(dir, "u.data", "1\t10\t5\t100\t3\n");
    CHECK(events_load_movielens(dir, &l, err, sizeof err) != 0 && strstr(err, "u.data:1:"), "5 fields: %s", err);
    check_write_file(dir, "u.data", "1\t10\t5\t-100\n");
    CHECK(events_load_movielens(dir, &l, err, sizeof err) != 0 && strstr(err, "u.data:1:"), "negative ts: %s", err);
    remove_file(dir, "u.data");
    remove_file(dir, "u.item");
    CHECK(events_load_movielens(dir, &l, err, sizeof err) != 0 && strstr(err, "u.data"), "missing file: %s", err);
    CHECK(movielens_item_ids(dir, &ids, &n, err, sizeof err) != 0 && strstr(err, "u.item"), "missing u.item: %s", err);
    rmdir(dir);

    /* The real data set, when shared/ is beside the checkout. */
    const char *src = getenv("IEVO_SOURCE_DIR");
    char real[1024];
    snprintf(real, sizeof real, "%s/../shared/data/ml-100k", src ? src : ".");
    if (access(real, R_OK) == 0) {
        REQUIRE(events_load_movielens(real, &l, err, sizeof err) == 0, "%s", err);
        CHECK(l.n == 100000, "ml-100k has %zu events", l.n);
        for (size_t i = 1; i < l.n; i++)
            if (l.ev[i - 1].ts > l.ev[i].ts) { CHECK(0, "ml-100k not sorted at %zu", i); break; }
        event_list_free(&l);
        REQUIRE(movielens_item_ids(real, &ids, &n, err, sizeof err) == 0, "%s", err);
        CHECK(n == 1682 && strcmp(ids[0], "1") == 0 && strcmp(ids[n - 1], "1682") == 0, "ml-100k items: %d", n);
        synth_item_ids_free(ids, n);
    } else {
        fprintf(stderr, "test_event_source: %s not found, real MovieLens check skipped\n", real);
    }
}

static int load_jsonl_text(const char *text, event_list *l, char *err, size_t errlen) {
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    REQUIRE(f, "fmemopen");
    int rc = events_load_jsonl(f, "in.jsonl", l, err, errlen);
    fclose(f);
    return rc;
}

static void test_jsonl(void) {
    char err[512];
    event_list l;
    const char *good =
        "{\"user_id\":\"a\",\"item_id\":\"i1\",\"action\":\"view\",\"ts\":300,\"value\":1.5,\"text\":\"caf\\u00e9 \\\"q\\\"\"}\n"
        "\n"
        "  {\"user_id\":\"b\",\"item_id\":\"i2\",\"action\":\"click\",\"ts\":100}\n"
        "{\"user_id\":\"c\",\"item_id\":\"i3\",\"action\":\"buy\",\"ts\":300,\"value\":null,\"text\":null,\"extra\":[1]}\n"
        "{\"user_id\":\"\xe6\x97\xa5\",\"item_id\":\"i4\",\"action\":\"rate\",\"ts\":100,\"value\":-2}\r\n"
        "{\"user_id\":\"\",\"item_id\":\"i5\",\"action\":\"view\",\"ts\":0,\"text\":\"\"}";
    REQUIRE(load_jsonl_text(good, &l, err, sizeof err) == 0, "%s", err);
    CHECK(l.n == 5, "n = %zu", l.n);
    if (l.n == 5) {
        static const char *const order[] = {"", "b", "\xe6\x97\xa5", "a", "c"};
        for (int i = 0; i < 5; i++) CHECK(strcmp(l.ev[i].user_id, order[i]) == 0, "position %d: %s", i, l.ev[i].user_id);
        CHECK(l.ev[0].text && l.ev[0].text[0] == 0 && !l.ev[0].has_value, "empty text kept");
        CHECK(!l.ev[1].has_value && !l.ev[1].text, "absent value/text");
        CHECK(l.ev[2].has_value && l.ev[2].value == -2.0f, "integer value");
        CHECK(l.ev[3].has_value && l.ev[3].value == 1.5f && strcmp(l.ev[3].text, "caf\xc3\xa9 \"q\"") == 0, "value/text");
        CHECK(!l.ev[4].has_value && !l.ev[4].text && strcmp(l.ev[4].action, "buy") == 0, "null value/text");
        CHECK(l.ev[3].ts == 300 && l.ev[1].ts == 100, "ts");
    }
    event_list_free(&l);
    CHECK(load_jsonl_text("", &l, err, sizeof err) == 0 && l.n == 0, "empty input");
    event_list_free(&l);

    static const struct { const char *text, *needle; } bad[] = {
        {"{\"user_id\":\"a\",\"item_id\":\"i\",\"action\":\"v\",\"ts\":1}\nnot json\n", "in.jsonl:2: json:"},
        {"\n\n[1,2]\n", "in.jsonl:3: not a JSON object"},
        {"{\"item_id\":\"i\",\"action\":\"v\",\"ts\":1}", "in.jsonl:1: missing \"user_id\""},
        {"{\"user_id\":\"a\",\"action\":\"v\",\"ts\":1}", "missing \"item_id\""},
        {"{\"user_id\":\"a\",\"item_id\":\"i\",\"ts\":1}", "missing \"action\""},
        {"{\"user_id\":\"a\",\"item_id\":\"i\",\"action\":\"v\"}", "missing \"ts\""},
        {"{\"user_id\":7,\"item_id\":\"i\",\"action\":\"v\",\"ts\":1}", "\"user_id\" is not a string"},
        {"{\"user_id\":\"a\",\"item_id\":\"i\",\"action\":\"v\",\"ts\":1.5}", "\"ts\" is not an integer"},
        {"{\"user_id\":\"a\",\"item_id\":\"i\",\"action\":\"v\",\"ts\":\"1\"}", "\"ts\" is not an integer"},
        {"{\"user_id\":\"a\",\"item_id\":\"i\",\"action\":\"v\",\"ts\":1,\"value\":\"3\"}", "\"value\" is neither"},
        {"{\"user_id\":\"a\",\"item_id\":\"i\",\"action\":\"v\",\"ts\":1,\"value\":1e300}", "out of float range"},
        {"{\"user_id\":\"a\",\"item_id\":\"i\",\"action\":\"v\",\"ts\":1,\"text\":5}", "\"text\" is neither"},
        {"{\"user_id\":\"a\\u0000b\",\"item_id\":\"i\",\"action\":\"v\",\"ts\":1}", "NUL"},
        {"{\"user_id\":\"a\",\"item_id\":\"i\",\"action\":\"v\",\"ts\":1} x", "in.jsonl:1: json:"},
        /* strict JSON: a key once, UTF-8 only, no lone surrogates, integers within 64 bits */
        {"{\"user_id\":\"a\",\"user_id\":\"b\",\"item_id\":\"i\",\"action\":\"v\",\"ts\":1}", "in.jsonl:1: json: duplicate"},
        {"{\"user_id\":\"\xff\",\"item_id\":\"i\",\"action\":\"v\",\"ts\":1}", "in.jsonl:1: json:"},
        {"{\"user_id\":\"\\ud800\",\"item_id\":\"i\",\"action\":\"v\",\"ts\":1}", "in.jsonl:1: json:"},
        {"{\"user_id\":\"a\",\"item_id\":\"i\",\"action\":\"v\",\"ts\":99999999999999999999}", "in.jsonl:1: json:"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK(load_jsonl_text(bad[i].text, &l, err, sizeof err) != 0, "bad line %zu accepted", i);
        CHECK(strstr(err, bad[i].needle) != NULL, "bad line %zu: error '%s' lacks '%s'", i, err, bad[i].needle);
        CHECK(strncmp(err, "in.jsonl:", 9) == 0, "bad line %zu: error '%s' does not name the line", i, err);
    }
}

/* ---- synthetic ------------------------------------------------------------------------------- */

static int same_event(const source_event *a, const source_event *b) {
    return strcmp(a->user_id, b->user_id) == 0 && strcmp(a->item_id, b->item_id) == 0 &&
           strcmp(a->action, b->action) == 0 && a->ts == b->ts && a->has_value == b->has_value &&
           (!a->has_value || a->value == b->value) && !a->text == !b->text &&
           (!a->text || strcmp(a->text, b->text) == 0) && a->topic == b->topic;
}

static void test_synthetic(void) {
    char err[256];
    synth_opts o;
    synth_opts_default(&o);
    CHECK(o.topics == 20 && o.items_per_topic == 50 && o.seed == 42 && o.start_ts == 1704067200000LL, "defaults");
    CHECK(synth_opts_parse(&o, "50:2000", err, sizeof err) == 0 && o.users == 50 && o.events == 2000, "parse");
    CHECK(synth_opts_parse(&o, "50:10", err, sizeof err) != 0, "fewer events than users accepted");
    CHECK(synth_opts_parse(&o, "abc", err, sizeof err) != 0 && strstr(err, "USERS:EVENTS"), "bad spec: %s", err);
    CHECK(synth_opts_parse(&o, "0:5", err, sizeof err) != 0, "0 users accepted");
    CHECK(synth_opts_parse(&o, "5:7x", err, sizeof err) != 0, "trailing junk accepted");
    CHECK(synth_opts_parse(&o, "-5:7", err, sizeof err) != 0, "negative accepted");

    synth_opts_default(&o);
    o.users = 200;
    o.events = 20000;
    event_list a, b, c;
    REQUIRE(events_generate_synthetic(&o, &a, err, sizeof err) == 0, "%s", err);
    REQUIRE(events_generate_synthetic(&o, &b, err, sizeof err) == 0, "%s", err);
    o.seed = 43;
    REQUIRE(events_generate_synthetic(&o, &c, err, sizeof err) == 0, "%s", err);
    o.seed = 42;
    CHECK(a.n == 20000 && b.n == 20000 && c.n == 20000, "totals %zu %zu %zu", a.n, b.n, c.n);
    size_t same = 0, differ = 0;
    for (size_t i = 0; i < a.n && i < b.n; i++) same += same_event(&a.ev[i], &b.ev[i]);
    for (size_t i = 0; i < a.n && i < c.n; i++) differ += !same_event(&a.ev[i], &c.ev[i]);
    CHECK(same == a.n, "same seed: %zu of %zu events equal", same, a.n);
    CHECK(differ > a.n / 2, "other seed: only %zu of %zu events differ", differ, a.n);

    /* Per-user totals, order, topics. */
    char **ids;
    int nids;
    REQUIRE(synth_item_ids(&o, &ids, &nids) == 0, "synth_item_ids");
    CHECK(nids == 1000 && strcmp(ids[0], "t00-i000") == 0 && strcmp(ids[999], "t19-i049") == 0, "universe");
    for (int i = 1; i < nids; i++) CHECK(strcmp(ids[i - 1], ids[i]) < 0, "universe not in sort order at %d", i);
    long count[200] = {0}, switches = 0, on_topic = 0, views = 0, clicks = 0, buys = 0, texts = 0, steps = 0;
    uint32_t last_topic[200];
    int64_t first_ts[200];
    for (size_t i = 0; i < a.n; i++) {
        const source_event *e = &a.ev[i];
        unsigned u;
        CHECK(sscanf(e->user_id, "u%7u", &u) == 1 && u < 200 && strlen(e->user_id) == 8, "user id %s", e->user_id);
        if (u >= 200) continue;
        if (i) {
            CHECK(a.ev[i - 1].ts <= e->ts, "not sorted at %zu", i);
            if (a.ev[i - 1].ts == e->ts) {   /* ties: by user index, i.e. stable over the user-major listing */
                unsigned pu = 0;
                sscanf(a.ev[i - 1].user_id, "u%7u", &pu);
                CHECK(pu <= u, "tie at %zu not ordered by user", i);
            }
        }
        CHECK(e->topic < 20, "topic %u", e->topic);
        int it, ik;
        CHECK(sscanf(e->item_id, "t%2d-i%3d", &it, &ik) == 2 && it < 20 && ik < 50 && strlen(e->item_id) == 8, "item %s",
              e->item_id);
        on_topic += (uint32_t)it == e->topic;
        if (count[u] == 0) {
            first_ts[u] = e->ts;
        } else {
            steps++;
            switches += last_topic[u] != e->topic;
        }
        last_topic[u] = e->topic;
        count[u]++;
        if (strcmp(e->action, "view") == 0) { views++; CHECK(e->has_value && e->value >= 0, "view value"); }
        else if (strcmp(e->action, "click") == 0) { clicks++; CHECK(!e->has_value, "click value"); }
        else if (strcmp(e->action, "purchase") == 0) { buys++; CHECK(e->has_value && e->value > 0, "price"); }
        else CHECK(0, "action %s", e->action);
        if (e->text) {
            texts++;
            char want[8];
            snprintf(want, sizeof want, "t%02u-w", e->topic);
            CHECK(strncmp(e->text, want, 5) == 0, "text '%s' not of topic %u", e->text, e->topic);
        }
    }
    long total = 0, max_other = 0;
    for (int u = 0; u < 200; u++) {
        total += count[u];
        CHECK(count[u] >= 1, "user %d has no events", u);
        if (u) max_other = count[u] > max_other ? count[u] : max_other;
        if (count[u]) CHECK(first_ts[u] >= o.start_ts && first_ts[u] < o.start_ts + 86400000LL, "user %d starts late", u);
    }
    CHECK(total == 20000, "total %ld", total);
    CHECK(count[0] >= max_other, "Zipf: u0000000 (%ld) is not the most active (%ld)", count[0], max_other);
    double n = (double)a.n;
    double sw = (double)switches / (double)steps, on = on_topic / n;
    fprintf(stderr, "synthetic 200:20000: switch rate %.3f, on-topic %.3f, view/click/purchase %.3f/%.3f/%.3f, text %.3f, "
            "heaviest user %ld events\n", sw, on, views / n, clicks / n, buys / n, texts / n, count[0]);
    CHECK(sw > 0.035 && sw < 0.065, "switch rate %.3f, want ~0.05", sw);
    CHECK(on > 0.78 && on < 0.85, "on-topic share %.3f, want ~0.8 + 0.2/20", on);
    CHECK(views / n > 0.67 && views / n < 0.73 && clicks / n > 0.18 && clicks / n < 0.22, "action shares");
    CHECK(texts / n > 0.04 && texts / n < 0.06, "text share %.3f", texts / n);
    synth_item_ids_free(ids, nids);
    event_list_free(&a);
    event_list_free(&b);
    event_list_free(&c);

    /* Edge: exactly one event per user; one topic (no switching possible). */
    o.users = 30;
    o.events = 30;
    o.topics = 1;
    REQUIRE(events_generate_synthetic(&o, &a, err, sizeof err) == 0, "%s", err);
    CHECK(a.n == 30, "n = %zu", a.n);
    for (size_t i = 0; i < a.n; i++) CHECK(a.ev[i].topic == 0, "topic");
    event_list_free(&a);
    o.topics = 101;
    CHECK(events_generate_synthetic(&o, &a, err, sizeof err) != 0 && strstr(err, "topics"), "101 topics: %s", err);
    o.topics = 20;
    o.events = 10;
    CHECK(events_generate_synthetic(&o, &a, err, sizeof err) != 0, "fewer events than users accepted");
}

static void bench_synthetic(void) {
    const char *spec = getenv("IEVO_BENCH_SYNTH");
    if (!spec) return;
    char err[256];
    synth_opts o;
    synth_opts_default(&o);
    REQUIRE(synth_opts_parse(&o, spec, err, sizeof err) == 0, "%s", err);
    double t0 = clock_mono_s();
    event_list l;
    REQUIRE(events_generate_synthetic(&o, &l, err, sizeof err) == 0, "%s", err);
    double s = clock_mono_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stderr, "bench: synthetic %s: %zu events in %.2f s (%.2f M events/s), peak RSS %.0f MiB, span %.1f h\n", spec,
            l.n, s, (double)l.n / s / 1e6, ru.ru_maxrss / 1024.0, (double)(l.ev[l.n - 1].ts - l.ev[0].ts) / 3.6e6);
    event_list_free(&l);
}

int main(void) {
    test_movielens();
    test_jsonl();
    test_synthetic();
    bench_synthetic();
    return check_exit("test_event_source");
}
