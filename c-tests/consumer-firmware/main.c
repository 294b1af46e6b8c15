/* A firmware image's main: a computation through the library (its allocator defaults to
 * newlib's malloc), and a read of every entry of the API table through a volatile pointer, so
 * that --gc-sections keeps every function and the link must resolve all of them. */
#include <stdio.h>
#include <string.h>

#include <dps_mqtt.h>

#include "api_table.h"

int main(void) {
    char version[32];
    char key[64];
    size_t i;

    snprintf(version, sizeof version, "%d.%d.%d", DPS_VERSION_MAJOR, DPS_VERSION_MINOR,
             DPS_VERSION_PATCH);
    if (strcmp(dps_version(), version) != 0) {
        return 1;
    }
    if (dps_derive_group_key("8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
                             "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", key, sizeof key, NULL) != DPS_OK ||
        strcmp(key, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=") != 0) {
        return 2;
    }
    for (i = 0; i < dps_api_count; i++) {
        const volatile dps_any_function *entry = &dps_api_table[i];
        if (*entry == NULL) {
            return 3;
        }
    }
    return 0;
}
