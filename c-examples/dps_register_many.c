/*
 * dps_register_many: provisions N devices of one enrollment group concurrently from one thread,
 * as a factory line or a gateway does. One poll() loop drives every handle through
 * dps_client_do_work; the transport hooks are non-blocking sockets owned by this program, so the
 * loop knows each descriptor and what it waits for.
 *
 *   dps_register_many --host H --port P --ca-file F --id-scope S --group-key K
 *                     [--count N] [--in-flight M] [--prefix P] [--timeout S]
 *
 * Devices are named PREFIX0 .. PREFIX(N-1); each one's key is derived from the group key by
 * the library. At most M registrations run at once (default: all N); a handle is freed as soon
 * as its registration ends, so the heap held is that of the registrations in flight.
 *
 * stdout: one JSON object per device, in the order they finish:
 *   {"registrationId":"device-7","result":"DPS_OK","assignedHub":"...","deviceId":"...","ms":41}
 *   {"registrationId":"device-8","result":"DPS_ERR_...","message":"...","hint":"...",
 *    "detail":"send: Connection refused","ms":30000}          (detail: when the cause is known)
 * stderr: one JSON summary at the end: counts, wall time, the most handles in flight, the
 * library's peak heap (dps_heap_usage), and its heap per in-flight handle at steady state: the
 * median, over the loop's turns with at least M/2 in flight, of the heap over the handles.
 * Exit code: 0 when every device was assigned, 1 when any was not, 2 for a usage error.
 *
 * The host name is resolved once, before the first connect, and every connection goes to that
 * address: N lookups of the same name would cost N round trips to the resolver (or N threads
 * for the built-in transport's lookup) for nothing.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_common.h" /* cli_parse_ulong, shared with the CLIs */
#include "dps_mqtt.h"

#ifdef MSG_NOSIGNAL
#define SEND_FLAGS MSG_NOSIGNAL /* a reset peer must give EPIPE, not kill us with SIGPIPE */
#else
#define SEND_FLAGS 0 /* main() ignores SIGPIPE instead */
#endif

enum { REG_ID_MAX = 128 };

/* The one address every device connects to. */
static struct sockaddr_storage server_addr;
static socklen_t server_addr_len;

/* One device: its handle, its socket, and when the loop must call it again. */
typedef struct device {
    dps_client *client;
    int fd;               /* -1 when not connected */
    uint64_t started_ms;  /* when its registration started */
    uint64_t wake_ms;     /* the latest time to call dps_client_do_work again */
    int err;              /* errno of the last failed hook, for error_detail */
    const char *failed;   /* which call failed, for error_detail */
    char registration_id[REG_ID_MAX];
} device;

static uint64_t monotonic_ms(void) {
    struct timespec t;

    (void)clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static int would_block(int err) {
    return err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == EINPROGRESS;
}

static ptrdiff_t hook_failed(device *d, const char *what, int err) {
    d->failed = what;
    d->err = err;
    return DPS_IO_ERROR;
}

/* connect hook: starts a non-blocking connect; send and recv say DPS_IO_WOULD_BLOCK until it
 * is up (the kernel answers EAGAIN on a socket still connecting). */
static int dev_connect(void *user, const char *host, uint16_t port) {
    device *d = (device *)user;
    int fd, one = 1;

    (void)host; /* resolved once in main() */
    (void)port;
    d->failed = NULL;
    fd = socket(server_addr.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
        return (int)hook_failed(d, "socket: ", errno);
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
        fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        int err = errno;
        close(fd);
        return (int)hook_failed(d, "fcntl: ", err);
    }
    /* MQTT packets are small and each one is waited for: Nagle would only add delay. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)&server_addr, server_addr_len) != 0 &&
        errno != EINPROGRESS) {
        int err = errno;
        close(fd);
        return (int)hook_failed(d, "connect: ", err);
    }
    d->fd = fd;
    return 0;
}

static ptrdiff_t dev_send(void *user, const uint8_t *buf, size_t len) {
    device *d = (device *)user;
    ssize_t n = send(d->fd, buf, len, SEND_FLAGS);

    if (n >= 0) {
        return (ptrdiff_t)n;
    }
    return would_block(errno) ? DPS_IO_WOULD_BLOCK : hook_failed(d, "send: ", errno);
}

static ptrdiff_t dev_recv(void *user, uint8_t *buf, size_t len) {
    device *d = (device *)user;
    ssize_t n = recv(d->fd, buf, len, 0);

    if (n >= 0) {
        return (ptrdiff_t)n;
    }
    if (errno == ECONNRESET) {
        return 0; /* the peer is gone; the library first acts on what it already received */
    }
    return would_block(errno) ? DPS_IO_WOULD_BLOCK : hook_failed(d, "recv: ", errno);
}

static void dev_close(void *user) {
    device *d = (device *)user;

    if (d->fd >= 0) {
        close(d->fd);
    }
    d->fd = -1;
}

static size_t dev_error_detail(void *user, char *buf, size_t len) {
    const device *d = (const device *)user;
    int n;

    if (d->failed == NULL) {
        return 0;
    }
    n = snprintf(buf, len, "%s%s", d->failed, strerror(d->err));
    return n < 0 ? 0 : ((size_t)n < len ? (size_t)n : len);
}

/* Prints `s` as the inside of a JSON string. */
static void json_text(const char *s) {
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
}

static void report(const device *d, dps_result r, uint64_t now) {
    printf("{\"registrationId\":\"");
    json_text(d->registration_id);
    printf("\",\"result\":\"%s\"", dps_result_name(r));
    if (r == DPS_OK) {
        printf(",\"assignedHub\":\"");
        json_text(dps_client_assigned_hub(d->client));
        printf("\",\"deviceId\":\"");
        json_text(dps_client_device_id(d->client));
        printf("\"");
    } else {
        const char *message = dps_client_error_message(d->client);
        const char *detail = dps_client_result_detail(d->client);
        printf(",\"message\":\"");
        json_text(message != NULL ? message : dps_result_str(r));
        printf("\",\"hint\":\"");
        json_text(dps_result_hint(r));
        printf("\"");
        if (detail != NULL && *detail != '\0') {
            printf(",\"detail\":\"");
            json_text(detail);
            printf("\"");
        }
    }
    printf(",\"ms\":%llu}\n", (unsigned long long)(now - d->started_ms));
}

typedef struct options {
    const char *host, *ca_file, *id_scope, *group_key, *prefix;
    unsigned long port, count, in_flight, timeout_s;
} options;

static const char usage[] =
    "usage: dps_register_many --host HOST --port PORT --ca-file FILE --id-scope SCOPE\n"
    "                         --group-key BASE64 [--count N] [--in-flight M]\n"
    "                         [--prefix PREFIX] [--timeout SECONDS]\n"
    "  provisions N devices (PREFIX0 .. PREFIX(N-1), default device-, N default 1) of one\n"
    "  enrollment group from one thread, at most M at once (default N); one JSON line per\n"
    "  device on stdout, a JSON summary on stderr\n";

/* Returns NULL, or what is wrong with the command line. */
static const char *parse_args(int argc, char **argv, options *o) {
    int i;

    memset(o, 0, sizeof *o);
    o->prefix = "device-";
    o->count = 1;
    for (i = 1; i < argc; i += 2) {
        const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(flag, "--help") == 0) {
            return "";
        }
        if (value == NULL) {
            return "an option is missing its value";
        }
        if (strcmp(flag, "--host") == 0) {
            o->host = value;
        } else if (strcmp(flag, "--ca-file") == 0) {
            o->ca_file = value;
        } else if (strcmp(flag, "--id-scope") == 0) {
            o->id_scope = value;
        } else if (strcmp(flag, "--group-key") == 0) {
            o->group_key = value;
        } else if (strcmp(flag, "--prefix") == 0) {
            o->prefix = value;
        } else if (strcmp(flag, "--port") == 0) {
            if (cli_parse_ulong(value, 1, 65535, &o->port) != 0) {
                return "--port: a number from 1 to 65535";
            }
        } else if (strcmp(flag, "--count") == 0) {
            if (cli_parse_ulong(value, 1, 10000000, &o->count) != 0) {
                return "--count: a number from 1 to 10000000";
            }
        } else if (strcmp(flag, "--in-flight") == 0) {
            if (cli_parse_ulong(value, 1, 1000000, &o->in_flight) != 0) {
                return "--in-flight: a number from 1 to 1000000";
            }
        } else if (strcmp(flag, "--timeout") == 0) {
            if (cli_parse_ulong(value, 1, 4294967, &o->timeout_s) != 0) {
                return "--timeout: seconds, from 1 to 4294967";
            }
        } else {
            return "unknown option (see --help)";
        }
    }
    if (o->host == NULL || o->port == 0 || o->ca_file == NULL || o->id_scope == NULL ||
        o->group_key == NULL) {
        return "--host, --port, --ca-file, --id-scope and --group-key are required";
    }
    if (o->in_flight == 0 || o->in_flight > o->count) {
        o->in_flight = o->count;
    }
    if (strlen(o->prefix) + 12 > REG_ID_MAX) {
        return "--prefix is too long";
    }
    return NULL;
}

/* Reads the CA file into a buffer of its own size; NULL on failure. */
static uint8_t *read_ca(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *buf = NULL;

    if (f == NULL) {
        return NULL;
    }
    if (fstat(fileno(f), &st) == 0 && st.st_size > 0 && st.st_size < (1 << 20)) {
        buf = (uint8_t *)malloc((size_t)st.st_size);
        if (buf != NULL && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)st.st_size;
    }
    fclose(f);
    return buf;
}

/* Each device descriptor is one open file: lift the soft limit to the hard one, which is all
 * an unprivileged process may do. */
static void raise_fd_limit(void) {
    struct rlimit l;

    if (getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < l.rlim_max) {
        l.rlim_cur = l.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &l);
    }
}

static int resolve(const char *host, unsigned long port) {
    struct addrinfo hints, *res = NULL;
    char service[24];
    int rc;

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%lu", port);
    rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0 || res == NULL || res->ai_addrlen > sizeof server_addr) {
        fprintf(stderr, "dps_register_many: cannot resolve %s: %s\n", host,
                rc != 0 ? gai_strerror(rc) : "no address");
        if (res != NULL) {
            freeaddrinfo(res);
        }
        return -1;
    }
    memcpy(&server_addr, res->ai_addr, res->ai_addrlen);
    server_addr_len = (socklen_t)res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int compare_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static size_t median(size_t *v, size_t n) {
    qsort(v, n, sizeof *v, compare_size);
    return v[n / 2];
}

/* Creates device `index`'s handle and starts its registration. Returns the result of its first
 * dps_client_do_work, or the error that stopped it before (e.g. a refused setting). */
static dps_result start_device(device *d, const options *o, unsigned long index,
                               const uint8_t *ca, size_t ca_len, uint64_t now) {
    dps_transport t;
    dps_config *cfg = dps_config_new();
    dps_result r = cfg != NULL ? DPS_OK : DPS_ERR_OUT_OF_MEMORY;
    uint32_t next_ms = 0;

    memset(d, 0, sizeof *d);
    d->fd = -1;
    d->started_ms = now;
    snprintf(d->registration_id, sizeof d->registration_id, "%s%lu", o->prefix, index);
    if (r == DPS_OK) {
        r = dps_config_set_id_scope(cfg, o->id_scope);
    }
    if (r == DPS_OK) {
        r = dps_config_set_registration_id(cfg, d->registration_id);
    }
    if (r == DPS_OK) {
        r = dps_config_set_group_key(cfg, o->group_key);
    }
    if (r == DPS_OK) {
        r = dps_config_set_endpoint(cfg, o->host, (uint16_t)o->port);
    }
    if (r == DPS_OK) {
        r = dps_config_add_trust_anchors_pem(cfg, ca, ca_len, false);
    }
    if (r == DPS_OK && o->timeout_s != 0) {
        r = dps_config_set_timeout_ms(cfg, (uint32_t)(o->timeout_s * 1000u));
    }
    memset(&t, 0, sizeof t);
    t.user = d;
    t.connect = dev_connect;
    t.send = dev_send;
    t.recv = dev_recv;
    t.close = dev_close;
    t.error_detail = dev_error_detail;
    if (r == DPS_OK) {
        r = dps_client_new(cfg, &t, &d->client);
    }
    dps_config_free(cfg);
    if (r != DPS_OK) {
        return r;
    }
    r = dps_client_do_work(d->client, &next_ms);
    d->wake_ms = now + next_ms;
    return r;
}

int main(int argc, char **argv) {
    options o;
    const char *problem = parse_args(argc, argv, &o);
    uint8_t *ca;
    size_t ca_len = 0, heap_now = 0, heap_peak = 0;
    device *slots, **live, **spare;
    struct pollfd *fds;
    unsigned long spares;
    unsigned long next = 0, active = 0, assigned = 0, failed = 0, peak_in_flight = 0, i;
    size_t *per_handle = NULL, samples = 0, samples_cap = 0;
    uint64_t t0;

    if (problem != NULL) {
        if (*problem == '\0') {
            fputs(usage, stdout);
            return 0;
        }
        fprintf(stderr, "dps_register_many: %s\n%s", problem, usage);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    ca = read_ca(o.ca_file, &ca_len);
    if (ca == NULL) {
        fprintf(stderr, "dps_register_many: cannot read %s\n", o.ca_file);
        return 2;
    }
    if (resolve(o.host, o.port) != 0) {
        free(ca);
        return 1;
    }
    /* A device never moves (the library holds its address as the hooks' `user`): `slots` are
     * the devices, `live` points at the ones in flight, packed at the front, with `fds` in the
     * same order, and `spare` at the free slots. */
    slots = (device *)calloc(o.in_flight, sizeof *slots);
    live = (device **)calloc(o.in_flight, sizeof *live);
    spare = (device **)calloc(o.in_flight, sizeof *spare);
    fds = (struct pollfd *)calloc(o.in_flight, sizeof *fds);
    for (spares = 0; slots != NULL && spare != NULL && spares < o.in_flight; spares++) {
        spare[spares] = &slots[o.in_flight - 1 - spares];
    }
    if (slots == NULL || live == NULL || spare == NULL || fds == NULL) {
        fprintf(stderr, "dps_register_many: out of memory\n");
        return 1;
    }
    t0 = monotonic_ms();
    dps_heap_reset_peak();
    while (next < o.count || active > 0) {
        uint64_t now = monotonic_ms(), wake = UINT64_MAX;
        int timeout;

        /* Top up to M registrations in flight; one that ends at once is reported here. */
        while (next < o.count && active < o.in_flight) {
            device *d = spare[--spares];
            dps_result r = start_device(d, &o, next++, ca, ca_len, now);
            if (r == DPS_PENDING) {
                live[active++] = d;
                continue;
            }
            report(d, r, now);
            r == DPS_OK ? assigned++ : failed++;
            dps_client_free(d->client);
            spare[spares++] = d;
        }
        if (active > peak_in_flight) {
            peak_in_flight = active;
        }
        if (active == 0) {
            break;
        }
        /* Steady state: the loop's turns with at least half the limit in flight. */
        dps_heap_usage(&heap_now, NULL);
        if (active * 2 >= o.in_flight) {
            if (samples == samples_cap) {
                size_t cap = samples_cap != 0 ? samples_cap * 2 : 1024;
                size_t *bigger = (size_t *)realloc(per_handle, cap * sizeof *per_handle);
                if (bigger != NULL) {
                    per_handle = bigger;
                    samples_cap = cap;
                }
            }
            if (samples < samples_cap) {
                per_handle[samples++] = heap_now / active;
            }
        }
        for (i = 0; i < active; i++) {
            const device *d = live[i];
            /* The library's socket, or nothing yet: wait for its time only. */
            fds[i].fd = d->fd;
            fds[i].events = (short)(POLLIN | (dps_client_wants_write(d->client) ? POLLOUT : 0));
            fds[i].revents = 0;
            if (d->wake_ms < wake) {
                wake = d->wake_ms;
            }
        }
        timeout = wake <= now ? 0 : (wake - now > INT_MAX ? INT_MAX : (int)(wake - now));
        if (poll(fds, (nfds_t)active, timeout) < 0 && errno != EINTR) {
            perror("dps_register_many: poll");
            return 1;
        }
        now = monotonic_ms();
        for (i = 0; i < active;) {
            device *d = live[i];
            uint32_t next_ms = 0;
            dps_result r;

            if (fds[i].revents == 0 && d->wake_ms > now) {
                i++;
                continue;
            }
            r = dps_client_do_work(d->client, &next_ms);
            if (r == DPS_PENDING) {
                d->wake_ms = now + next_ms;
                i++;
                continue;
            }
            report(d, r, monotonic_ms());
            r == DPS_OK ? assigned++ : failed++;
            dps_client_free(d->client);
            spare[spares++] = d;
            /* Keep the in-flight ones packed: the last takes this one's place. */
            active--;
            live[i] = live[active];
            fds[i] = fds[active];
        }
    }
    dps_heap_usage(NULL, &heap_peak);
    fprintf(stderr,
            "{\"count\":%lu,\"assigned\":%lu,\"failed\":%lu,\"wallMs\":%llu,"
            "\"inFlightLimit\":%lu,\"peakInFlight\":%lu,\"peakHeapBytes\":%zu,"
            "\"heapPerInFlightBytes\":%llu}\n",
            o.count, assigned, failed, (unsigned long long)(monotonic_ms() - t0), o.in_flight,
            peak_in_flight, heap_peak,
            (unsigned long long)(samples != 0 ? median(per_handle, samples) : 0));
    free(per_handle);
    free(fds);
    free(spare);
    free(live);
    free(slots);
    free(ca);
    return failed == 0 ? 0 : 1;
}
