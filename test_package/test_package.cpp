// The packaged C++ wrapper compiles, and a config made with it refuses a bad id scope.
#include <cstdio>
#include <string_view>

#include "dps_mqtt.hpp"

int main() {
    dps::result<dps::config> cfg = dps::config::create();
    if (!cfg) {
        return 1;
    }
    dps::result<void> refused = cfg->set_id_scope("not a scope!");
    std::string_view version = dps::version();
    std::printf("dps-mqtt %.*s from C++: %s\n", static_cast<int>(version.size()), version.data(),
                refused.error().name());
    return !refused && refused.error().code() == DPS_ERR_INVALID_ID_SCOPE ? 0 : 1;
}
