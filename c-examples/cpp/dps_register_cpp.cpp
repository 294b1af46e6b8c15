// Provisions a device with the C++ wrapper (dps_mqtt.hpp) alone, then does what firmware does
// with the result at the next boot: stores the assignment, reads it back, and asks whether to
// provision again.
//
//   dps_register_cpp --id-scope 0ne00000001 --registration-id my-device --key <base64>
//                    [--group-key <base64>] [--host H] [--port P] [--ca-file ca.pem]
//                    [--payload JSON] [--model-id DTMI] [--websocket] [--timeout-ms N]
//                    [--non-blocking] [--verbose]
//
// Exit status: 0 assigned, 1 the registration failed, 2 bad arguments or configuration.

#include <dps_mqtt.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

struct options {
    std::string id_scope;
    std::string registration_id;
    std::string key;
    std::string group_key;
    std::string host;
    std::uint16_t port = 0;
    std::string ca_file;
    std::string payload;
    std::string model_id;
    bool websocket = false;
    unsigned long timeout_ms = 0;
    bool non_blocking = false;
    bool verbose = false;
};

int usage(const char *message) {
    std::fprintf(stderr, "dps_register_cpp: %s\n", message);
    return 2;
}

std::optional<std::string> read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return std::nullopt;
    }
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void print_error(std::string_view what, const dps::error &e) {
    std::fprintf(stderr, "error: %.*s: %s (%s)", static_cast<int>(what.size()), what.data(),
                 e.name(), e.message());
    if (!e.detail().empty()) {
        std::fprintf(stderr, ": %s", e.detail().c_str());
    }
    if (!e.tracking_id().empty()) {
        std::fprintf(stderr, " [tracking id %s]", e.tracking_id().c_str());
    }
    std::fprintf(stderr, "%s\n", e.is_retryable() ? " (retryable)" : "");
}

// Every setter validates its input: the first one refused names the option.
bool apply(const char *option, const dps::result<void> &r) {
    if (!r) {
        print_error(option, r.error());
    }
    return static_cast<bool>(r);
}

std::optional<dps::config> make_config(const options &o) {
    dps::result<dps::config> made = dps::config::create();
    if (!made) {
        print_error("dps::config::create", made.error());
        return std::nullopt;
    }
    dps::config cfg = std::move(made).value();
    bool ok = apply("--id-scope", cfg.set_id_scope(o.id_scope)) &&
              apply("--registration-id", cfg.set_registration_id(o.registration_id));
    if (ok && !o.key.empty()) {
        ok = apply("--key", cfg.set_symmetric_key(o.key));
    }
    if (ok && !o.group_key.empty()) {
        ok = apply("--group-key", cfg.set_group_key(o.group_key));
    }
    if (ok && !o.host.empty()) {
        ok = apply("--host/--port", cfg.set_endpoint(o.host, o.port != 0 ? o.port : 8883));
    }
    if (ok && !o.ca_file.empty()) {
        std::optional<std::string> pem = read_file(o.ca_file);
        if (!pem) {
            std::fprintf(stderr, "error: cannot read %s\n", o.ca_file.c_str());
            return std::nullopt;
        }
        ok = apply("--ca-file", cfg.add_trust_anchors_pem(*pem, false));
    }
    if (ok && !o.payload.empty()) {
        ok = apply("--payload", cfg.set_payload_json(o.payload));
    }
    if (ok && !o.model_id.empty()) {
        ok = apply("--model-id", cfg.set_model_id(o.model_id));
    }
    if (ok && o.websocket) {
        ok = apply("--websocket", cfg.set_websocket(true));
    }
    if (ok && o.timeout_ms != 0) {
        ok = apply("--timeout-ms", cfg.set_timeout(std::chrono::milliseconds(o.timeout_ms)));
    }
    if (ok && o.verbose) {
        ok = apply("--verbose", cfg.on_log(
                                    [](dps_log_level, std::string_view line) {
                                        std::fprintf(stderr, "dps: %.*s\n",
                                                     static_cast<int>(line.size()), line.data());
                                    },
                                    DPS_LOG_DEBUG));
    }
    if (!ok) {
        return std::nullopt;
    }
    return cfg;
}

// The event-loop way: do_work() until the attempt ends. Between steps, firmware waits until
// its socket is readable or next_call has passed, whichever comes first (next_call is only
// the library's next timer, often the deadline). The built-in transport used here has no
// socket to wait on, so this loop wakes every 10 ms instead.
dps::result<dps::registration> register_non_blocking(dps::client &client) {
    constexpr std::chrono::milliseconds poll_interval(10);
    for (;;) {
        dps::result<dps::step> step = client.do_work();
        if (!step) {
            return step.error();
        }
        if (!step->pending) {
            return client.outcome();
        }
        std::this_thread::sleep_for(std::min(step->next_call, poll_interval));
    }
}

bool parse_args(int argc, char **argv, options &o) {
    for (int i = 1; i < argc; ++i) {
        std::string_view flag = argv[i];
        if (flag == "--websocket") {
            o.websocket = true;
            continue;
        }
        if (flag == "--non-blocking") {
            o.non_blocking = true;
            continue;
        }
        if (flag == "--verbose") {
            o.verbose = true;
            continue;
        }
        if (i + 1 >= argc) {
            return false;
        }
        std::string value = argv[++i];
        if (flag == "--id-scope") {
            o.id_scope = value;
        } else if (flag == "--registration-id") {
            o.registration_id = value;
        } else if (flag == "--key") {
            o.key = value;
        } else if (flag == "--group-key") {
            o.group_key = value;
        } else if (flag == "--host") {
            o.host = value;
        } else if (flag == "--port") {
            unsigned long port = std::strtoul(value.c_str(), nullptr, 10);
            if (port == 0 || port > 65535) {
                return false;
            }
            o.port = static_cast<std::uint16_t>(port);
        } else if (flag == "--ca-file") {
            o.ca_file = value;
        } else if (flag == "--payload") {
            o.payload = value;
        } else if (flag == "--model-id") {
            o.model_id = value;
        } else if (flag == "--timeout-ms") {
            o.timeout_ms = std::strtoul(value.c_str(), nullptr, 10);
        } else {
            return false;
        }
    }
    return !o.id_scope.empty() && !o.registration_id.empty() &&
           (!o.key.empty() || !o.group_key.empty());
}

}  // namespace

int main(int argc, char **argv) {
    options o;
    if (!parse_args(argc, argv, o)) {
        return usage("usage: --id-scope S --registration-id R (--key K | --group-key G) "
                     "[--host H] [--port P] [--ca-file F] [--payload JSON] [--model-id DTMI] "
                     "[--websocket] [--timeout-ms N] [--non-blocking] [--verbose]");
    }
    std::printf("dps-mqtt %.*s (C++ %ld)\n", static_cast<int>(dps::version().size()),
                dps::version().data(), static_cast<long>(__cplusplus));

    std::optional<dps::config> cfg = make_config(o);
    if (!cfg) {
        return 2;
    }
    dps::result<dps::client> client = dps::client::create(*cfg);
    if (!client) {
        print_error("dps::client::create", client.error());
        return 2;
    }
    // The client copied the configuration: the config (and its key) can go now.
    cfg.reset();

    dps::result<dps::registration> reg =
        o.non_blocking ? register_non_blocking(*client) : client->register_device();
    if (!reg) {
        print_error("registration", reg.error());
        return 1;
    }
    std::printf("assigned: %s %s\n", reg->assigned_hub.c_str(), reg->device_id.c_str());
    std::printf("substatus: %s\n", reg->substatus.c_str());
    if (!reg->payload_json.empty()) {
        std::printf("payload: %s\n", reg->payload_json.c_str());
    }

    // What firmware keeps in flash, and reads back at the next boot.
    dps::result<std::vector<std::uint8_t>> blob = client->save_assignment();
    if (!blob) {
        print_error("save_assignment", blob.error());
        return 1;
    }
    dps::result<dps::assignment> stored = dps::assignment::parse(*blob);
    if (!stored) {
        print_error("assignment::parse", stored.error());
        return 1;
    }
    if (stored->assigned_hub() != reg->assigned_hub || stored->device_id() != reg->device_id) {
        std::fprintf(stderr, "error: the stored assignment differs from the registration\n");
        return 1;
    }
    std::printf("stored assignment: %zu bytes, hub %.*s\n", blob->size(),
                static_cast<int>(stored->assigned_hub().size()), stored->assigned_hub().data());
    bool again_connected = dps::should_provision(*blob, DPS_HUB_CONNECTED);
    bool again_rejected = dps::should_provision(*blob, DPS_HUB_REJECTED_DEVICE);
    std::printf("provision again: %s when the hub accepts the device, %s when it rejects it\n",
                again_connected ? "yes" : "no", again_rejected ? "yes" : "no");
    return again_connected || !again_rejected ? 1 : 0;
}
