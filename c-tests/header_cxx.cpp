// The public header compiles warning-free as C++11 with -Wall -Wextra -Wpedantic -Werror, its
// functions link with C linkage, and its enums are usable as C++ types.
#include "dps_mqtt.h"

namespace {
ptrdiff_t on_send(void *, const uint8_t *, size_t) { return DPS_IO_WOULD_BLOCK; }
void on_status(void *, dps_status) {}
}  // namespace

int main() {
    dps_transport t = {};
    t.send = on_send;
    dps_status_callback status = on_status;
    dps_result r = dps_config_set_id_scope(nullptr, "0ne00000001");
    dps_class cls = dps_result_class(r);
    (void)t;
    (void)status;
    return r == DPS_ERR_INVALID_NULL_POINTER && cls == DPS_CLASS_INVALID ? 0 : 1;
}
