/*
 * dps-mqtt for C++17: a header-only wrapper over dps_mqtt.h.
 *
 *   dps::result<dps::registration> provision(std::string_view key) {
 *       dps::result<dps::config> cfg = dps::config::create();
 *       if (!cfg) return cfg.error();
 *       if (auto r = cfg->set_id_scope("0ne00000001"); !r) return r.error();
 *       if (auto r = cfg->set_registration_id("my-device"); !r) return r.error();
 *       if (auto r = cfg->set_symmetric_key(key); !r) return r.error();
 *       dps::result<dps::client> client = dps::client::create(*cfg);
 *       if (!client) return client.error();
 *       return client->register_device();
 *   }
 *   // reg->assigned_hub, reg->device_id; or reg.error().name(), .detail(), .is_retryable()
 *
 * The contract (docs/cpp.md has the details):
 * - Errors are values, never exceptions: every fallible call returns a dps::result<T>
 *   ([[nodiscard]]), which holds a T or a dps::error. The header builds with -fno-exceptions
 *   and -fno-rtti, as firmware often is; it throws nothing itself (std::string may still
 *   report an allocation failure the way the standard library is built to).
 * - dps::config, dps::client and dps::assignment own their C handle alone: they move, they do
 *   not copy, and their destructor frees the handle. A moved-from object holds no handle;
 *   calls on it return DPS_ERR_INVALID_NULL_POINTER (getters: empty).
 * - Strings in are std::string_view, copied (NUL-terminated) before they reach C; a view
 *   holding a NUL byte is refused with DPS_ERR_INVALID_ARGUMENT instead of being cut short.
 * - Strings out of a client are std::string_view into the client, valid until the next
 *   do_work()/register_device() on it or its destruction, as in C; dps::registration and
 *   dps::error are copies that stay valid.
 * - Threads: as in C, a client is used from one thread at a time (it may move between
 *   threads); dps::result_* and dps::version are thread-safe.
 */

#ifndef DPS_MQTT_HPP
#define DPS_MQTT_HPP

#if __cplusplus < 201703L && !(defined(_MSVC_LANG) && _MSVC_LANG >= 201703L)
#error "dps_mqtt.hpp needs C++17 or later (dps_mqtt.h alone works from C++11)"
#endif

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dps_mqtt.h"

namespace dps {

/** The library's version, e.g. "0.1.0". */
inline std::string_view version() noexcept { return dps_version(); }

/** A result code's C name, e.g. "DPS_ERR_TIMEOUT". Static; never empty. */
inline const char *result_name(dps_result code) noexcept { return dps_result_name(code); }

/** A result code's static human-readable description. */
inline const char *result_str(dps_result code) noexcept { return dps_result_str(code); }

/**
 * Why a call failed: the dps_result code and, for a registration, what the client and the
 * service said about it (copied: it outlives the client).
 */
class error {
public:
    error() noexcept = default;
    explicit error(dps_result code) noexcept : code_(code) {}

    /** The error's details from the client's last attempt. */
    static error from_client(dps_result code, const dps_client *client) {
        error e(code);
        e.detail_ = copy(dps_client_result_detail(client));
        e.service_message_ = copy(dps_client_error_message(client));
        e.tracking_id_ = copy(dps_client_tracking_id(client));
        e.service_code_ = dps_client_error_code(client);
        e.http_status_ = dps_client_http_status(client);
        return e;
    }

    dps_result code() const noexcept { return code_; }
    /** e.g. "DPS_ERR_AUTH_UNAUTHORIZED". */
    const char *name() const noexcept { return dps_result_name(code_); }
    /** dps_result_str: a static description of the code. */
    const char *message() const noexcept { return dps_result_str(code_); }
    dps_class error_class() const noexcept { return dps_result_class(code_); }
    /** Whether a new attempt on the same client may succeed without a configuration change. */
    bool is_retryable() const noexcept { return dps_result_is_retryable(code_); }
    /** dps_client_result_detail: why the attempt failed, in words; empty when none. */
    const std::string &detail() const noexcept { return detail_; }
    /** The service's error message (dps_client_error_message); empty when none. */
    const std::string &service_message() const noexcept { return service_message_; }
    /** The service's tracking id, for support requests; empty when none. */
    const std::string &tracking_id() const noexcept { return tracking_id_; }
    /** The service's errorCode (e.g. 401002), 0 when none. */
    std::int64_t service_code() const noexcept { return service_code_; }
    /** The result<void> of the last response (401, 429, ...), 0 when none. */
    std::uint32_t http_status() const noexcept { return http_status_; }

private:
    static std::string copy(const char *s) { return s ? std::string(s) : std::string(); }

    dps_result code_ = DPS_OK;
    std::string detail_;
    std::string service_message_;
    std::string tracking_id_;
    std::int64_t service_code_ = 0;
    std::uint32_t http_status_ = 0;
};

/**
 * A T or the error that prevented it, like C++23's std::expected<T, dps::error>. Accessing the
 * value of a failed result (value(), *, ->) is a programming error and aborts: check it first
 * (`if (r)`, has_value()).
 */
template <class T>
class [[nodiscard]] result {
public:
    result(T value) : value_(std::move(value)) {}
    result(class error e) : error_(std::move(e)) {}

    bool has_value() const noexcept { return value_.has_value(); }
    explicit operator bool() const noexcept { return has_value(); }

    T &value() & { return checked(); }
    const T &value() const & { return const_cast<result *>(this)->checked(); }
    T &&value() && { return std::move(checked()); }
    T &operator*() & { return checked(); }
    const T &operator*() const & { return const_cast<result *>(this)->checked(); }
    T *operator->() { return &checked(); }
    const T *operator->() const { return &const_cast<result *>(this)->checked(); }
    template <class U>
    T value_or(U &&fallback) const & {
        return has_value() ? *value_ : static_cast<T>(std::forward<U>(fallback));
    }

    /** The error; an error with code DPS_OK when the result holds a value. */
    const class error &error() const noexcept { return error_; }

private:
    T &checked() {
        if (!value_) {
            std::abort();
        }
        return *value_;
    }

    std::optional<T> value_;
    class error error_;
};

/** Success or the error, for calls that return nothing. */
template <>
class [[nodiscard]] result<void> {
public:
    result() noexcept = default;
    result(class error e) : error_(std::move(e)) {}

    bool has_value() const noexcept { return error_.code() == DPS_OK; }
    explicit operator bool() const noexcept { return has_value(); }
    const class error &error() const noexcept { return error_; }

private:
    class error error_;
};

namespace detail {

inline result<void> check(dps_result code) {
    return code == DPS_OK ? result<void>() : result<void>(error(code));
}

/** A NUL-terminated copy of a view for the C API; refuses views holding a NUL byte. */
class c_string {
public:
    explicit c_string(std::string_view s)
        : value_(s), ok_(s.find('\0') == std::string_view::npos) {}
    bool ok() const noexcept { return ok_; }
    const char *get() const noexcept { return value_.c_str(); }

private:
    std::string value_;
    bool ok_;
};

inline const std::uint8_t *bytes(std::string_view s) noexcept {
    return reinterpret_cast<const std::uint8_t *>(s.data());
}

inline std::string_view view(const char *s) noexcept {
    return s ? std::string_view(s) : std::string_view();
}

struct config_deleter {
    void operator()(dps_config *c) const noexcept { dps_config_free(c); }
};
struct client_deleter {
    void operator()(dps_client *c) const noexcept { dps_client_free(c); }
};
struct assignment_deleter {
    void operator()(dps_assignment *a) const noexcept { dps_assignment_free(a); }
};

template <class Handle, class F, std::size_t N, std::size_t... I>
result<void> call_expand(Handle *handle, F f, const c_string (&copies)[N],
                         std::index_sequence<I...>) {
    return check(f(handle, copies[I].get()...));
}

/** Calls `f(handle, c_str...)` with NUL-terminated copies of the views. */
template <class Handle, class F, class... Views>
result<void> call_with_strings(Handle *handle, F f, Views... views) {
    const c_string copies[] = {c_string(views)...};
    for (const c_string &c : copies) {
        if (!c.ok()) {
            return result<void>(error(DPS_ERR_INVALID_ARGUMENT));
        }
    }
    return call_expand(handle, f, copies, std::index_sequence_for<Views...>());
}

}  // namespace detail

/** Log lines: level and message (valid only during the call). */
using log_function = std::function<void(dps_log_level, std::string_view)>;
/** Progress changes. */
using status_function = std::function<void(dps_status)>;

class client;

/**
 * The settings of a registration (dps_config). Setters validate at once and leave the setting
 * unchanged on error. A client copies the config when created: the config may be changed or
 * destroyed afterwards.
 */
class config {
public:
    /** A config with the library's defaults; DPS_ERR_OUT_OF_MEMORY when none could be made. */
    static result<config> create() {
        dps_config *raw = dps_config_new();
        if (raw == nullptr) {
            return error(DPS_ERR_OUT_OF_MEMORY);
        }
        return config(raw);
    }

    result<void> set_id_scope(std::string_view id_scope) {
        return detail::call_with_strings(get(), dps_config_set_id_scope, id_scope);
    }
    result<void> set_registration_id(std::string_view registration_id) {
        return detail::call_with_strings(get(), dps_config_set_registration_id, registration_id);
    }
    /** An individual enrollment's key (base64); replaces a group key or an X.509 identity. */
    result<void> set_symmetric_key(std::string_view key_base64) {
        return detail::call_with_strings(get(), dps_config_set_symmetric_key, key_base64);
    }
    /** An enrollment group's key (base64): the device key is derived from it. */
    result<void> set_group_key(std::string_view group_key_base64) {
        return detail::call_with_strings(get(), dps_config_set_group_key, group_key_base64);
    }
    /** X.509 attestation: the chain (PEM, leaf first, or one DER leaf) and its private key. */
    result<void> set_client_certificate(std::string_view cert_chain, std::string_view private_key) {
        return detail::check(dps_config_set_client_certificate(get(), detail::bytes(cert_chain),
                                                               cert_chain.size(),
                                                               detail::bytes(private_key),
                                                               private_key.size()));
    }
    /** X.509 presented by the transport's own TLS (requires set_tls_offload(true)). */
    result<void> set_x509_offloaded() {
        return detail::check(dps_config_set_x509_offloaded(get()));
    }
    result<void> set_tls_offload(bool enabled) {
        return detail::check(dps_config_set_tls_offload(get(), enabled));
    }
    result<void> set_endpoint(std::string_view host, std::uint16_t port) {
        detail::c_string h(host);
        if (!h.ok()) {
            return error(DPS_ERR_INVALID_ARGUMENT);
        }
        return detail::check(dps_config_set_endpoint(get(), h.get(), port));
    }
    /** Adds PEM trust anchors to those added before. */
    result<void> add_trust_anchors_pem(std::string_view pem, bool use_public_roots) {
        return detail::check(dps_config_add_trust_anchors_pem(get(), detail::bytes(pem), pem.size(),
                                                              use_public_roots));
    }
    /** Replaces the trust anchors; an empty `pem` and `use_public_roots`: the defaults again. */
    result<void> set_trust_anchors_pem(std::string_view pem, bool use_public_roots) {
        return detail::check(dps_config_set_trust_anchors_pem(get(), detail::bytes(pem), pem.size(),
                                                              use_public_roots));
    }
    /** The custom JSON sent as the registration's payload. */
    result<void> set_payload_json(std::string_view json) {
        return detail::call_with_strings(get(), dps_config_set_payload_json, json);
    }
    result<void> clear_payload_json() {
        return detail::check(dps_config_set_payload_json(get(), nullptr));
    }
    /** The IoT Plug and Play model id (a DTMI), sent inside the payload. */
    result<void> set_model_id(std::string_view dtmi) {
        return detail::call_with_strings(get(), dps_config_set_model_id, dtmi);
    }
    result<void> clear_model_id() { return detail::check(dps_config_set_model_id(get(), nullptr)); }
    result<void> set_api_version(std::string_view api_version) {
        return detail::call_with_strings(get(), dps_config_set_api_version, api_version);
    }
    /** The overall deadline of one attempt (default 90 s); whole milliseconds, 1 ms to ~49 days. */
    result<void> set_timeout(std::chrono::milliseconds timeout) {
        if (timeout.count() <= 0 || timeout.count() > UINT32_MAX) {
            return error(DPS_ERR_INVALID_ARGUMENT);
        }
        return detail::check(
            dps_config_set_timeout_ms(get(), static_cast<std::uint32_t>(timeout.count())));
    }
    /** The SAS token lifetime (default 1 h; DPS_SAS_TOKEN_LIFETIME_MIN_S to _MAX_S). */
    result<void> set_sas_token_lifetime(std::chrono::seconds lifetime) {
        if (lifetime.count() < 0 || lifetime.count() > UINT32_MAX) {
            return error(DPS_ERR_INVALID_ARGUMENT);
        }
        return detail::check(dps_config_set_sas_token_lifetime_s(
            get(), static_cast<std::uint32_t>(lifetime.count())));
    }
    /** MQTT over WebSocket (port 443 unless set_endpoint gave one). */
    result<void> set_websocket(bool enabled) {
        return detail::check(dps_config_set_websocket(get(), enabled));
    }
    /** An HTTP CONNECT proxy without authentication. */
    result<void> set_proxy(std::string_view host, std::uint16_t port) {
        detail::c_string h(host);
        if (!h.ok()) {
            return error(DPS_ERR_INVALID_ARGUMENT);
        }
        return detail::check(dps_config_set_proxy(get(), h.get(), port, nullptr, nullptr));
    }
    /** An HTTP CONNECT proxy with Basic authentication. */
    result<void> set_proxy(std::string_view host, std::uint16_t port, std::string_view username,
                     std::string_view password) {
        detail::c_string h(host), u(username), p(password);
        if (!h.ok() || !u.ok() || !p.ok()) {
            return error(DPS_ERR_INVALID_ARGUMENT);
        }
        return detail::check(dps_config_set_proxy(get(), h.get(), port, u.get(), p.get()));
    }
    result<void> clear_proxy() {
        return detail::check(dps_config_set_proxy(get(), nullptr, 0, nullptr, nullptr));
    }
    /** The user agent sent as ClientVersion (default "dps-mqtt/<version>"). */
    result<void> set_client_version(std::string_view user_agent) {
        return detail::call_with_strings(get(), dps_config_set_client_version, user_agent);
    }
    result<void> omit_client_version() {
        return detail::check(dps_config_set_client_version(get(), nullptr));
    }
    /** A PKCS#10 CSR (DER, or a PEM block) for certificate issuance; empty removes it. */
    result<void> set_csr(std::string_view der) {
        const std::uint8_t *data = der.empty() ? nullptr : detail::bytes(der);
        return detail::check(dps_config_set_csr_der(get(), data, der.size()));
    }
    /** The clock hooks (copied). */
    result<void> set_clock(const dps_clock &clock) {
        return detail::check(dps_config_set_clock(get(), &clock));
    }
    /** An external signer (HSM, secure element); `user` must outlive the clients made from this. */
    result<void> set_signing_callback(dps_sign_fn sign, void *user) {
        return detail::check(dps_config_set_signing_callback(get(), sign, user));
    }
    /** The entropy source; `user` must outlive every client made from this. */
    result<void> set_entropy(dps_entropy_fn fill, void *user) {
        return detail::check(dps_config_set_entropy(get(), fill, user));
    }

    /**
     * Log lines up to `max_level`, to `f` (kept alive by this config and by every client made
     * from it). An empty function turns logging off. `f` runs on the thread driving a client;
     * if it throws, std::terminate is called (an exception must not cross the C library).
     */
    result<void> on_log(log_function f, dps_log_level max_level = DPS_LOG_INFO) {
        if (!f) {
            dps_result r = dps_config_set_log_callback(get(), nullptr, nullptr, max_level);
            if (r == DPS_OK) {
                log_.reset();
            }
            return detail::check(r);
        }
        auto held = std::make_shared<log_function>(std::move(f));
        dps_result r = dps_config_set_log_callback(get(), log_trampoline, held.get(), max_level);
        if (r == DPS_OK) {
            log_ = std::move(held);
        }
        return detail::check(r);
    }

    /** Progress changes, to `f` (held like on_log's function; an empty one turns it off). */
    result<void> on_status(status_function f) {
        if (!f) {
            dps_result r = dps_config_set_status_callback(get(), nullptr, nullptr);
            if (r == DPS_OK) {
                status_.reset();
            }
            return detail::check(r);
        }
        auto held = std::make_shared<status_function>(std::move(f));
        dps_result r = dps_config_set_status_callback(get(), status_trampoline, held.get());
        if (r == DPS_OK) {
            status_ = std::move(held);
        }
        return detail::check(r);
    }

    /** The C handle, for calls this wrapper does not cover; still owned by this object. */
    dps_config *get() const noexcept { return handle_.get(); }

private:
    friend class client;
    explicit config(dps_config *raw) noexcept : handle_(raw) {}

    static void log_trampoline(void *user, dps_log_level level, const char *message) noexcept {
        (*static_cast<log_function *>(user))(level, detail::view(message));
    }
    static void status_trampoline(void *user, dps_status progress) noexcept {
        (*static_cast<status_function *>(user))(progress);
    }

    std::unique_ptr<dps_config, detail::config_deleter> handle_;
    std::shared_ptr<log_function> log_;
    std::shared_ptr<status_function> status_;
};

/** What a successful registration gave, copied out of the client. */
struct registration {
    std::string assigned_hub;
    std::string device_id;
    /** initialAssignment, deviceDataMigrated, deviceDataReset, reprovisionedToInitialAssignment. */
    std::string substatus;
    /** The JSON payload returned with the assignment; empty when none. */
    std::string payload_json;
    std::string etag;
    std::string operation_id;
    /** The issued chain (PEM), when a CSR was set; empty otherwise. */
    std::string issued_certificate_chain_pem;
};

/** The result of one non-blocking step: still pending (call again within next_call), or done. */
struct step {
    bool pending;
    std::chrono::milliseconds next_call;
};

/** A registration client (dps_client). */
class client {
public:
    /**
     * A client from `cfg` (copied), with the firmware's transport hooks (copied), or nullptr for
     * the built-in TCP transport of hosted builds. Why a config is refused goes to its log
     * function.
     */
    static result<client> create(const config &cfg, const dps_transport *transport = nullptr) {
        dps_client *raw = nullptr;
        dps_result r = dps_client_new(cfg.get(), transport, &raw);
        if (r != DPS_OK) {
            return error(r);
        }
        return client(raw, cfg.log_, cfg.status_);
    }

    /** Blocks until assigned, failed or past the deadline; call again to retry. */
    result<registration> register_device() { return finish(dps_client_register(get())); }

    /**
     * Does the work possible now without blocking; the first call (and the first after an
     * attempt ended) starts an attempt. Pending: call again within next_call, or sooner when
     * the connection is readable (or writable, see wants_write).
     */
    result<step> do_work() {
        std::uint32_t next_ms = 0;
        dps_result r = dps_client_do_work(get(), &next_ms);
        if (r == DPS_PENDING) {
            return step{true, std::chrono::milliseconds(next_ms)};
        }
        if (r == DPS_OK) {
            return step{false, std::chrono::milliseconds(0)};
        }
        return error::from_client(r, get());
    }

    /** After do_work() ended with `pending` false: what the registration gave. */
    result<registration> outcome() const { return finish(dps_client_last_result(get())); }

    bool wants_write() const noexcept { return dps_client_wants_write(get()); }
    dps_result last_result() const noexcept { return dps_client_last_result(get()); }

    /* Views into the client, valid until the next do_work()/register_device() or destruction;
       empty when the service did not send the value. */
    std::string_view assigned_hub() const noexcept {
        return detail::view(dps_client_assigned_hub(get()));
    }
    std::string_view device_id() const noexcept {
        return detail::view(dps_client_device_id(get()));
    }
    std::string_view substatus() const noexcept {
        return detail::view(dps_client_substatus(get()));
    }
    std::string_view payload_json() const noexcept {
        return detail::view(dps_client_payload_json(get()));
    }
    std::string_view etag() const noexcept { return detail::view(dps_client_etag(get())); }
    std::string_view operation_id() const noexcept {
        return detail::view(dps_client_operation_id(get()));
    }
    std::string_view registration_status() const noexcept {
        return detail::view(dps_client_registration_status(get()));
    }
    std::string_view error_message() const noexcept {
        return detail::view(dps_client_error_message(get()));
    }
    std::string_view tracking_id() const noexcept {
        return detail::view(dps_client_tracking_id(get()));
    }
    std::string_view result_detail() const noexcept {
        return detail::view(dps_client_result_detail(get()));
    }
    std::string_view issued_certificate_chain_pem() const noexcept {
        return detail::view(dps_client_issued_certificate_chain_pem(get()));
    }
    std::int64_t error_code() const noexcept { return dps_client_error_code(get()); }
    std::uint32_t http_status() const noexcept { return dps_client_http_status(get()); }
    /** The last response's retry-after, if it carried one. */
    std::optional<std::chrono::milliseconds> retry_after() const noexcept {
        std::int64_t ms = dps_client_retry_after_ms(get());
        if (ms < 0) {
            return std::nullopt;
        }
        return std::chrono::milliseconds(ms);
    }

    /** The last assignment as a blob to store (flash, a file) for assignment::parse. */
    result<std::vector<std::uint8_t>> save_assignment() const {
        std::vector<std::uint8_t> blob(DPS_ASSIGNMENT_MAX_LEN);
        std::size_t written = 0;
        dps_result r = dps_client_assignment_save(get(), blob.data(), blob.size(), &written);
        if (r != DPS_OK) {
            return error(r);
        }
        blob.resize(written);
        return blob;
    }

    /** The C handle, for calls this wrapper does not cover; still owned by this object. */
    dps_client *get() const noexcept { return handle_.get(); }

private:
    client(dps_client *raw, std::shared_ptr<log_function> log,
           std::shared_ptr<status_function> on_status) noexcept
        : handle_(raw), log_(std::move(log)), status_(std::move(on_status)) {}

    result<registration> finish(dps_result r) const {
        if (r != DPS_OK) {
            return error::from_client(r, get());
        }
        registration reg;
        reg.assigned_hub = assigned_hub();
        reg.device_id = device_id();
        reg.substatus = substatus();
        reg.payload_json = payload_json();
        reg.etag = etag();
        reg.operation_id = operation_id();
        reg.issued_certificate_chain_pem = issued_certificate_chain_pem();
        return reg;
    }

    std::unique_ptr<dps_client, detail::client_deleter> handle_;
    /* The config's callbacks: the C client holds pointers to them. */
    std::shared_ptr<log_function> log_;
    std::shared_ptr<status_function> status_;
};

/** A stored assignment, read back from a blob (dps_assignment). */
class assignment {
public:
    static result<assignment> parse(const std::uint8_t *blob, std::size_t size) {
        dps_assignment *raw = nullptr;
        dps_result r = dps_assignment_parse(blob, size, &raw);
        if (r != DPS_OK) {
            return error(r);
        }
        return assignment(raw);
    }
    static result<assignment> parse(const std::vector<std::uint8_t> &blob) {
        return parse(blob.data(), blob.size());
    }

    /* Views valid as long as this assignment. */
    std::string_view assigned_hub() const noexcept {
        return detail::view(dps_assignment_assigned_hub(get()));
    }
    std::string_view device_id() const noexcept {
        return detail::view(dps_assignment_device_id(get()));
    }
    std::string_view etag() const noexcept { return detail::view(dps_assignment_etag(get())); }
    /** When it was received, in UNIX seconds of the client's clock. */
    std::uint64_t assigned_at_unix() const noexcept {
        return dps_assignment_assigned_at_unix(get());
    }

    dps_assignment *get() const noexcept { return handle_.get(); }

private:
    explicit assignment(dps_assignment *raw) noexcept : handle_(raw) {}
    std::unique_ptr<dps_assignment, detail::assignment_deleter> handle_;
};

/**
 * Whether to provision now, from the stored blob and what its hub said (dps_should_provision):
 * true when nothing valid is stored or the hub rejected the device.
 */
inline bool should_provision(const std::vector<std::uint8_t> &blob,
                             dps_hub_outcome hub_outcome = DPS_HUB_NOT_TRIED) noexcept {
    return dps_should_provision(blob.data(), blob.size(), hub_outcome);
}

/** A device key derived from its enrollment group's key. */
inline result<std::string> derive_group_key(std::string_view group_key_base64,
                                            std::string_view registration_id) {
    detail::c_string key(group_key_base64), id(registration_id);
    if (!key.ok() || !id.ok()) {
        return error(DPS_ERR_INVALID_ARGUMENT);
    }
    char out[64];
    std::size_t written = 0;
    dps_result r = dps_derive_group_key(key.get(), id.get(), out, sizeof out, &written);
    if (r != DPS_OK) {
        return error(r);
    }
    return std::string(out, written);
}

/** The SAS token a device sends as its MQTT password, valid until `expiry_unix_seconds`. */
inline result<std::string> sas_token(std::string_view id_scope, std::string_view registration_id,
                                     std::string_view key_base64,
                                     std::uint64_t expiry_unix_seconds) {
    detail::c_string scope(id_scope), id(registration_id), key(key_base64);
    if (!scope.ok() || !id.ok() || !key.ok()) {
        return error(DPS_ERR_INVALID_ARGUMENT);
    }
    std::string out(512, '\0');
    std::size_t written = 0;
    dps_result r = dps_sas_token(scope.get(), id.get(), key.get(), expiry_unix_seconds, &out[0],
                                 out.size(), &written);
    if (r != DPS_OK) {
        return error(r);
    }
    out.resize(written);
    return out;
}

/** The library's heap use in bytes: now, and the most at once since start or reset_heap_peak. */
struct heap_usage_info {
    std::size_t current;
    std::size_t peak;
};
inline heap_usage_info heap_usage() noexcept {
    heap_usage_info usage{0, 0};
    (void)dps_heap_usage(&usage.current, &usage.peak);
    return usage;
}
inline void reset_heap_peak() noexcept { dps_heap_reset_peak(); }

}  // namespace dps

#endif /* DPS_MQTT_HPP */
