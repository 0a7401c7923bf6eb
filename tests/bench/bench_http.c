/* bench_http.c - open-loop load generator for POST /v1/score over keep-alive HTTP/1.1.
 *
 * Requests are sent on a fixed schedule (rate R: request i is due at t0 + i/R) whatever
 * the answers, over C keep-alive connections, one request in flight per connection
 * (a request due while every connection is busy waits, and that wait counts in its
 * latency). Latency is measured from the request's scheduled time, not from when it was
 * sent, so that a slow server cannot hide its queueing (coordinated omission).
 *
 * usage: bench_http HOST PORT RATE SECONDS [CONNECTIONS] [ACCOUNTS]
 * prints: sent, answered, non-200, achieved rate, p50/p99/p99.9/max latency.
 */
#define _GNU_SOURCE 1   /* strcasestr */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
    int fd;
    int busy;
    int64_t due_ns;       /* the scheduled time of the request in flight */
    char in[8192];
    size_t inlen;
} conn_t;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int dial(const char *host, int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror("connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* 1 when c->in holds a whole response (headers + Content-Length body); sets *status. */
static int complete(conn_t *c, int *status) {
    c->in[c->inlen < sizeof(c->in) ? c->inlen : sizeof(c->in) - 1] = 0;
    char *eoh = strstr(c->in, "\r\n\r\n");
    if (!eoh) return 0;
    char *cl = strcasestr(c->in, "Content-Length:");
    size_t blen = cl && cl < eoh ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
    size_t need = (size_t)(eoh + 4 - c->in) + blen;
    if (c->inlen < need) return 0;
    *status = atoi(c->in + 9);
    memmove(c->in, c->in + need, c->inlen - need);
    c->inlen -= need;
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: bench_http HOST PORT RATE SECONDS [CONNECTIONS] [ACCOUNTS]\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    double rate = atof(argv[3]);
    double secs = atof(argv[4]);
    int nc = argc > 5 ? atoi(argv[5]) : 32;
    int naccts = argc > 6 ? atoi(argv[6]) : 10000;
    long total = (long)(rate * secs);
    conn_t *cs = calloc((size_t)nc, sizeof(*cs));
    struct pollfd *pf = calloc((size_t)nc, sizeof(*pf));
    int64_t *lat = calloc((size_t)total + 1, sizeof(*lat));
    /* how late the client itself sent each request (its own scheduling on a shared
     * machine, or every connection busy): part of the latency above, not the server's */
    int64_t *late = calloc((size_t)total + 1, sizeof(*late));
    if (!late) return 1;
    int persec = getenv("BENCH_HTTP_PERSEC") != NULL;
    static int64_t worst[600];
    static long over1[600];
    if (!cs || !pf || !lat) return 1;
    for (int i = 0; i < nc; i++) cs[i].fd = dial(host, port);
    long sent = 0, done = 0, non200 = 0;
    int64_t period = (int64_t)(1e9 / rate), t0 = now_ns() + 10000000;
    /* ids unique per run and times from a day ago: a second run against the same state
     * scores new events (with the ids of the last run, every event would be a duplicate,
     * answered from the dedupe log without scoring) */
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    long run = (long)wall.tv_sec;
    /* event times follow the send schedule (request i at start + i/R), so that
     * consecutive runs against one server stay in time order per account, as real
     * traffic does (runs whose times overlapped made every later run's events late,
     * inserted inside the windows, and the figures worse run after run) */
    int64_t base_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    char body[512], reqb[1024];
    while (done < total) {
        int64_t now = now_ns();
        /* send every request that is due on a free connection */
        while (sent < total && t0 + sent * period <= now) {
            int k = -1;
            for (int i = 0; i < nc; i++)
                if (!cs[i].busy) {
                    k = i;
                    break;
                }
            if (k < 0) break;   /* all busy: it waits, and the wait counts */
            int bl = snprintf(body, sizeof(body),
                              "{\"id\":\"b%ld-%ld\",\"account\":\"acct-%ld\",\"ts\":%lld,\"amount\":%ld.5,"
                              "\"merchant\":\"m-%ld\",\"card\":\"card-%ld\",\"country\":\"US\"}",
                              run, sent, sent % naccts, (long long)(base_ms + (int64_t)((double)sent * 1000.0 / rate)), 5 + sent % 200,
                              sent % 97, sent % naccts);
            int rl = snprintf(reqb, sizeof(reqb),
                              "POST /v1/score HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                              "Content-Length: %d\r\n\r\n%s", host, bl, body);
            if (write(cs[k].fd, reqb, (size_t)rl) != rl) {
                perror("write");
                return 1;
            }
            cs[k].busy = 1;
            cs[k].due_ns = t0 + sent * period;
            late[sent] = now_ns() - cs[k].due_ns;
            sent++;
        }
        for (int i = 0; i < nc; i++) pf[i] = (struct pollfd){cs[i].fd, POLLIN, 0};
        /* sleep until the next request is due (ppoll: a millisecond timeout would
         * spin at rates above 1,000/s and take a core from the server) */
        int64_t next = sent < total ? t0 + sent * period - now_ns() : 1000000000;
        int anyfree = 0;
        for (int i = 0; i < nc && !anyfree; i++) anyfree = !cs[i].busy;
        if (!anyfree) next = 1000000000;   /* nothing can be sent before an answer */
        if (next < 0) next = 0;
        struct timespec to = {(time_t)(next / 1000000000), (long)(next % 1000000000)};
        if (ppoll(pf, (nfds_t)nc, &to, NULL) < 0 && errno != EINTR) return 1;
        for (int i = 0; i < nc; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = read(cs[i].fd, cs[i].in + cs[i].inlen, sizeof(cs[i].in) - 1 - cs[i].inlen);
            if (n <= 0) {
                fprintf(stderr, "connection closed by the server\n");
                return 1;
            }
            cs[i].inlen += (size_t)n;
            int st;
            if (cs[i].busy && complete(&cs[i], &st)) {
                lat[done] = now_ns() - cs[i].due_ns;
                if (persec) {   /* BENCH_HTTP_PERSEC=1: the worst latency of each second */
                    long sec = (long)((cs[i].due_ns - t0) / 1000000000LL);
                    if (sec >= 0 && sec < 600 && lat[done] > worst[sec]) worst[sec] = lat[done];
                    if (sec >= 0 && sec < 600 && lat[done] > 1000000) over1[sec]++;
                }
                done++;
                if (st != 200) non200++;
                cs[i].busy = 0;
            }
        }
    }
    double el = (double)(now_ns() - t0) / 1e9;
    qsort(lat, (size_t)done, sizeof(*lat), cmp64);
#define PCT(p) ((double)lat[(size_t)((double)(done - 1) * (p))] / 1e6)
    printf("open-loop: target %.0f req/s for %.0f s over %d connections: %ld answered (%ld non-200), "
           "%.0f req/s; latency ms p50 %.3f p99 %.3f p99.9 %.3f max %.3f\n",
           rate, secs, nc, done, non200, (double)done / el, PCT(0.5), PCT(0.99), PCT(0.999),
           (double)lat[done - 1] / 1e6);
    qsort(late, (size_t)sent, sizeof(*late), cmp64);
    printf("  client send lateness ms p50 %.3f p99 %.3f p99.9 %.3f max %.3f (included above)\n",
           (double)late[(size_t)((double)(sent - 1) * 0.5)] / 1e6,
           (double)late[(size_t)((double)(sent - 1) * 0.99)] / 1e6,
           (double)late[(size_t)((double)(sent - 1) * 0.999)] / 1e6, (double)late[sent - 1] / 1e6);
    free(late);
    for (long sec = 0; persec && sec < 600 && sec < (long)secs + 1; sec++)
        printf("  second %ld: worst %.3f ms, %ld over 1 ms\n", sec, (double)worst[sec] / 1e6,
               over1[sec]);
    for (int i = 0; i < nc; i++) close(cs[i].fd);
    free(cs);
    free(pf);
    free(lat);
    return non200 ? 1 : 0;
}
