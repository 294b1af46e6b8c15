/* One registration with every allocation of the library inside a fixed-size arena
 * (firmware/common/arena.c, the allocator of the Cortex-M image), installed through
 * dps_set_allocator before any other dps_ call. Prints one JSON line: the result, the
 * assignment, the arena's size and high-water mark, the library's own peak
 * (dps_heap_usage), and what the arena still holds after everything was freed.
 *
 *   heap_arena tls|offload ARENA_BYTES RESERVE_BYTES HOST PORT CA_FILE SCOPE REG_ID KEY
 *
 * tls: the library's TLS over the built-in TCP transport, trusting CA_FILE.
 * offload: TLS offload; HOST:PORT is a relay that does TLS toward the service (what a modem
 * does), reached with the plain non-blocking socket hooks below; CA_FILE is unused.
 * Exit status: 0 when the run ended cleanly (whatever the result), 1 on a usage error or
 * when the arena was left holding memory or saw a bad free. */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../firmware/common/arena.h"
#include "dps_mqtt.h"

typedef struct {
    int fd;
} plain_socket;

static int plain_connect(void *user, const char *host, uint16_t port) {
    plain_socket *s = user;
    struct addrinfo hints, *res = NULL, *ai;
    char service[8];
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%u", (unsigned)port);
    if (getaddrinfo(host, service, &hints, &res) != 0) {
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            s->fd = fd;
            break;
        }
        close(fd);
    }
    freeaddrinfo(res);
    return s->fd >= 0 ? 0 : -1;
}

static ptrdiff_t plain_io(ssize_t n) {
    if (n >= 0) {
        return n;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ENOTCONN
               ? DPS_IO_WOULD_BLOCK
               : DPS_IO_ERROR;
}

static ptrdiff_t plain_send(void *user, const uint8_t *buf, size_t len) {
    plain_socket *s = user;
    return plain_io(send(s->fd, buf, len, MSG_NOSIGNAL));
}

static ptrdiff_t plain_recv(void *user, uint8_t *buf, size_t len) {
    plain_socket *s = user;
    return plain_io(recv(s->fd, buf, len, 0));
}

static void plain_close(void *user) {
    plain_socket *s = user;
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
}

static void plain_wait(void *user, uint32_t timeout_ms, bool want_write) {
    plain_socket *s = user;
    struct pollfd p;
    p.fd = s->fd;
    p.events = (short)(POLLIN | (want_write ? POLLOUT : 0));
    poll(&p, s->fd >= 0 ? 1 : 0, (int)(timeout_ms > 1000 ? 1000 : timeout_ms));
}

static void *arena_hook_alloc(void *user, size_t size, size_t align) {
    return arena_alloc(user, size, align);
}

static void arena_hook_free(void *user, void *ptr, size_t size, size_t align) {
    arena_free(user, ptr, size, align);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long size;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (data = malloc((size_t)size + 1)) == NULL ||
        fread(data, 1, (size_t)size, f) != (size_t)size) {
        free(data);
        data = NULL;
    } else {
        *len = (size_t)size;
    }
    if (f != NULL) {
        fclose(f);
    }
    return data;
}

int main(int argc, char **argv) {
    arena heap;
    void *memory;
    dps_allocator allocator;
    dps_config *cfg;
    dps_client *client = NULL;
    plain_socket sock = {-1};
    dps_transport transport;
    dps_result r;
    size_t arena_bytes, library_now = 0, library_peak = 0;
    int offload;
    const char *hub, *device;

    if (argc != 10 || (strcmp(argv[1], "tls") != 0 && strcmp(argv[1], "offload") != 0)) {
        fprintf(stderr, "usage: %s tls|offload ARENA RESERVE HOST PORT CA SCOPE REG_ID KEY\n",
                argv[0]);
        return 1;
    }
    offload = strcmp(argv[1], "offload") == 0;
    arena_bytes = strtoul(argv[2], NULL, 10);
    memory = malloc(arena_bytes);
    if (memory == NULL) {
        return 1;
    }
    arena_init(&heap, memory, arena_bytes);
    allocator.user = &heap;
    allocator.alloc = arena_hook_alloc;
    allocator.free = arena_hook_free;
    allocator.reserve = strtoul(argv[3], NULL, 10);
    r = dps_set_allocator(&allocator);
    if (r == DPS_OK) {
        cfg = dps_config_new();
        r = cfg == NULL ? DPS_ERR_OUT_OF_MEMORY : DPS_OK;
        if (r == DPS_OK) {
            r = dps_config_set_id_scope(cfg, argv[7]);
        }
        if (r == DPS_OK) {
            r = dps_config_set_registration_id(cfg, argv[8]);
        }
        if (r == DPS_OK) {
            r = dps_config_set_symmetric_key(cfg, argv[9]);
        }
        if (r == DPS_OK) {
            r = dps_config_set_endpoint(cfg, argv[4], (uint16_t)atoi(argv[5]));
        }
        if (r == DPS_OK && offload) {
            r = dps_config_set_tls_offload(cfg, true);
        } else if (r == DPS_OK) {
            size_t len = 0;
            char *pem = read_file(argv[6], &len);
            r = pem == NULL ? DPS_ERR_INVALID_ARGUMENT
                            : dps_config_set_trust_anchors_pem(cfg, (const uint8_t *)pem, len,
                                                                false);
            free(pem);
        }
        if (r == DPS_OK) {
            transport.user = &sock;
            transport.connect = plain_connect;
            transport.send = plain_send;
            transport.recv = plain_recv;
            transport.close = plain_close;
            transport.wait = plain_wait;
            r = dps_client_new(cfg, offload ? &transport : NULL, &client);
        }
        if (r == DPS_OK) {
            r = dps_client_register(client);
        }
        hub = r == DPS_OK ? dps_client_assigned_hub(client) : NULL;
        device = r == DPS_OK ? dps_client_device_id(client) : NULL;
        dps_heap_usage(&library_now, &library_peak);
        printf("{\"result\":\"%s\",\"hub\":\"%s\",\"device\":\"%s\",\"arena\":%zu,"
               "\"high_water\":%zu,\"library_peak\":%zu,\"arena_failures\":%zu,",
               dps_result_name(r), hub ? hub : "", device ? device : "", heap.size,
               heap.high_water, library_peak, heap.failures);
        dps_client_free(client);
        dps_config_free(cfg);
    } else {
        printf("{\"result\":\"%s\",", dps_result_name(r));
    }
    /* The reserve goes back too, so the arena must end empty. */
    dps_set_allocator(NULL);
    dps_heap_usage(&library_now, &library_peak);
    printf("\"left_in_arena\":%zu,\"library_left\":%zu,\"bad_frees\":%zu}\n", heap.in_use,
           library_now, heap.bad_frees);
    free(memory);
    return heap.in_use == 0 && library_now == 0 && heap.bad_frees == 0 ? 0 : 1;
}
