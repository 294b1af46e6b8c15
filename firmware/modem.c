#include "modem.h"

#include <stdio.h>
#include <string.h>

#include "board/board.h"
#include "dps_mqtt.h"

#define DLE 0x10u
#define DLE_CLOSE 'C' /* end of this connection's data, either direction */
#define DLE_LOST 'E'  /* bridge to firmware: the connection failed (reset, TLS error) */
#define TX_RING_SIZE 512u /* a power of two */
#define LINE_MAX 96u

enum rx_phase {
    RX_LINE,    /* command responses, one per line */
    RX_DATA,    /* the open connection's bytes, for recv */
    RX_DISCARD, /* bytes of a connection closed by this side, until the bridge's DLE C */
};

enum link {
    LINK_IDLE,
    LINK_OPENING,     /* AT+TLSOPEN sent, no answer yet */
    LINK_OPEN,
    LINK_PEER_CLOSED, /* the server ended the connection */
    LINK_LOST,
    LINK_FAILED,      /* AT+TLSOPEN answered ERROR */
};

static struct {
    enum rx_phase phase;
    bool dle;
    char line[LINE_MAX];
    size_t line_len;
    enum link link;
    ptrdiff_t failure;  /* what send/recv return in LINK_FAILED */
    unsigned abandoned; /* opens closed before their answer arrived: skip that many answers */
    int final;          /* modem_command: 0 waiting, 1 OK, -1 ERROR */
    char *info;
    size_t info_len;
    uint8_t tx[TX_RING_SIZE];
    uint32_t tx_head, tx_tail;
} m;

static size_t tx_room(void) { return TX_RING_SIZE - (size_t)(m.tx_head - m.tx_tail); }

static void tx_put(uint8_t byte) {
    m.tx[m.tx_head & (TX_RING_SIZE - 1u)] = byte;
    m.tx_head++;
}

static void flush(void) {
    while (m.tx_tail != m.tx_head && board_uart_try_write(m.tx[m.tx_tail & (TX_RING_SIZE - 1u)])) {
        m.tx_tail++;
    }
}

/* Queues `text` whole, or nothing when it does not fit. */
static bool tx_put_text(const char *text) {
    size_t len = strlen(text);
    if (len > tx_room()) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        tx_put((uint8_t)text[i]);
    }
    return true;
}

static ptrdiff_t failure_for(const char *reason) {
    static const struct {
        const char *reason;
        ptrdiff_t result;
    } table[] = {
        {"tls-untrusted", -(ptrdiff_t)DPS_ERR_TLS_CERT_UNTRUSTED},
        {"tls-expired", -(ptrdiff_t)DPS_ERR_TLS_CERT_EXPIRED},
        {"tls-name", -(ptrdiff_t)DPS_ERR_TLS_CERT_NAME_MISMATCH},
        {"tls", -(ptrdiff_t)DPS_ERR_TLS_HANDSHAKE},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(reason, table[i].reason) == 0) {
            return table[i].result;
        }
    }
    return DPS_IO_ERROR; /* dns, refused, timeout, busy: a transport failure, retried */
}

static void handle_line(const char *line) {
    if (strcmp(line, "CONNECT") == 0) {
        if (m.abandoned > 0) {
            m.abandoned--;
            m.phase = RX_DISCARD;
        } else if (m.link == LINK_OPENING) {
            m.link = LINK_OPEN;
            m.phase = RX_DATA;
        }
    } else if (strncmp(line, "ERROR", 5) == 0) {
        if (m.abandoned > 0) {
            m.abandoned--;
        } else if (m.link == LINK_OPENING) {
            m.link = LINK_FAILED;
            m.failure = failure_for(strncmp(line, "ERROR: ", 7) == 0 ? line + 7 : "");
        } else {
            m.final = -1;
        }
    } else if (strcmp(line, "OK") == 0) {
        m.final = 1;
    } else if (line[0] == '+' && m.info != NULL && m.info[0] == '\0') {
        snprintf(m.info, m.info_len, "%s", line);
    }
}

/* Parses received bytes: command lines change the link's state, data bytes go to `out` (at
 * most `cap`; nothing of the data is consumed once `out` is full, or without `out`). */
static size_t pump(uint8_t *out, size_t cap) {
    size_t produced = 0;
    uint8_t b;
    while (!(m.phase == RX_DATA && produced == cap) && board_uart_try_read(&b)) {
        if (m.phase == RX_LINE) {
            if (b == '\n') {
                m.line[m.line_len] = '\0';
                if (m.line_len > 0) {
                    handle_line(m.line);
                }
                m.line_len = 0;
            } else if (b != '\r' && m.line_len + 1 < LINE_MAX) {
                m.line[m.line_len++] = (char)b;
            }
            continue;
        }
        if (m.dle) {
            m.dle = false;
            if (b == DLE_CLOSE || b == DLE_LOST) {
                if (m.phase == RX_DATA) {
                    m.link = b == DLE_CLOSE ? LINK_PEER_CLOSED : LINK_LOST;
                }
                m.phase = RX_LINE;
                continue;
            }
            if (b != DLE) {
                continue; /* not defined: ignored */
            }
        } else if (b == DLE) {
            m.dle = true;
            continue;
        }
        if (m.phase == RX_DATA) {
            out[produced++] = b;
        }
    }
    return produced;
}

int modem_command(const char *command, char *info, size_t info_len, uint32_t timeout_ms) {
    if (info != NULL && info_len > 0) {
        info[0] = '\0';
    }
    m.info = info_len > 0 ? info : NULL;
    m.info_len = info_len;
    m.final = 0;
    uint64_t deadline = board_now_ms() + timeout_ms;
    char line[LINE_MAX];
    int len = snprintf(line, sizeof line, "%s\r", command);
    if (len < 0 || (size_t)len >= sizeof line) {
        return -1;
    }
    while (!tx_put_text(line)) {
        flush();
    }
    while (m.final == 0 && board_now_ms() < deadline) {
        flush();
        pump(NULL, 0);
        if (m.final == 0) {
            board_sleep();
        }
    }
    m.info = NULL;
    return m.final == 1 ? 0 : m.final == -1 ? -1 : -2;
}

uint64_t modem_unix_time(void) {
    char info[LINE_MAX];
    unsigned long long seconds = 0;
    if (modem_command("AT+UNIXTIME?", info, sizeof info, 2000) != 0 ||
        sscanf(info, "+UNIXTIME: %llu", &seconds) != 1) {
        return 0;
    }
    return seconds;
}

int modem_connect(void *user, const char *host, uint16_t port) {
    (void)user;
    char command[LINE_MAX + 32];
    for (const char *c = host; *c != '\0'; c++) {
        if (*c == '"' || (unsigned char)*c < 0x20) {
            return DPS_IO_ERROR;
        }
    }
    int len = snprintf(command, sizeof command, "AT+TLSOPEN=\"%s\",%u\r", host, (unsigned)port);
    if (len < 0 || (size_t)len >= sizeof command || !tx_put_text(command)) {
        return DPS_IO_ERROR;
    }
    m.link = LINK_OPENING;
    flush();
    return 0;
}

ptrdiff_t modem_send(void *user, const uint8_t *buf, size_t len) {
    (void)user;
    flush();
    pump(NULL, 0);
    switch (m.link) {
    case LINK_OPENING:
        return DPS_IO_WOULD_BLOCK;
    case LINK_FAILED:
        return m.failure;
    case LINK_OPEN:
        break;
    default:
        return DPS_IO_ERROR;
    }
    size_t sent = 0;
    while (sent < len && tx_room() >= 2) {
        if (buf[sent] == DLE) {
            tx_put(DLE);
        }
        tx_put(buf[sent++]);
    }
    flush();
    return sent > 0 ? (ptrdiff_t)sent : DPS_IO_WOULD_BLOCK;
}

ptrdiff_t modem_recv(void *user, uint8_t *buf, size_t len) {
    (void)user;
    flush();
    size_t got = pump(buf, len);
    if (got > 0) {
        return (ptrdiff_t)got;
    }
    switch (m.link) {
    case LINK_OPENING:
    case LINK_OPEN:
        return DPS_IO_WOULD_BLOCK;
    case LINK_PEER_CLOSED:
        return 0;
    case LINK_FAILED:
        return m.failure;
    default:
        return DPS_IO_ERROR;
    }
}

void modem_close(void *user) {
    (void)user;
    if (m.link == LINK_OPEN || m.link == LINK_OPENING) {
        while (tx_room() < 2) {
            flush();
        }
        tx_put(DLE);
        tx_put(DLE_CLOSE);
        if (m.link == LINK_OPENING) {
            m.abandoned++;
        } else {
            m.phase = RX_DISCARD;
        }
        flush();
    }
    m.link = LINK_IDLE;
}

void modem_wait(void *user, uint32_t timeout_ms, bool want_write) {
    (void)user;
    enum link before = m.link;
    uint64_t deadline = board_now_ms() + timeout_ms;
    for (;;) {
        flush();
        pump(NULL, 0);
        if (m.link != before || (m.phase == RX_DATA && board_uart_readable()) ||
            (want_write && m.link == LINK_OPEN && tx_room() >= 2) || board_now_ms() >= deadline) {
            return;
        }
        board_sleep();
    }
}
