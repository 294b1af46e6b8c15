/* The packaged library links and reports the version its header was made for. */
#include <stdio.h>
#include <string.h>

#include "dps_mqtt.h"

int main(void) {
    char expected[32];
    const char *version = dps_version();
    sprintf(expected, "%d.%d.%d", DPS_VERSION_MAJOR, DPS_VERSION_MINOR, DPS_VERSION_PATCH);
    printf("dps-mqtt %s\n", version);
    return strcmp(version, expected) == 0 ? 0 : 1;
}
