/* connect-latency: the traffic side of `scripts/bench datapath` (GPL-2.0-or-later).
 *
 * A tight C loop of sequential TCP connects, each a new connection, so that the first packet
 * of every one (the SYN) is a NEW packet for conntrack and walks the forward hook's rules.
 * scripts/bench-datapath compiles it with `cc -O2` into its work directory; standard C and
 * Linux only.
 *
 *   connect-latency serve PORT...
 *       Listens on 0.0.0.0:PORT for every PORT; accepts and closes at once (the server
 *       closes first, so its side holds TIME_WAIT and the client's port is free again).
 *       Runs until SIGTERM/SIGINT.
 *   connect-latency connect HOST PORT COUNT WARMUP OUTFILE [TIMEOUT_MS]
 *       WARMUP + COUNT connects to HOST:PORT, one after the other. Each: socket(), then
 *       connect() timed alone (CLOCK_MONOTONIC, SYN sent to SYN-ACK received), then a read
 *       until the server's FIN, then close(); the whole cycle is timed too. The last COUNT
 *       are written to OUTFILE, one line "CONNECT_NS CYCLE_NS" each. A connect that fails
 *       or takes longer than TIMEOUT_MS (default 3000) is counted, not recorded. Prints
 *       "ok N failed F" and exits 0 if F is 0, else 1.
 *   connect-latency probe HOST PORT TIMEOUT_MS
 *       One non-blocking connect: exit 0 if the handshake completed within TIMEOUT_MS,
 *       1 if it timed out or was refused (prints which).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int address(const char *host, const char *port, struct sockaddr_in *sa) {
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
        fprintf(stderr, "connect-latency: '%s' is not an IPv4 address\n", host);
        return -1;
    }
    return 0;
}

static int serve(int argc, char **argv) {
    struct pollfd fds[16];
    int n = 0;
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_signal;    /* no SA_RESTART: poll() returns EINTR */
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    for (int i = 0; i < argc && n < 16; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)atoi(argv[i]));
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0) {
            fprintf(stderr, "connect-latency: port %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        fds[n].fd = fd;
        fds[n].events = POLLIN;
        n++;
    }
    fprintf(stderr, "connect-latency: serving %d port(s)\n", n);
    while (!stopping) {
        if (poll(fds, (nfds_t)n, 1000) < 0) {
            if (errno == EINTR) continue;
            perror("poll");
            return 2;
        }
        for (int i = 0; i < n; i++) {
            if (!(fds[i].revents & POLLIN)) continue;
            for (;;) {
                int c = accept4(fds[i].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (c < 0) break;
                close(c);
            }
        }
    }
    return 0;
}

/* One connection: returns 0 and the two durations, or -1 (failed or timed out). */
static int one(const struct sockaddr_in *sa, int timeout_ms, uint64_t *connect_ns, uint64_t *cycle_ns) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    /* SO_SNDTIMEO bounds a blocking connect(), SO_RCVTIMEO the wait for the server's FIN. */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint64_t t0 = now_ns();
    int r = connect(fd, (const struct sockaddr *)sa, sizeof *sa);
    uint64_t t1 = now_ns();
    if (r != 0) {
        close(fd);
        return -1;
    }
    char buf[64];
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0) {}
    close(fd);
    uint64_t t2 = now_ns();
    if (got < 0) return -1;
    *connect_ns = t1 - t0;
    *cycle_ns = t2 - t0;
    return 0;
}

static int run_connects(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: connect-latency connect HOST PORT COUNT WARMUP OUTFILE [TIMEOUT_MS]\n");
        return 2;
    }
    struct sockaddr_in sa;
    if (address(argv[0], argv[1], &sa) != 0) return 2;
    long count = atol(argv[2]), warmup = atol(argv[3]);
    int timeout_ms = argc > 5 ? atoi(argv[5]) : 3000;
    uint64_t *samples = calloc((size_t)(count > 0 ? count : 1) * 2, sizeof *samples);
    FILE *out = fopen(argv[4], "w");
    if (!samples || !out) {
        perror(argv[4]);
        return 2;
    }
    long ok = 0, failed = 0;
    for (long i = 0; i < warmup + count; i++) {
        uint64_t c, y;
        if (one(&sa, timeout_ms, &c, &y) != 0) {
            failed++;
            continue;
        }
        if (i >= warmup) {
            samples[2 * ok] = c;
            samples[2 * ok + 1] = y;
            ok++;
        }
    }
    /* Written after the loop, so that no file I/O sits between two connects. */
    for (long i = 0; i < ok; i++) fprintf(out, "%llu %llu\n", (unsigned long long)samples[2 * i], (unsigned long long)samples[2 * i + 1]);
    fclose(out);
    printf("ok %ld failed %ld\n", ok, failed);
    return failed ? 1 : 0;
}

static int probe(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: connect-latency probe HOST PORT TIMEOUT_MS\n");
        return 2;
    }
    struct sockaddr_in sa;
    if (address(argv[0], argv[1], &sa) != 0) return 2;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        printf("refused %s\n", strerror(errno));
        return 1;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    if (poll(&p, 1, atoi(argv[2])) != 1) {
        printf("timeout\n");
        return 1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    close(fd);
    if (err) {
        printf("refused %s\n", strerror(err));
        return 1;
    }
    printf("connected\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "serve") == 0) return serve(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "connect") == 0) return run_connects(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "probe") == 0) return probe(argc - 2, argv + 2);
    fprintf(stderr, "usage: connect-latency serve PORT... | connect HOST PORT COUNT WARMUP OUTFILE [TIMEOUT_MS] | probe HOST PORT TIMEOUT_MS\n");
    return 2;
}
