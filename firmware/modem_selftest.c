/* Exercises the UART modem protocol without the library: the same transport functions, a TLS
 * echo server behind the bridge (run_qemu_test.py starts both). Prints one line per check and
 * exits 0 when all pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board/board.h"
#include "dps_mqtt.h"
#include "modem.h"

extern void initialise_monitor_handles(void);

#define ECHO_HOST "localhost"
#define ECHO_PORT 7
#define REFUSED_PORT 9
#define WRONG_NAME_HOST "wrong-name.test"
#define STEP_TIMEOUT_MS 10000u

static int failures;

static void check(const char *what, int ok) {
    printf("modem selftest: %s: %s\n", what, ok ? "ok" : "FAILED");
    if (!ok) {
        failures++;
    }
}

/* Sends all of `buf`, as the library would: partial sends and would-block retried. */
static ptrdiff_t send_all(const uint8_t *buf, size_t len) {
    size_t done = 0;
    uint64_t deadline = board_now_ms() + STEP_TIMEOUT_MS;
    while (done < len && board_now_ms() < deadline) {
        ptrdiff_t n = modem_send(NULL, buf + done, len - done);
        if (n == DPS_IO_WOULD_BLOCK) {
            modem_wait(NULL, 100, true);
        } else if (n < 0) {
            return n;
        } else {
            done += (size_t)n;
        }
    }
    return (ptrdiff_t)done;
}

/* Receives exactly `len` bytes, or returns what recv last said (0 closed, < 0 error). */
static ptrdiff_t recv_exact(uint8_t *buf, size_t len) {
    size_t done = 0;
    uint64_t deadline = board_now_ms() + STEP_TIMEOUT_MS;
    while (done < len && board_now_ms() < deadline) {
        ptrdiff_t n = modem_recv(NULL, buf + done, len - done);
        if (n == DPS_IO_WOULD_BLOCK) {
            modem_wait(NULL, 100, false);
        } else if (n <= 0) {
            return n;
        } else {
            done += (size_t)n;
        }
    }
    return (ptrdiff_t)done;
}

/* What recv says once the stream is over: waits through would-block. */
static ptrdiff_t recv_end(void) {
    uint8_t byte;
    uint64_t deadline = board_now_ms() + STEP_TIMEOUT_MS;
    ptrdiff_t n = DPS_IO_WOULD_BLOCK;
    while (n == DPS_IO_WOULD_BLOCK && board_now_ms() < deadline) {
        n = modem_recv(NULL, &byte, 1);
        if (n == DPS_IO_WOULD_BLOCK) {
            modem_wait(NULL, 100, false);
        }
    }
    return n;
}

int main(void) {
    initialise_monitor_handles();
    board_init();

    check("AT answers OK", modem_command("AT", NULL, 0, 2000) == 0);
    check("unknown command answers ERROR", modem_command("AT+NOPE", NULL, 0, 2000) == -1);
    uint64_t now = modem_unix_time();
    check("AT+UNIXTIME? gives a time after 2020", now > 1577836800u);

    /* Every byte value, DLE included, four times over, both ways. */
    static uint8_t out[1024], in[1024];
    for (size_t i = 0; i < sizeof out; i++) {
        out[i] = (uint8_t)i;
    }
    check("TLSOPEN echo server", modem_connect(NULL, ECHO_HOST, ECHO_PORT) == 0);
    check("send 1024 bytes", send_all(out, sizeof out) == (ptrdiff_t)sizeof out);
    check("echo of 1024 bytes", recv_exact(in, sizeof in) == (ptrdiff_t)sizeof in &&
                                    memcmp(in, out, sizeof out) == 0);
    /* Closed with echoed bytes still in flight, then reopened at once: the bridge's answer to
     * the new open must not be confused with the old connection's data. */
    check("send before close", send_all(out, 200) == 200);
    modem_close(NULL);
    check("reopen at once", modem_connect(NULL, ECHO_HOST, ECHO_PORT) == 0);
    static const uint8_t bye[] = "bye\n";
    check("send bye", send_all(bye, 4) == 4);
    check("echo after reopen", recv_exact(in, 4) == 4 && memcmp(in, bye, 4) == 0);
    check("server close reads as 0", recv_end() == 0);
    modem_close(NULL);

    check("TLSOPEN refused port", modem_connect(NULL, ECHO_HOST, REFUSED_PORT) == 0);
    check("refused: transport error", recv_end() == DPS_IO_ERROR);
    modem_close(NULL);

    check("TLSOPEN certificate for another name",
          modem_connect(NULL, WRONG_NAME_HOST, ECHO_PORT) == 0);
    check("wrong name: DPS_ERR_TLS_CERT_NAME_MISMATCH",
          recv_end() == -(ptrdiff_t)DPS_ERR_TLS_CERT_NAME_MISMATCH);
    modem_close(NULL);

    /* Closed while the open is still in progress: the late CONNECT is skipped. */
    check("TLSOPEN, abandoned", modem_connect(NULL, ECHO_HOST, ECHO_PORT) == 0);
    modem_close(NULL);
    check("TLSOPEN after abandoned", modem_connect(NULL, ECHO_HOST, ECHO_PORT) == 0);
    check("echo after abandoned", send_all(bye, 4) == 4 && recv_exact(in, 4) == 4 &&
                                      memcmp(in, bye, 4) == 0);
    check("closed after bye", recv_end() == 0);
    modem_close(NULL);

    printf("modem selftest: stack peak %u of %u bytes\n", (unsigned)board_stack_peak(),
           (unsigned)board_stack_size());
    printf("modem selftest: %s\n", failures == 0 ? "all passed" : "FAILED");
    return failures == 0 ? 0 : 1;
}
