/* The public header compiles warning-free as C99 (see CMakeLists.txt for the flags). */
#include "dps_mqtt.h"

int main(void) {
    dps_transport t = {0};
    dps_clock c = {0};
    (void)t;
    (void)c;
    return DPS_OK == 0 && DPS_VERSION_MAJOR >= 0 ? 0 : 1;
}
