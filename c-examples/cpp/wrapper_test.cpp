// The C++ wrapper's own contract, without a server: results and their errors, views holding a
// NUL byte refused, moved-from handles, the chrono setters' ranges, the helpers' published
// vectors, and callbacks that outlive the config they were given to (the sanitizer build
// catches a dangling one). Built and run as C++17 without exceptions and as C++20.

#include <dps_mqtt.hpp>

#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

int failures = 0;

void check(bool ok, const char *what, int line) {
    if (!ok) {
        std::fprintf(stderr, "wrapper_test.cpp:%d: failed: %s\n", line, what);
        ++failures;
    }
}
#define CHECK(cond) check(static_cast<bool>(cond), #cond, __LINE__)

constexpr std::string_view KEY = "O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=";

// The quick start of dps_mqtt.hpp, as written there.
dps::result<dps::registration> provision(std::string_view key) {
    dps::result<dps::config> cfg = dps::config::create();
    if (!cfg) return cfg.error();
    if (auto r = cfg->set_id_scope("0ne00000001"); !r) return r.error();
    if (auto r = cfg->set_registration_id("my-device"); !r) return r.error();
    if (auto r = cfg->set_symmetric_key(key); !r) return r.error();
    dps::result<dps::client> client = dps::client::create(*cfg);
    if (!client) return client.error();
    return client->register_device();
}

dps::config new_config() { return dps::config::create().value(); }

void results_and_errors() {
    dps::result<dps::registration> bad_key = provision("***");
    CHECK(!bad_key && bad_key.error().code() == DPS_ERR_INVALID_KEY);
    CHECK(std::string_view(bad_key.error().name()) == "DPS_ERR_INVALID_KEY");
    CHECK(bad_key.error().error_class() == DPS_CLASS_INVALID && !bad_key.error().is_retryable());

    dps::result<std::string> ok = std::string("value");
    CHECK(ok && *ok == "value" && ok->size() == 5 && ok.error().code() == DPS_OK);
    dps::result<std::string> failed = dps::error(DPS_ERR_TIMEOUT);
    CHECK(failed.value_or("fallback") == "fallback" && failed.error().is_retryable());

    CHECK(dps::version() == std::to_string(DPS_VERSION_MAJOR) + "." +
                                std::to_string(DPS_VERSION_MINOR) + "." +
                                std::to_string(DPS_VERSION_PATCH));
}

void strings_in() {
    dps::config cfg = new_config();
    // The C API would read "a" and stop: the wrapper refuses instead.
    dps::result<void> nul = cfg.set_registration_id(std::string_view("a\0b", 3));
    CHECK(!nul && nul.error().code() == DPS_ERR_INVALID_ARGUMENT);
    CHECK(!cfg.set_endpoint(std::string_view("host\0evil", 9), 8883));
    // A view into a longer string: only the viewed part reaches C.
    std::string scope_and_more = "0ne00000001 and more";
    CHECK(cfg.set_id_scope(std::string_view(scope_and_more).substr(0, 11)));
    CHECK(cfg.set_id_scope(scope_and_more).error().code() == DPS_ERR_INVALID_ID_SCOPE);
    CHECK(cfg.set_payload_json("{\"a\":1}") && cfg.clear_payload_json());
    CHECK(cfg.set_payload_json("{").error().code() == DPS_ERR_INVALID_PAYLOAD);
    CHECK(cfg.set_model_id("dtmi:com:example:Thermostat;1") && cfg.clear_model_id());
    CHECK(cfg.set_model_id("thermostat").error().code() == DPS_ERR_INVALID_MODEL_ID);
    CHECK(cfg.set_client_version("fw/1.0") && cfg.omit_client_version());
#if DPS_WRAPPER_TEST_TLS
    // Proxies and trust anchors belong to the library's TLS: a no-TLS build refuses them.
    CHECK(cfg.set_proxy("proxy.local", 3128, "user", "secret") && cfg.clear_proxy());
    CHECK(cfg.set_proxy("proxy.local", 3128, "us:er", "").error().code() == DPS_ERR_INVALID_ARGUMENT);
    CHECK(cfg.add_trust_anchors_pem("not a pem", false).error().code() == DPS_ERR_INVALID_CERTIFICATE);
#endif
}

void chrono_setters() {
    dps::config cfg = new_config();
    CHECK(cfg.set_timeout(std::chrono::seconds(5)));
    CHECK(cfg.set_timeout(std::chrono::milliseconds(0)).error().code() == DPS_ERR_INVALID_ARGUMENT);
    CHECK(!cfg.set_timeout(std::chrono::milliseconds(-1)));
    CHECK(!cfg.set_timeout(std::chrono::milliseconds(0x100000000LL)));
    CHECK(cfg.set_sas_token_lifetime(std::chrono::hours(2)));
    CHECK(!cfg.set_sas_token_lifetime(std::chrono::seconds(DPS_SAS_TOKEN_LIFETIME_MIN_S - 1)));
    CHECK(!cfg.set_sas_token_lifetime(std::chrono::seconds(-1)));
}

void moved_from_handles() {
    dps::config a = new_config();
    dps::config b = std::move(a);
    CHECK(b.get() != nullptr && b.set_id_scope("0ne00000001"));
    CHECK(a.get() == nullptr);  // NOLINT(bugprone-use-after-move): the documented state
    CHECK(a.set_id_scope("0ne00000001").error().code() == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(!dps::client::create(a));
}

void helpers() {
    dps::result<std::string> derived = dps::derive_group_key(
        "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
        "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6");
    CHECK(derived && *derived == "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");
    CHECK(dps::derive_group_key("***", "dev").error().code() == DPS_ERR_INVALID_KEY);
    dps::result<std::string> token = dps::sas_token("0ne000EEBBD", "FirstDevice", KEY, 1591921306);
    CHECK(token && *token ==
                       "SharedAccessSignature sr=0ne000EEBBD%2fregistrations%2fFirstDevice"
                       "&sig=hwgBlMB6G2Zg5ZcYtwmtLVKRbifiSCPfUMyscbVWa8o%3D&se=1591921306"
                       "&skn=registration");

    CHECK(dps::should_provision(std::vector<std::uint8_t>()));
    std::vector<std::uint8_t> garbage(40, 0x5a);
    CHECK(dps::should_provision(garbage, DPS_HUB_CONNECTED));
    CHECK(dps::assignment::parse(garbage).error().code() == DPS_ERR_INVALID_ASSIGNMENT);
}

#if DPS_WRAPPER_TEST_TLS
void callbacks_outlive_the_config() {
    std::vector<std::string> lines;
    std::vector<dps_status> progress;
    dps::result<dps::client> client = dps::error(DPS_ERR_INTERNAL);
    {
        dps::config cfg = new_config();
        CHECK(cfg.on_log([&lines](dps_log_level, std::string_view line) { lines.emplace_back(line); },
                         DPS_LOG_DEBUG));
        CHECK(cfg.on_status([&progress](dps_status s) { progress.push_back(s); }));
        // Refused: no id scope. The reason goes to the log function.
        CHECK(dps::client::create(cfg).error().code() == DPS_ERR_INVALID_CONFIG);
        CHECK(!lines.empty());
        CHECK(cfg.set_id_scope("0ne00000001") && cfg.set_registration_id("cpp-device") &&
              cfg.set_symmetric_key(KEY));
        // Nothing listens on port 1: the attempt fails fast, having logged and reported.
        CHECK(cfg.set_endpoint("127.0.0.1", 1) && cfg.set_timeout(std::chrono::milliseconds(300)));
        client = dps::client::create(cfg);
        CHECK(client.has_value());
    }
    lines.clear();
    dps::result<dps::registration> reg = client->register_device();
    CHECK(!reg && reg.error().code() != DPS_OK);
    CHECK(!lines.empty() && !progress.empty());
    CHECK(client->assigned_hub().empty() && !client->result_detail().empty());
    CHECK(!client->save_assignment());
    std::printf("unreachable server: %s (%s), %zu log lines\n", reg.error().name(),
                reg.error().detail().c_str(), lines.size());
}
#endif

}  // namespace

int main() {
    results_and_errors();
    strings_in();
    chrono_setters();
    moved_from_handles();
    helpers();
#if DPS_WRAPPER_TEST_TLS
    callbacks_outlive_the_config(); // through the built-in transport, which needs the TLS
#endif
    if (failures != 0) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::printf("wrapper_test: all checks passed (C++ %ld)\n", static_cast<long>(__cplusplus));
    return 0;
}
