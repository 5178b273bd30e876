/* cmd_broker_ctl: `ievo broker-ctl`, the client of `ievo broker --control PATH`.
 *
 * Why: tests and people inject faults into the local broker (broker down/up, request errors,
 * RTT, coordinator and leader moves) while producers and consumers run against it; only the
 * broker process can call librdkafka's mock API, so it serves a line protocol on a Unix socket
 * and this command speaks it. See docs/faults.md.
 *
 * Protocol: one command per line, one reply line per command, "ok ..." or "error ...". The
 * command's words are sent joined by single spaces; the reply line is printed on stdout. With
 * "-" (or no command) the commands are read from stdin, one per line, over one connection.
 *
 * Exit status: 0 every reply was ok, 1 some reply was an error, 2 usage, 3 the broker could not
 * be reached or did not answer in time.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"

#define BROKER_CTL_CMD_MAX 4096

static void broker_ctl_usage(FILE *f) {
    fprintf(f,
            "usage: ievo broker-ctl [--control PATH] [--timeout SECONDS] COMMAND [ARG...]\n"
            "       ievo broker-ctl [--control PATH] [--timeout SECONDS] -     (commands on stdin)\n"
            "  Sends a fault-injection command to `ievo broker --control PATH` and prints its reply.\n"
            "  --control PATH    the broker's control socket (default: $IEVO_BROKER_CONTROL)\n"
            "  --timeout S       seconds to wait for each reply (default 30)\n"
            "  Commands (`help` asks the broker for its list):\n"
            "    status                                   brokers, topics, leaders, end offsets\n"
            "    broker-down ID|all, broker-up ID|all     close a broker's connections and refuse new ones\n"
            "    rtt ID|all MS                            delay every response of a broker by MS\n"
            "    request-errors API ERR [ERR...]          fail the next requests of API (Produce, Fetch,\n"
            "                                             OffsetCommit, JoinGroup, Heartbeat, ... or a number)\n"
            "    broker-request-errors ID API ERR[@MS]... the same on one broker, each answered after MS\n"
            "    clear-errors [API]                       drop queued cluster-wide request errors\n"
            "    coordinator group|transaction KEY ID     move a group's / transactional id's coordinator\n"
            "    partition-leader TOPIC PARTITION ID|-1   move a partition's leader (-1: no leader)\n"
            "    topic-error TOPIC ERR                    Metadata for TOPIC returns ERR (NO_ERROR clears)\n"
            "  Errors by librdkafka name (NOT_LEADER_FOR_PARTITION, REQUEST_TIMED_OUT, NOT_COORDINATOR,\n"
            "  COORDINATOR_NOT_AVAILABLE, _TRANSPORT to drop the connection, ...) or number.\n"
            "  Exit status: 0 ok, 1 the broker answered an error, 2 usage, 3 broker unreachable.\n");
}

static double broker_ctl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int broker_ctl_connect(const char *path, char *err, size_t errlen) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "%.300s: longer than a Unix socket path may be", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(err, errlen, "cannot connect to %.300s: %s (is `ievo broker --control %.300s` running?)", path,
                 strerror(errno), path);
        close(fd);
        return -1;
    }
    return fd;
}

/* Reading state of the connection: bytes received and not yet returned as a line. */
typedef struct {
    int fd;
    char buf[1 << 18];
    size_t n;
    size_t last;   /* length of the reply line returned last, with its newline */
} broker_ctl_conn;

/* Sends one command line and reads one reply line (NUL-terminated in *reply, valid until the
 * next call). Returns 0, or -1 with err filled. */
static int broker_ctl_roundtrip(broker_ctl_conn *c, const char *cmd, double timeout_s, char **reply, char *err,
                                size_t errlen) {
    char line[BROKER_CTL_CMD_MAX + 2];
    int n = snprintf(line, sizeof line, "%s\n", cmd);
    if (n < 0 || (size_t)n >= sizeof line) {
        snprintf(err, errlen, "command longer than %d bytes", BROKER_CTL_CMD_MAX);
        return -1;
    }
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = send(c->fd, line + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(err, errlen, "send: %s", strerror(errno));
            return -1;
        }
        off += (size_t)w;
    }
    /* Drop the previous reply line, then read until a newline. */
    memmove(c->buf, c->buf + c->last, c->n - c->last);
    c->n -= c->last;
    c->last = 0;
    char *nl;
    double deadline = broker_ctl_now() + timeout_s;
    while (!(nl = memchr(c->buf, '\n', c->n))) {
        if (c->n == sizeof c->buf - 1) {
            snprintf(err, errlen, "reply longer than %zu bytes", sizeof c->buf - 1);
            return -1;
        }
        double left = deadline - broker_ctl_now();
        struct pollfd p = {c->fd, POLLIN, 0};
        int rc = left > 0 ? poll(&p, 1, (int)(left * 1000) + 1) : 0;
        if (rc < 0 && errno == EINTR) continue;
        if (rc == 0) {
            snprintf(err, errlen, "no reply to '%.200s' within %.0f s", cmd, timeout_s);
            return -1;
        }
        ssize_t got = rc < 0 ? -1 : read(c->fd, c->buf + c->n, sizeof c->buf - 1 - c->n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            snprintf(err, errlen, "the broker closed the control connection%s%s", got < 0 ? ": " : "",
                     got < 0 ? strerror(errno) : "");
            return -1;
        }
        c->n += (size_t)got;
    }
    *nl = 0;
    c->last = (size_t)(nl - c->buf) + 1;
    *reply = c->buf;
    return 0;
}

/* 0 for an "ok" reply, 1 for anything else. */
static int broker_ctl_print(const char *reply) {
    printf("%s\n", reply);
    fflush(stdout);
    return strncmp(reply, "ok", 2) == 0 && (reply[2] == 0 || reply[2] == ' ') ? 0 : 1;
}

int cmd_broker_ctl(int argc, char **argv) {
    const char *path = getenv("IEVO_BROKER_CONTROL");
    double timeout_s = 30;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            broker_ctl_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--control") || !strcmp(a, "--timeout")) {
            if (i + 1 >= argc) {
                LOG_E("broker-ctl", "%s needs a value", a);
                broker_ctl_usage(stderr);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--control")) {
                path = v;
            } else {
                char *end;
                timeout_s = strtod(v, &end);
                if (end == v || *end || !(timeout_s > 0 && timeout_s <= 3600)) {
                    LOG_E("broker-ctl", "--timeout: '%s' is not a number of seconds in (0, 3600]", v);
                    return 2;
                }
            }
            continue;
        }
        break;   /* the command */
    }
    if (!path || !*path) {
        LOG_E("broker-ctl", "no control socket: pass --control PATH or set IEVO_BROKER_CONTROL");
        broker_ctl_usage(stderr);
        return 2;
    }
    int from_stdin = i >= argc || (i + 1 == argc && !strcmp(argv[i], "-"));
    char cmd[BROKER_CTL_CMD_MAX + 1];
    if (!from_stdin) {
        size_t len = 0;
        for (int k = i; k < argc; k++) {
            if (!*argv[k] || strpbrk(argv[k], " \t\r\n")) {
                LOG_E("broker-ctl", "argument '%s' is empty or holds whitespace, which the line protocol cannot carry",
                      argv[k]);
                return 2;
            }
            size_t al = strlen(argv[k]);
            if (len + al + 1 > BROKER_CTL_CMD_MAX) {
                LOG_E("broker-ctl", "command longer than %d bytes", BROKER_CTL_CMD_MAX);
                return 2;
            }
            if (len) cmd[len++] = ' ';
            memcpy(cmd + len, argv[k], al);
            len += al;
        }
        cmd[len] = 0;
    }

    char err[768];
    static broker_ctl_conn conn;
    conn.n = conn.last = 0;
    if ((conn.fd = broker_ctl_connect(path, err, sizeof err)) < 0) {
        LOG_E("broker-ctl", "%s", err);
        return 3;
    }
    int rc = 0;
    char *reply;
    if (!from_stdin) {
        if (broker_ctl_roundtrip(&conn, cmd, timeout_s, &reply, err, sizeof err)) {
            LOG_E("broker-ctl", "%s", err);
            rc = 3;
        } else {
            rc = broker_ctl_print(reply);
        }
    } else {
        while (fgets(cmd, sizeof cmd, stdin)) {
            size_t len = strcspn(cmd, "\r\n");
            if (cmd[len] == 0 && !feof(stdin)) {
                LOG_E("broker-ctl", "stdin: a command line longer than %d bytes", BROKER_CTL_CMD_MAX - 1);
                rc = 2;
                break;
            }
            cmd[len] = 0;
            if (!cmd[strspn(cmd, " \t")] || cmd[strspn(cmd, " \t")] == '#') continue;   /* blank, comment */
            if (broker_ctl_roundtrip(&conn, cmd, timeout_s, &reply, err, sizeof err)) {
                LOG_E("broker-ctl", "%s", err);
                rc = 3;
                break;
            }
            if (broker_ctl_print(reply)) rc = 1;
        }
    }
    close(conn.fd);
    return rc;
}
