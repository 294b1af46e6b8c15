/* The public header compiles warning-free as C99 with -Wall -Wextra -Wpedantic -Werror, and
 * its hook types accept functions written the way the documentation describes them. */
#include "dps_mqtt.h"

static int on_connect(void *user, const char *host, uint16_t port) {
    (void)user, (void)host, (void)port;
    return -1;
}
static ptrdiff_t on_send(void *user, const uint8_t *buf, size_t len) {
    (void)user, (void)buf, (void)len;
    return DPS_IO_WOULD_BLOCK;
}
static ptrdiff_t on_recv(void *user, uint8_t *buf, size_t len) {
    (void)user, (void)buf, (void)len;
    return DPS_IO_ERROR;
}
static void on_close(void *user) { (void)user; }
static void on_wait(void *user, uint32_t timeout_ms, bool want_write) {
    (void)user, (void)timeout_ms, (void)want_write;
}
static size_t on_error_detail(void *user, char *buf, size_t len) {
    (void)user, (void)buf, (void)len;
    return 0;
}
static uint64_t now_ms(void *user) { (void)user; return 0; }
static void on_log(void *user, dps_log_level level, const char *message) {
    (void)user, (void)level, (void)message;
}
static void on_status(void *user, dps_status status) { (void)user, (void)status; }

int main(void) {
    dps_transport t = {0, on_connect, on_send, on_recv, on_close, on_wait, on_error_detail};
    dps_clock c = {0, now_ms, now_ms};
    dps_log_callback log = on_log;
    dps_status_callback status = on_status;
    dps_class cls = dps_result_class(DPS_ERR_TIMEOUT);
    dps_result r = dps_config_set_clock(NULL, &c);
    (void)t, (void)log, (void)status;
    return r == DPS_ERR_INVALID_NULL_POINTER && cls == DPS_CLASS_TIMEOUT &&
                   DPS_VERSION_MAJOR + DPS_VERSION_MINOR + DPS_VERSION_PATCH > 0
               ? 0
               : 1;
}
