/* An open-loop HTTP/1.1 load generator: what wrk2 does (wrk2 is not packaged here).
 *
 *   cc -O2 -o openloop scripts/bench/openloop.c
 *   openloop HOST PORT RATE WARMUP_S DURATION_S CONNECTIONS REQUESTS_FILE LATENCIES_FILE
 *
 * Request i is due at start + i / RATE, whether or not earlier answers have come back (no
 * coordinated omission), and its latency is measured from that due time, so a late send counts
 * against the server, as it would for a real client. A due request goes out on the first idle
 * keep-alive connection of CONNECTIONS; when none is idle it waits, and the wait is part of its
 * latency. The first WARMUP_S seconds are sent at the same rate but not measured.
 *
 * REQUESTS_FILE holds complete HTTP requests, each a 4-byte little-endian length and the raw
 * bytes; request i is record i modulo their number (scripts/bench/oracle_load.py writes it).
 * LATENCIES_FILE receives one line per measured request, "<status> <latency in microseconds>"
 * (status 0: a socket error or a malformed answer). stdout gets one JSON summary line.
 *
 * Answers are parsed for their status line and Content-Length (or a chunked body); compiled C with
 * epoll, so the generator itself stays a small fraction of a core at the rates benchmarked.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define MAX_ANSWER (16 << 20)
#define DRAIN_SECONDS 60.0

typedef struct {
    int fd;
    long req;           /* request in flight, -1 when idle */
    size_t sent;        /* bytes of it written so far */
    char *buf;          /* the answer read so far */
    size_t len, cap;
} conn_t;

static struct sockaddr_storage addr;
static socklen_t addrlen;
static int ep;
static char **reqs;
static uint32_t *req_len;
static long n_reqs;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void open_conn(conn_t *c) {
    c->fd = socket(addr.ss_family, SOCK_STREAM, 0);
    if (c->fd < 0) die("socket");
    if (connect(c->fd, (struct sockaddr *)&addr, addrlen) < 0) die("connect");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
    c->req = -1;
    c->len = 0;
}

static void reopen_conn(conn_t *c) {
    close(c->fd);  /* also leaves the epoll set */
    open_conn(c);
}

static void want_write(conn_t *c, int on) {
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what is left of c's request; 0 when fully written or waiting for EPOLLOUT, -1 on error. */
static int push(conn_t *c) {
    const char *data = reqs[c->req % n_reqs];
    size_t size = req_len[c->req % n_reqs];
    while (c->sent < size) {
        ssize_t n = send(c->fd, data + c->sent, size - c->sent, MSG_NOSIGNAL);  /* a closed peer: EPIPE, not SIGPIPE */
        if (n < 0) {
            if (errno == EAGAIN) { want_write(c, 1); return 0; }
            return -1;
        }
        c->sent += (size_t)n;
    }
    want_write(c, 0);
    return 0;
}

/* A header's value, or NULL: name is lower case with its colon ("content-length:"). */
static const char *header(const char *head, size_t head_len, const char *name) {
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', head_len);
    while (p && (size_t)(p + 1 - head) + nl < head_len) {
        p++;
        if (strncasecmp(p, name, nl) == 0) {
            p += nl;
            while (*p == ' ' || *p == '\t') p++;
            return p;
        }
        p = memchr(p, '\n', head_len - (size_t)(p - head));
    }
    return NULL;
}

/* The length of a complete chunked body starting at body, or -1 while incomplete, -2 if malformed. */
static long chunked_length(const char *body, size_t avail) {
    size_t at = 0;
    for (;;) {
        const char *eol = memmem(body + at, avail - at, "\r\n", 2);
        if (!eol) return -1;
        char *end;
        unsigned long size = strtoul(body + at, &end, 16);
        if (end == body + at) return -2;
        at = (size_t)(eol - body) + 2;
        if (size == 0) {  /* no trailers expected: the final CRLF */
            if (avail - at < 2) return -1;
            return (long)(at + 2);
        }
        if (avail - at < size + 2) return -1;
        at += size + 2;
    }
}

/* If c holds a complete answer: its status (0 when malformed), *total its size and *close whether
 * the server closes after it. -1 while incomplete. */
static int complete_answer(conn_t *c, size_t *total, int *close_after) {
    const char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) return -1;
    size_t head_len = (size_t)(end - c->buf) + 4;
    if (c->len < 12 || strncmp(c->buf, "HTTP/1.", 7) != 0) { *total = c->len; *close_after = 1; return 0; }
    int status = atoi(c->buf + 9);
    const char *conn_hdr = header(c->buf, head_len, "connection:");
    *close_after = conn_hdr && strncasecmp(conn_hdr, "close", 5) == 0;
    const char *cl = header(c->buf, head_len, "content-length:");
    if (cl) {
        size_t body = strtoul(cl, NULL, 10);
        if (c->len < head_len + body) return -1;
        *total = head_len + body;
        return status;
    }
    const char *te = header(c->buf, head_len, "transfer-encoding:");
    if (te && strncasecmp(te, "chunked", 7) == 0) {
        long body = chunked_length(c->buf + head_len, c->len - head_len);
        if (body == -1) return -1;
        if (body == -2) { *total = c->len; *close_after = 1; return 0; }
        *total = head_len + (size_t)body;
        return status;
    }
    if (status == 204 || status == 304 || (status >= 100 && status < 200)) { *total = head_len; return status; }
    *total = c->len;  /* a body delimited by the connection's end is not supported */
    *close_after = 1;
    return 0;
}

static void load_requests(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    long cap = 1024;
    reqs = malloc(cap * sizeof *reqs);
    req_len = malloc(cap * sizeof *req_len);
    uint8_t lb[4];
    while (fread(lb, 1, 4, f) == 4) {
        uint32_t n = lb[0] | lb[1] << 8 | lb[2] << 16 | (uint32_t)lb[3] << 24;
        if (n_reqs == cap) {
            cap *= 2;
            reqs = realloc(reqs, cap * sizeof *reqs);
            req_len = realloc(req_len, cap * sizeof *req_len);
        }
        reqs[n_reqs] = malloc(n);
        if (fread(reqs[n_reqs], 1, n, f) != n) { fprintf(stderr, "%s: truncated\n", path); exit(2); }
        req_len[n_reqs++] = n;
    }
    fclose(f);
    if (n_reqs == 0) { fprintf(stderr, "%s: no requests\n", path); exit(2); }
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: %s HOST PORT RATE WARMUP_S DURATION_S CONNECTIONS REQUESTS_FILE LATENCIES_FILE\n", argv[0]);
        return 2;
    }
    double rate = atof(argv[3]), warmup = atof(argv[4]), duration = atof(argv[5]);
    int n_conns = atoi(argv[6]);
    if (rate <= 0 || warmup < 0 || duration <= 0 || n_conns <= 0) { fprintf(stderr, "bad arguments\n"); return 2; }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0) { fprintf(stderr, "cannot resolve %s\n", argv[1]); return 2; }
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    addrlen = ai->ai_addrlen;
    freeaddrinfo(ai);
    load_requests(argv[7]);
    FILE *out = fopen(argv[8], "w");
    if (!out) die(argv[8]);

    ep = epoll_create1(0);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);
    conn_t *conns = calloc((size_t)n_conns, sizeof *conns);
    /* idle connections, first in first out: each is used in turn, so none sits idle long enough
     * for the server's keep-alive timeout to close it under a request */
    conn_t **idle = malloc((size_t)n_conns * sizeof *idle);
    int n_idle = 0, idle_head = 0;
    for (int k = 0; k < n_conns; k++) {
        conns[k].cap = READ_CHUNK;
        conns[k].buf = malloc(conns[k].cap);
        open_conn(&conns[k]);
        idle[n_idle++] = &conns[k];
    }
#define PUT_IDLE(c) (idle[(idle_head + n_idle++) % n_conns] = (c))

    long unmeasured = (long)(rate * warmup), total = unmeasured + (long)(rate * duration);
    double *due = malloc((size_t)total * sizeof *due);
    double start = now() + 0.2;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    double start_unix = wall.tv_sec + wall.tv_nsec / 1e9 + 0.2;
    for (long i = 0; i < total; i++) due[i] = start + i / rate;
    int *status_of = calloc((size_t)total, sizeof *status_of);
    double *latency = calloc((size_t)total, sizeof *latency);
    long next_due = 0, next_send = 0, finished = 0, errors = 0, reconnects = 0;
    double max_lag = 0;
    struct epoll_event events[256];

    while (finished < total) {
        double t = now();
        if (next_send == total && t > due[total - 1] + DRAIN_SECONDS) break;
        while (next_due < total && due[next_due] <= t) next_due++;
        while (next_send < next_due && n_idle > 0) {
            conn_t *c = idle[idle_head];
            idle_head = (idle_head + 1) % n_conns;
            n_idle--;
            c->req = next_send++;
            c->sent = 0;
            c->len = 0;
            if (c->req >= unmeasured && t - due[c->req] > max_lag) max_lag = t - due[c->req];
            if (push(c) < 0) {  /* the connection broke while idle: once more on a new one */
                reopen_conn(c);
                reconnects++;
                c->req = next_send - 1;
                c->sent = 0;
                if (push(c) < 0) die("write");
            }
        }
        if (next_due < total) {
            struct itimerspec its = {0};
            its.it_value.tv_sec = (time_t)due[next_due];
            its.it_value.tv_nsec = (long)((due[next_due] - (double)its.it_value.tv_sec) * 1e9);
            if (its.it_value.tv_nsec == 0 && its.it_value.tv_sec == 0) its.it_value.tv_nsec = 1;
            timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        }
        int n = epoll_wait(ep, events, 256, 1000);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int e = 0; e < n; e++) {
            conn_t *c = events[e].data.ptr;
            if (!c) {
                uint64_t fired;
                while (read(tfd, &fired, sizeof fired) > 0) {}
                continue;
            }
            if (c->req < 0) {  /* an idle connection the server closed */
                char scratch[512];
                ssize_t r = read(c->fd, scratch, sizeof scratch);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    reopen_conn(c);
                    reconnects++;
                }
                continue;
            }
            if ((events[e].events & EPOLLOUT) && push(c) < 0) goto failed;
            if (!(events[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            int peer_closed = 0;
            for (;;) {
                if (c->cap - c->len < READ_CHUNK / 2) {
                    if (c->cap >= MAX_ANSWER) goto failed;
                    c->cap *= 2;
                    c->buf = realloc(c->buf, c->cap);
                }
                ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
                if (r < 0 && errno == EAGAIN) break;
                if (r < 0) goto failed;
                if (r == 0) { peer_closed = 1; break; }  /* complete if the answer is, a failure if not */
                c->len += (size_t)r;
            }
            {
                size_t size;
                int close_after;
                int status = complete_answer(c, &size, &close_after);
                if (status < 0 && peer_closed) goto failed;
                if (status < 0) continue;
                close_after |= peer_closed;
                long i = c->req;
                status_of[i] = status;
                latency[i] = now() - due[i];
                if (status == 0) errors += i >= unmeasured;
                finished++;
                if (close_after || size != c->len) {
                    reopen_conn(c);
                    reconnects++;
                } else {
                    c->req = -1;
                }
                PUT_IDLE(c);
            }
            continue;
        failed:
            status_of[c->req] = 0;
            latency[c->req] = now() - due[c->req];
            errors += c->req >= unmeasured;
            finished++;
            reopen_conn(c);
            reconnects++;
            PUT_IDLE(c);
        }
    }
    double elapsed = now() - start;
    long answered = 0, unanswered = 0;
    for (long i = unmeasured; i < total; i++) {
        if (latency[i] == 0 && status_of[i] == 0) {
            unanswered++;
        } else {
            fprintf(out, "%d %.0f\n", status_of[i], latency[i] * 1e6);
            answered += status_of[i] != 0;
        }
    }
    fclose(out);
    printf("{\"rate\": %.3f, \"sent\": %ld, \"warmup_sent\": %ld, \"answered\": %ld, \"errors\": %ld, "
           "\"unanswered\": %ld, \"reconnects\": %ld, \"elapsed\": %.3f, \"max_send_lag_ms\": %.3f, "
           "\"connections\": %d, \"start_unix\": %.6f}\n",
           rate, total - unmeasured, unmeasured, answered, errors + unanswered, unanswered, reconnects, elapsed,
           max_lag * 1000, n_conns, start_unix);
    return 0;
}
