// The public header compiles warning-free as C++ and links with C linkage.
#include "dps_mqtt.h"

int main() {
    dps_result r = dps_config_set_id_scope(nullptr, "0ne00000001");
    return r == DPS_ERR_INVALID_NULL_POINTER ? 0 : 1;
}
