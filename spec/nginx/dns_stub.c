/* dns_stub.c: a name server that is slow to answer, for spec/nginx/dns_spec.lua
 * (run by scripts/with-dns-stub.sh).
 *
 *   dns_stub ADDRESS DELAY_MS LOG
 *
 * Listens on UDP ADDRESS:53 and answers every query DELAY_MS milliseconds
 * after it arrived: names under .dbpool.test get an A record 127.0.0.1 (and
 * no AAAA), any other name NXDOMAIN.  Each query is appended to LOG as
 * "<name> <qtype>", so a spec can count lookups.  Queries are answered in
 * arrival order from a small queue; it never blocks on one. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QUEUE 64

typedef struct pending {
    unsigned char buf[512];
    size_t len;
    struct sockaddr_storage from;
    socklen_t fromlen;
    double due;
} pending;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The question's name as text ("a.b.c") and where the question's type is;
 * 0 when the packet is malformed. */
static size_t parse_question(const unsigned char *q, size_t len, char *name, size_t size)
{
    size_t at = 12, used = 0;

    while (at < len && q[at] != 0) {
        size_t n = q[at++];
        if (n > 63 || at + n > len || used + n + 2 > size)
            return 0;
        if (used > 0)
            name[used++] = '.';
        memcpy(name + used, q + at, n);
        used += n, at += n;
    }
    name[used] = '\0';
    return at + 5 <= len ? at + 1 : 0;   /* past the root label: type, class */
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Turns the query in p into its answer, in place. */
static void answer(pending *p, FILE *log)
{
    char name[256];
    unsigned char *m = p->buf;
    size_t qtype_at = parse_question(m, p->len, name, sizeof name);
    if (qtype_at == 0)
        return;
    unsigned qtype = (unsigned)m[qtype_at] << 8 | m[qtype_at + 1];
    int ours = ends_with(name, ".dbpool.test");
    fprintf(log, "%s %u\n", name, qtype);
    fflush(log);

    size_t end = qtype_at + 4;            /* the question, as asked */
    m[2] = (unsigned char)(0x80 | (m[2] & 0x01));   /* QR, RD as asked */
    m[3] = (unsigned char)(0x80 | (ours ? 0 : 3));  /* RA; NOERROR or NXDOMAIN */
    m[4] = 0, m[5] = 1;                   /* QDCOUNT 1 */
    m[6] = 0, m[7] = (ours && qtype == 1) ? 1 : 0;  /* ANCOUNT */
    memset(m + 8, 0, 4);                  /* NSCOUNT, ARCOUNT */
    if (ours && qtype == 1 && end + 16 <= sizeof p->buf) {
        static const unsigned char rr[16] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5,
                                             0, 4, 127, 0, 0, 1};
        memcpy(m + end, rr, sizeof rr);
        end += sizeof rr;
    }
    p->len = end;
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(53)};
    pending queue[QUEUE];
    int head = 0, count = 0, fd;
    FILE *log;

    if (argc != 4 || inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        fprintf(stderr, "usage: dns_stub ADDRESS DELAY_MS LOG\n");
        return 2;
    }
    double delay = atof(argv[2]) / 1000.0;
    if ((log = fopen(argv[3], "a")) == NULL || (fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0 ||
        bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("dns_stub");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        int wait_ms = count == 0 ? -1 : (int)((queue[head].due - now_s()) * 1000) + 1;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, wait_ms < 0 && count > 0 ? 0 : wait_ms) > 0 && count < QUEUE) {
            pending *p = &queue[(head + count) % QUEUE];
            p->fromlen = sizeof p->from;
            ssize_t n = recvfrom(fd, p->buf, sizeof p->buf, 0, (struct sockaddr *)&p->from,
                                 &p->fromlen);
            if (n >= 12) {
                p->len = (size_t)n, p->due = now_s() + delay;
                count++;
            }
        }
        while (count > 0 && queue[head].due <= now_s()) {
            pending *p = &queue[head];
            answer(p, log);
            sendto(fd, p->buf, p->len, 0, (struct sockaddr *)&p->from, p->fromlen);
            head = (head + 1) % QUEUE, count--;
        }
    }
}
