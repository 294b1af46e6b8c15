/*
 * dps-mqtt hooks over an AT-command modem with TLS offload; see at_dps_transport.h and
 * docs/porting.md.
 *
 * Every hook returns at once. The connect hook only queues AT+TLSOPEN and returns 0 (in
 * progress); the modem's answer arrives later and is read by whichever hook runs next: send and
 * recv say DPS_IO_WOULD_BLOCK until CONNECT, and after "ERROR: tls-..." they return the negated
 * DPS_ERR_TLS_* code, which ends the attempt with that code instead of reconnecting. Received
 * bytes go through a small ring, so a send that reads the modem's answers never loses data.
 */
#include "at_dps_transport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "uart.h"

#define DLE 0x10u
#define DLE_CLOSE 'C'
#define DLE_LOST 'E'
#define LINE_MAX 128u
#define RING_SIZE 1024u /* a power of two; each ring holds what the UART is behind by */

typedef enum {
    LINK_IDLE,
    LINK_OPENING,   /* AT+TLSOPEN sent, no answer yet */
    LINK_ABANDONED, /* closed while opening: a CONNECT still to come gets a DLE C */
    LINK_OPEN,
    LINK_CLOSING,   /* we sent DLE C: drop data until the modem's DLE C */
    LINK_PEER_CLOSED,
    LINK_LOST,
    LINK_FAILED     /* AT+TLSOPEN answered ERROR */
} link_state;

typedef struct ring {
    uint8_t bytes[RING_SIZE];
    uint32_t head, tail; /* free-running; head - tail = bytes held */
} ring;

static struct {
    link_state link;
    ptrdiff_t failure;   /* what send/recv return once LINK_FAILED */
    int in_data;         /* the modem is in data mode: received bytes are data, not lines */
    int dle;             /* the last received byte was a DLE */
    char line[LINE_MAX];
    size_t line_len;
    int final;           /* at_command: 0 waiting, 1 OK, -1 ERROR */
    char *info;
    size_t info_len;
    ring rx, tx;
} modem;

static size_t ring_len(const ring *r) { return (size_t)(r->head - r->tail); }
static size_t ring_room(const ring *r) { return RING_SIZE - ring_len(r); }
static void ring_put(ring *r, uint8_t b) { r->bytes[r->head++ & (RING_SIZE - 1u)] = b; }
static uint8_t ring_get(ring *r) { return r->bytes[r->tail++ & (RING_SIZE - 1u)]; }

/* Hands the TX ring to the UART, as much as its FIFO takes. Under offload the bytes are MQTT
 * in the clear, the CONNECT with its SAS token among them: each byte is wiped from the ring as
 * the UART takes it (the library wipes its own buffers). */
static void flush_tx(void) {
    while (ring_len(&modem.tx) > 0) {
        uint32_t at = modem.tx.tail & (RING_SIZE - 1u);
        size_t run = RING_SIZE - at, n;
        if (run > ring_len(&modem.tx)) {
            run = ring_len(&modem.tx);
        }
        n = uart_write(&modem.tx.bytes[at], run);
        memset(&modem.tx.bytes[at], 0, n);
        modem.tx.tail += (uint32_t)n;
        if (n < run) {
            return;
        }
    }
}

/* Queues a whole command line, or nothing when the TX ring lacks room. */
static int queue_text(const char *text) {
    size_t len = strlen(text);
    if (len > ring_room(&modem.tx)) {
        return -1;
    }
    while (*text != '\0') {
        ring_put(&modem.tx, (uint8_t)*text++);
    }
    flush_tx();
    return 0;
}

/* The hook result for a TLSOPEN error: the modem's TLS failures as negated DPS_ERR_TLS_*
 * codes (the attempt ends with them: no reconnect cures a certificate problem), anything
 * else (dns, refused, timeout) as a transport error, which the library retries. */
static ptrdiff_t failure_for(const char *reason) {
    if (strcmp(reason, "tls-untrusted") == 0) return -(ptrdiff_t)DPS_ERR_TLS_CERT_UNTRUSTED;
    if (strcmp(reason, "tls-expired") == 0) return -(ptrdiff_t)DPS_ERR_TLS_CERT_EXPIRED;
    if (strcmp(reason, "tls-name") == 0) return -(ptrdiff_t)DPS_ERR_TLS_CERT_NAME_MISMATCH;
    if (strncmp(reason, "tls", 3) == 0) return -(ptrdiff_t)DPS_ERR_TLS_HANDSHAKE;
    return DPS_IO_ERROR;
}

static void on_line(const char *line) {
    if (strcmp(line, "CONNECT") == 0) {
        if (modem.link == LINK_OPENING) {
            modem.link = LINK_OPEN;
        } else {
            /* The library gave up on this open before the answer came: end it at once. */
            static const uint8_t end[2] = {DLE, DLE_CLOSE};
            if (ring_room(&modem.tx) >= 2) {
                ring_put(&modem.tx, end[0]);
                ring_put(&modem.tx, end[1]);
            }
            modem.link = LINK_CLOSING;
        }
        modem.in_data = 1;
    } else if (strncmp(line, "ERROR", 5) == 0) {
        if (modem.link == LINK_OPENING) {
            modem.link = LINK_FAILED;
            modem.failure = failure_for(strncmp(line, "ERROR: ", 7) == 0 ? line + 7 : "");
        } else if (modem.link == LINK_ABANDONED) {
            modem.link = LINK_IDLE;
        } else {
            modem.final = -1;
        }
    } else if (strcmp(line, "OK") == 0) {
        modem.final = 1;
    } else if (line[0] == '+' && modem.info != NULL && modem.info[0] == '\0') {
        snprintf(modem.info, modem.info_len, "%s", line);
    }
}

/* Reads what the UART holds, while the RX ring has room: lines change the state, data bytes
 * go to the RX ring (dropped while closing). Stopping when the ring is full leaves the rest in
 * the UART, whose flow control (RTS/CTS) holds the modem back. */
static void pump_rx(void) {
    uint8_t chunk[64];
    size_t n, i;

    while (ring_room(&modem.rx) >= sizeof chunk && (n = uart_read(chunk, sizeof chunk)) > 0) {
        for (i = 0; i < n; i++) {
            uint8_t b = chunk[i];
            if (!modem.in_data) {
                /* Answers are "\r\n<text>\r\n": a line ends at its LF, so that data mode
                 * begins after CONNECT's last byte. */
                if (b == '\n') {
                    modem.line[modem.line_len] = '\0';
                    if (modem.line_len > 0) {
                        on_line(modem.line);
                    }
                    modem.line_len = 0;
                } else if (b != '\r' && modem.line_len + 1 < LINE_MAX) {
                    modem.line[modem.line_len++] = (char)b;
                }
            } else if (modem.dle) {
                modem.dle = 0;
                if (b == DLE) {
                    if (modem.link == LINK_OPEN) {
                        ring_put(&modem.rx, DLE);
                    }
                } else if (b == DLE_CLOSE || b == DLE_LOST) {
                    modem.in_data = 0;
                    if (modem.link == LINK_OPEN) {
                        modem.link = b == DLE_CLOSE ? LINK_PEER_CLOSED : LINK_LOST;
                    } else if (modem.link == LINK_CLOSING) {
                        modem.link = LINK_IDLE;
                    }
                }
            } else if (b == DLE) {
                modem.dle = 1;
            } else if (modem.link == LINK_OPEN) {
                ring_put(&modem.rx, b);
            }
        }
    }
    flush_tx();
}

/* connect hook: queues AT+TLSOPEN and returns 0 (in progress); the answer is read later.
 * Nothing here waits, not even for DNS: the modem resolves the name. */
static int at_hook_connect(void *user, const char *host, uint16_t port) {
    char command[300];

    (void)user;
    pump_rx();
    /* After our DLE C (LINK_CLOSING) the command may follow at once: the modem reads it after
     * leaving data mode, and its answer comes after its own DLE C. An open given up before its
     * answer (LINK_ABANDONED) must get that answer first; the library backs off and retries. */
    if (modem.link == LINK_OPENING || modem.link == LINK_OPEN || modem.link == LINK_ABANDONED) {
        return -1;
    }
    if (snprintf(command, sizeof command, "AT+TLSOPEN=\"%s\",%u\r", host, (unsigned)port) >=
            (int)sizeof command ||
        queue_text(command) != 0) {
        return -1;
    }
    modem.rx.head = modem.rx.tail = 0;
    modem.link = LINK_OPENING;
    return 0;
}

/* send hook: escapes into the TX ring as much as fits (DLE doubled) and hands it to the UART;
 * a short count is normal, the library offers the rest again. */
static ptrdiff_t at_hook_send(void *user, const uint8_t *buf, size_t len) {
    size_t taken = 0;

    (void)user;
    pump_rx();
    switch (modem.link) {
    case LINK_OPENING: return DPS_IO_WOULD_BLOCK;
    case LINK_FAILED: return modem.failure;
    case LINK_OPEN: break;
    default: return DPS_IO_ERROR; /* closed under us: the library reconnects */
    }
    while (taken < len && ring_room(&modem.tx) >= (buf[taken] == DLE ? 2u : 1u)) {
        if (buf[taken] == DLE) {
            ring_put(&modem.tx, DLE);
        }
        ring_put(&modem.tx, buf[taken++]);
    }
    flush_tx();
    return taken > 0 ? (ptrdiff_t)taken : DPS_IO_WOULD_BLOCK;
}

/* recv hook: the data received so far, even after the modem said the connection ended (the
 * library must see DPS's 401 before the hang-up that follows it); then 0 for a close by the
 * server, an error for a lost connection, the TLS code for a failed open. */
static ptrdiff_t at_hook_recv(void *user, uint8_t *buf, size_t len) {
    size_t n = 0;

    (void)user;
    pump_rx();
    while (n < len && ring_len(&modem.rx) > 0) {
        buf[n++] = ring_get(&modem.rx);
    }
    if (n > 0) {
        return (ptrdiff_t)n;
    }
    switch (modem.link) {
    case LINK_OPENING:
    case LINK_OPEN: return DPS_IO_WOULD_BLOCK;
    case LINK_PEER_CLOSED: return 0;
    case LINK_FAILED: return modem.failure;
    default: return DPS_IO_ERROR;
    }
}

/* close hook: ends the data mode with DLE C (the modem answers with its own DLE C, after any
 * data still in flight, which is dropped). Does not wait for that answer. */
static void at_hook_close(void *user) {
    (void)user;
    pump_rx();
    if (modem.link == LINK_OPEN && ring_room(&modem.tx) >= 2) {
        ring_put(&modem.tx, DLE);
        ring_put(&modem.tx, DLE_CLOSE);
        modem.link = LINK_CLOSING;
    } else if (modem.link == LINK_OPENING) {
        modem.link = LINK_ABANDONED;
    } else if (modem.link != LINK_CLOSING && modem.link != LINK_ABANDONED) {
        modem.link = LINK_IDLE;
    }
    modem.rx.head = modem.rx.tail = 0;
    flush_tx();
}

static void at_hook_wait(void *user, uint32_t timeout_ms, bool want_write) {
    (void)user;
    if (ring_len(&modem.rx) > 0) {
        return; /* data is waiting for recv */
    }
    uart_wait(timeout_ms, want_write || ring_len(&modem.tx) > 0);
}

void at_dps_transport_init(dps_transport *t) {
    memset(&modem, 0, sizeof modem);
    modem.link = LINK_IDLE;
    memset(t, 0, sizeof *t);
    t->connect = at_hook_connect;
    t->send = at_hook_send;
    t->recv = at_hook_recv;
    t->close = at_hook_close;
    t->wait = at_hook_wait;
}

int at_command(const char *command, char *info, size_t info_len, uint32_t timeout_ms) {
    uint32_t start = board_millis();
    char line[LINE_MAX];

    if (modem.in_data || (size_t)snprintf(line, sizeof line, "%s\r", command) >= sizeof line) {
        return -1;
    }
    modem.final = 0;
    modem.info = info;
    modem.info_len = info_len;
    if (info != NULL && info_len > 0) {
        info[0] = '\0';
    }
    if (queue_text(line) != 0) {
        return -1;
    }
    while (modem.final == 0 && (uint32_t)(board_millis() - start) < timeout_ms) {
        pump_rx();
        if (modem.final == 0) {
            uart_wait(10, ring_len(&modem.tx) > 0);
        }
    }
    modem.info = NULL;
    return modem.final == 1 ? 0 : -1;
}

/* ---- clock ----------------------------------------------------------------------------- */

static uint64_t network_time_s;
static uint64_t network_time_at_ms;

/* The board's 32-bit tick extended to 64 bits: the library holds the largest value it saw,
 * so a wrapping counter would freeze its timers and deadline. */
static uint64_t at_clock_now_ms(void *user) {
    static uint32_t last;
    static uint64_t high;
    uint32_t now = board_millis();

    (void)user;
    if (now < last) {
        high += (uint64_t)1 << 32;
    }
    last = now;
    return high | now;
}

static uint64_t at_clock_unix_seconds(void *user) {
    return network_time_s + (at_clock_now_ms(user) - network_time_at_ms) / 1000u;
}

int at_dps_clock_init(dps_clock *c) {
    char info[64];
    const char *prefix = "+UNIXTIME: ";
    char *end;
    unsigned long long seconds;

    if (at_command("AT+UNIXTIME?", info, sizeof info, 2000) != 0 ||
        strncmp(info, prefix, strlen(prefix)) != 0) {
        return -1;
    }
    seconds = strtoull(info + strlen(prefix), &end, 10);
    if (*end != '\0' || seconds == 0) {
        return -1; /* a modem not yet registered on the network may answer 0 */
    }
    network_time_s = seconds;
    network_time_at_ms = at_clock_now_ms(NULL);
    memset(c, 0, sizeof *c);
    c->now_ms = at_clock_now_ms;
    c->unix_seconds = at_clock_unix_seconds;
    return 0;
}
