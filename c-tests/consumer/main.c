/* Links against the installed library and checks it is the one the header describes. */
#include <stdio.h>
#include <string.h>

#include <dps_mqtt.h>

int main(void) {
    char version[32];
    char key[64];

    snprintf(version, sizeof version, "%d.%d.%d", DPS_VERSION_MAJOR, DPS_VERSION_MINOR,
             DPS_VERSION_PATCH);
    if (strcmp(dps_version(), version) != 0) {
        fprintf(stderr, "consumer: library %s, header %s\n", dps_version(), version);
        return 1;
    }
    if (dps_derive_group_key("8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
                             "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", key, sizeof key, NULL) != DPS_OK ||
        strcmp(key, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=") != 0) {
        fprintf(stderr, "consumer: group key derivation failed\n");
        return 1;
    }
    printf("consumer: dps_mqtt %s\n", version);
    return 0;
}
