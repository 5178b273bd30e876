/* test_movielens_items: the one reader of MovieLens u.item and u.genre (ids, Latin-1 titles as
 * UTF-8, genre flags, the catalogue text "<title>. <genre>, ..."), bad lines named, and the
 * synthetic generator's ground truth lines (event numbers and switches per user, restarted per
 * repeat). The real data set's first item when shared/ is beside the checkout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "event_source.h"

static void check_items(const char *dir) {
    char err[512];
    check_write_file(dir, "u.genre", "unknown|0\nAction|1\nChildren's|2\n\n");
    check_write_file(dir, "u.item", "1|Caf\xe9 Society (1995)|01-Jan-1995||http://x|0|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n"
                              "2|Se\xf1or (1996)|x\n\n17|T|x\n");
    movielens_items m;
    REQUIRE(movielens_items_load(dir, &m, err, sizeof err) == 0, "%s", err);
    CHECK(m.n == 3 && !strcmp(m.items[0].id, "1") && !strcmp(m.items[2].id, "17"), "ids (n=%zu)", m.n);
    CHECK(m.n == 3 && !strcmp(m.items[0].title, "Caf\xc3\xa9 Society (1995)"), "Latin-1 title as UTF-8: %s", m.items[0].title);
    CHECK(m.n == 3 && m.items[0].has_genres && m.items[0].genre[1] && m.items[0].genre[2] && !m.items[0].genre[0],
          "genre flags");
    CHECK(m.n == 3 && !m.items[1].has_genres, "a short line has no genres");
    movielens_genres g;
    REQUIRE(movielens_genres_load(dir, &g, err, sizeof err) == 0, "%s", err);
    CHECK(g.n == 3 && !strcmp(g.name[2], "Children's"), "genres n=%d", g.n);
    char *text = NULL;
    REQUIRE(movielens_item_text(&m.items[0], &g, &text) == 0, "oom");
    CHECK(!strcmp(text, "Caf\xc3\xa9 Society (1995). Action, Children's"), "catalogue text: %s", text);
    free(text);
    movielens_items_free(&m);

    check_write_file(dir, "u.item", "1|A|x\n2\n");
    CHECK(movielens_items_load(dir, &m, err, sizeof err) != 0 && strstr(err, "u.item:2:"), "no title: %s", err);
    check_write_file(dir, "u.item", "1|A|x\n|B|x\n");
    CHECK(movielens_items_load(dir, &m, err, sizeof err) != 0 && strstr(err, "u.item:2:"), "empty id: %s", err);
    check_write_file(dir, "u.genre", "Action|1\nWestern|x\n");
    CHECK(movielens_genres_load(dir, &g, err, sizeof err) != 0 && strstr(err, "u.genre:2:"), "bad index: %s", err);
    char path[512];
    snprintf(path, sizeof path, "%s/u.item", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/u.genre", dir);
    unlink(path);
    CHECK(movielens_items_load(dir, &m, err, sizeof err) != 0 && strstr(err, "u.item"), "missing: %s", err);
}

static void check_real(void) {
    const char *src = getenv("IEVO_SOURCE_DIR");
    char dir[1024], err[512];
    snprintf(dir, sizeof dir, "%s/../shared/data/ml-100k", src ? src : ".");
    if (access(dir, R_OK)) {
        printf("test_movielens_items: no ML-100K at %s, real-data checks skipped\n", dir);
        return;
    }
    movielens_items m;
    movielens_genres g;
    REQUIRE(movielens_items_load(dir, &m, err, sizeof err) == 0 && movielens_genres_load(dir, &g, err, sizeof err) == 0,
            "%s", err);
    char *text = NULL;
    CHECK(m.n == 1682 && g.n == 19 && movielens_item_text(&m.items[0], &g, &text) == 0 &&
              !strcmp(text, "Toy Story (1995). Animation, Children's, Comedy"),
          "item 1: %s", text ? text : "");
    free(text);
    movielens_items_free(&m);
}

static void check_truth(const char *dir) {
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/truth.jsonl", dir);
    static const char u1[] = "u1", u2[] = "u2";   /* interned ids: equal ids are equal pointers */
    source_event e[3] = {{.user_id = u1, .topic = 4}, {.user_id = u2, .topic = 1}, {.user_id = u1, .topic = 5}};
    synth_truth *t;
    REQUIRE(synth_truth_open(&t, path, err, sizeof err) == 0, "%s", err);
    for (int k = 0; k < 2; k++) {
        synth_truth_restart(t);
        for (int i = 0; i < 3; i++) CHECK(synth_truth_write(t, &e[i], k ? "r1-u" : e[i].user_id, k ? 4 : 2, 10 + i, err, sizeof err) == 0, "%s", err);
    }
    REQUIRE(synth_truth_close(t, err, sizeof err) == 0, "%s", err);
    FILE *f = fopen(path, "r");
    char line[256], all[2048] = "";
    while (f && fgets(line, sizeof line, f)) strncat(all, line, sizeof all - strlen(all) - 1);
    if (f) fclose(f);
    unlink(path);
    CHECK(!strcmp(all, "{\"user_id\":\"u1\",\"events\":1,\"topic\":4,\"switched\":false,\"ts\":10}\n"
                       "{\"user_id\":\"u2\",\"events\":1,\"topic\":1,\"switched\":false,\"ts\":11}\n"
                       "{\"user_id\":\"u1\",\"events\":2,\"topic\":5,\"switched\":true,\"ts\":12}\n"
                       "{\"user_id\":\"r1-u\",\"events\":1,\"topic\":4,\"switched\":false,\"ts\":10}\n"
                       "{\"user_id\":\"r1-u\",\"events\":1,\"topic\":1,\"switched\":false,\"ts\":11}\n"
                       "{\"user_id\":\"r1-u\",\"events\":2,\"topic\":5,\"switched\":true,\"ts\":12}\n"),
          "truth lines:\n%s", all);
}

int main(void) {
    char dir[] = "/tmp/ievo-test-movielens-XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    check_items(dir);
    check_truth(dir);
    rmdir(dir);
    check_real();
    return check_exit("test_movielens_items");
}
