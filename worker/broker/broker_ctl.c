/* broker_ctl: the client of `ievo broker --control PATH` (`ievo broker-ctl`).
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
#include "clock.h"

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
    double deadline = clock_mono_s() + timeout_s;
    while (!(nl = memchr(c->buf, '\n', c->n))) {
        if (c->n == sizeof c->buf - 1) {
            snprintf(err, errlen, "reply longer than %zu bytes", sizeof c->buf - 1);
            return -1;
        }
        double left = deadline - clock_mono_s();
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

int broker_ctl_join(char *const *words, int n, char *line, size_t cap, char *err, size_t errlen) {
    size_t len = 0;
    for (int k = 0; k < n; k++) {
        if (!*words[k] || strpbrk(words[k], " \t\r\n"))
            return snprintf(err, errlen, "argument '%s' is empty or holds whitespace, which the line protocol cannot "
                                         "carry", words[k]), -1;
        size_t al = strlen(words[k]);
        if (len + al + 1 > BROKER_CTL_CMD_MAX || len + al + 1 >= cap)
            return snprintf(err, errlen, "command longer than %d bytes", BROKER_CTL_CMD_MAX), -1;
        if (len) line[len++] = ' ';
        memcpy(line + len, words[k], al);
        len += al;
    }
    line[len] = 0;
    return 0;
}

/* The commands of stdin, one a line, over the connection. */
static int broker_ctl_stdin(broker_ctl_conn *conn, double timeout_s, char *err, size_t errlen) {
    char cmd[BROKER_CTL_CMD_MAX + 1], *reply;
    int rc = 0;
    while (fgets(cmd, sizeof cmd, stdin)) {
        size_t len = strcspn(cmd, "\r\n");
        if (cmd[len] == 0 && !feof(stdin))
            return snprintf(err, errlen, "stdin: a command line longer than %d bytes", BROKER_CTL_CMD_MAX - 1), -1;
        cmd[len] = 0;
        const char *word = cmd + strspn(cmd, " \t");
        if (!*word || *word == '#') continue;   /* blank, comment */
        if (broker_ctl_roundtrip(conn, cmd, timeout_s, &reply, err, errlen)) return -1;
        if (broker_ctl_print(reply)) rc = 1;
    }
    return rc;
}

int broker_ctl_call(const char *path, const char *line, double timeout_s, char *err, size_t errlen) {
    static broker_ctl_conn conn;   /* its buffer is large */
    conn.n = conn.last = 0;
    if ((conn.fd = broker_ctl_connect(path, err, errlen)) < 0) return -1;
    char *reply;
    int rc;
    if (!line) rc = broker_ctl_stdin(&conn, timeout_s, err, errlen);
    else rc = broker_ctl_roundtrip(&conn, line, timeout_s, &reply, err, errlen) ? -1 : broker_ctl_print(reply);
    close(conn.fd);
    return rc;
}
