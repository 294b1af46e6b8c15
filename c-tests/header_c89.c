/* The public header compiles warning-free as C89/C90 with -pedantic -Wall -Wextra -Werror:
 * no `//` comments, no trailing comma after the last enumerator, declarations before
 * statements, nothing from C99 a strict C90 compiler refuses. This file is itself C89, and
 * uses the header's bool and 64-bit types the way a C89 caller does. */
#include "dps_mqtt.h"

static void on_status(void *user, dps_status status) {
    (void)user;
    (void)status;
}

int main(void) {
    dps_status_callback status = on_status;
    dps_result r = dps_config_set_timeout_ms(NULL, 1000);
    bool provision = dps_should_provision(NULL, 0, DPS_HUB_NOT_TRIED);
    uint64_t assigned_at = dps_assignment_assigned_at_unix(NULL);
    dps_class cls = dps_result_class(DPS_ERR_TIMEOUT_ASSIGNING);
    const char *version = dps_version();
    (void)status;
    return r == DPS_ERR_INVALID_NULL_POINTER && provision && assigned_at == 0 &&
                   cls == DPS_CLASS_TIMEOUT && version[0] != '\0'
               ? 0
               : 1;
}
