/*
 * The C API's contract, from C:
 *  - every export accepts NULL for each pointer argument (an error code or a NULL/zero
 *    result, never a crash), and every _free accepts NULL;
 *  - setters reject malformed values with their specific DPS_ERR_INVALID_* code;
 *  - dps_result_str/name/class for every code and for unknown values;
 *  - the SAS and group-key helpers reproduce the published vectors;
 *  - with --host/--port/--ca-file (a running emulator, see with_emulator.py): whole
 *    registrations through transport and clock hooks written here, which hand the library one
 *    received byte at a time and accept a few bytes per send, driven both by the non-blocking
 *    dps_client_do_work and by the blocking dps_client_register, with callbacks checked.
 * Exits non-zero when a check fails.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "dps_mqtt.h"

static int checks = 0;
static int failures = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        checks++;                                                                     \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                               \
        }                                                                             \
    } while (0)

/* Checks a registration's result, showing the library's explanation when it differs. */
#define CHECK_RESULT(client, r, expected)                                             \
    do {                                                                              \
        CHECK_STR(dps_result_name(r), (expected));                                    \
        if (strcmp(dps_result_name(r), (expected)) != 0) {                            \
            fprintf(stderr, "    detail: %s\n",                                       \
                    dps_client_result_detail(client) ? dps_client_result_detail(client) \
                                                     : "(none)");                     \
        }                                                                             \
    } while (0)

#define CHECK_STR(actual, expected)                                                   \
    do {                                                                              \
        const char *a_ = (actual);                                                    \
        CHECK(a_ != NULL && strcmp(a_, (expected)) == 0);                             \
        if (a_ != NULL && strcmp(a_, (expected)) != 0) {                              \
            fprintf(stderr, "    got \"%s\", want \"%s\"\n", a_, (expected));         \
        }                                                                             \
    } while (0)

static const char *const SCOPE = "0ne00000001";
/* The published SAS vector's key; any valid base64 key does for the offline checks. */
static const char *const KEY = "O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=";
/* Keys of c-tests/api_enrollments.json. */
static const char *const DEVICE_KEY = "pmImfq0KLX6Pz0Cn55CDokkQ7dC3rEhAfggusfpcyJw=";
static const char *const FAILED_KEY = "Ik0dQ4ZVZu1WmiqH2iWJs3MHDe+HHS+P7d80WEQU81g=";
static const char *const GROUP_KEY = "b28l409KTA3CcURml1MYEvrIB7n0c5dd+86OyF5s7QQ=";

/* A self-signed test certificate with CN "c-device", its key (PKCS#8) and another key (SEC1):
 * offline checks of dps_config_set_client_certificate. Test-only material. */
static const char DEVICE_CERT_PEM[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBfTCCASOgAwIBAgIUee5jkfT8TOm9tnsjLLjGRNH2aGwwCgYIKoZIzj0EAwIw\n"
    "EzERMA8GA1UEAwwIYy1kZXZpY2UwIBcNMjYxMjAxMDIyNzA2WhgPMjEyNjExMDcw\n"
    "MjI3MDZaMBMxETAPBgNVBAMMCGMtZGV2aWNlMFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
    "AQcDQgAEwDEFB68/SPTbM2XxBd08q4bC6+HSzb+qiendnB9CrtqeIjB21eU2OtSC\n"
    "MdLnjsifWNYmDqi4Q+552JWsu+YOhaNTMFEwHQYDVR0OBBYEFBC1Xis6xCeIrOgH\n"
    "jMFn1wj9c0YUMB8GA1UdIwQYMBaAFBC1Xis6xCeIrOgHjMFn1wj9c0YUMA8GA1Ud\n"
    "EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAJAgdAkT+8f3yk36gbeZ9clQ\n"
    "BXQpsr6mRlHDovOTGpvxAiB1o2YgDbIo2RbcSc/iaga7jsKSIf+q6drfJ/yBiOWN\n"
    "1w==\n"
    "-----END CERTIFICATE-----\n";
static const char DEVICE_CERT_KEY_PEM[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgxItNZLJfsQtgl+N4\n"
    "2vSKfbgwke2V0zK6gPF/TPJGeSehRANCAATAMQUHrz9I9NszZfEF3TyrhsLr4dLN\n"
    "v6qJ6d2cH0Ku2p4iMHbV5TY61IIx0ueOyJ9Y1iYOqLhD7nnYlay75g6F\n"
    "-----END PRIVATE KEY-----\n";
static const char OTHER_KEY_PEM[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIPdhXuKpYP3alUIfI1esJz5luusIMKqfReJ1noPnvKb4oAoGCCqGSM49\n"
    "AwEHoUQDQgAEMUs02Ag/+CP778GqVLZ/kuT174xl8caR58LpDfCMidrZutMl5xMJ\n"
    "JymqlONh0vX2AkbWTixlDw/7IDirgmC2WA==\n"
    "-----END EC PRIVATE KEY-----\n";
/* The test "HSM", defined with the registrations below. */
static int32_t hsm_sign(void *user, const uint8_t *data, size_t data_len, uint8_t *signature,
                        size_t signature_len);

static ptrdiff_t null_send(void *user, const uint8_t *buf, size_t len) {
    (void)user, (void)buf, (void)len;
    return DPS_IO_ERROR;
}

/* ======================================================================================== */
/* Offline checks                                                                            */
/* ======================================================================================== */

static void null_arguments(void) {
    dps_config *cfg = dps_config_new();
    dps_client *client = NULL;
    uint32_t next = 0;
    char buf[256];
    size_t written = 0;
    dps_clock clock;
    dps_transport transport;

    CHECK(cfg != NULL);
    CHECK(dps_config_set_id_scope(NULL, SCOPE) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_id_scope(cfg, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_registration_id(NULL, "dev") == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_registration_id(cfg, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_symmetric_key(NULL, KEY) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_symmetric_key(cfg, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_group_key(NULL, KEY) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_group_key(cfg, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_endpoint(NULL, "host", 8883) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_endpoint(cfg, NULL, 8883) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_host(NULL, "host") == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_host(cfg, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_keep_alive_s(NULL, 60) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_max_packet_size(NULL, 4096) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_result_detail(NULL) == NULL);
    CHECK(dps_config_add_trust_anchors_pem(NULL, (const uint8_t *)"x", 1, true) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_add_trust_anchors_pem(cfg, NULL, 10, true) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_trust_anchors_pem(NULL, (const uint8_t *)"x", 1, true) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_trust_anchors_pem(cfg, NULL, 10, true) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_trust_anchors_pem(cfg, NULL, 0, true) == DPS_OK); /* public roots */
    CHECK(dps_config_set_client_certificate(NULL, (const uint8_t *)"c", 1, (const uint8_t *)"k",
                                            1) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_client_certificate(cfg, NULL, 10, (const uint8_t *)"k", 1) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_client_certificate(cfg, (const uint8_t *)"c", 1, NULL, 10) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_model_id(NULL, "dtmi:com:example:Thermostat;1") ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_model_id(cfg, NULL) == DPS_OK); /* NULL clears the model id */
    CHECK(dps_config_set_sas_token_lifetime_s(NULL, 3600) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_client_version(NULL, "fw/1.0") == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_client_version(cfg, NULL) == DPS_OK); /* NULL omits ClientVersion */
    CHECK(dps_config_set_entropy(NULL, NULL, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_entropy(cfg, NULL, NULL) == DPS_OK); /* NULL: the OS's source */
    {
        dps_allocator no_free = {0};
        CHECK(dps_set_allocator(&no_free) == DPS_ERR_INVALID_NULL_POINTER);
        /* The config above holds memory from the current allocator. */
        CHECK(dps_set_allocator(NULL) == DPS_ERR_INVALID_STATE);
    }
    CHECK(dps_heap_usage(NULL, NULL) == DPS_OK);
    CHECK(dps_set_panic_hook(NULL, NULL) == DPS_OK);
    CHECK(dps_config_set_payload_json(NULL, "{}") == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_payload_json(cfg, NULL) == DPS_OK); /* NULL clears the payload */
    CHECK(dps_config_set_api_version(NULL, "2019-03-31") == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_api_version(cfg, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_timeout_ms(NULL, 1000) == DPS_ERR_INVALID_NULL_POINTER);
    memset(&clock, 0, sizeof clock);
    CHECK(dps_config_set_clock(NULL, &clock) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_clock(cfg, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_clock(cfg, &clock) == DPS_ERR_INVALID_NULL_POINTER); /* NULL hooks */
    CHECK(dps_config_set_log_callback(NULL, NULL, NULL, DPS_LOG_INFO) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_log_callback(cfg, NULL, NULL, DPS_LOG_INFO) == DPS_OK); /* = off */
    CHECK(dps_config_set_status_callback(NULL, NULL, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_status_callback(cfg, NULL, NULL) == DPS_OK); /* = off */
    /* TLS offload */
    CHECK(dps_config_set_tls_offload(NULL, true) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_x509_offloaded(NULL) == DPS_ERR_INVALID_NULL_POINTER);
    /* Connection path: WebSocket and HTTP proxy. */
    CHECK(dps_config_set_websocket(NULL, true) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_websocket(cfg, false) == DPS_OK);
    CHECK(dps_config_set_proxy(NULL, "proxy", 3128, "u", "p") == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_proxy(cfg, NULL, 3128, "u", "p") == DPS_OK); /* NULL host: no proxy */
    CHECK(dps_config_set_proxy(cfg, "proxy", 3128, NULL, NULL) == DPS_OK); /* no auth */
    CHECK(dps_config_set_proxy(cfg, "proxy", 3128, "u", NULL) == DPS_OK); /* empty password */
    CHECK(dps_config_set_proxy(cfg, "proxy", 3128, NULL, "p") == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_proxy(cfg, "proxy", 0, NULL, NULL) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_proxy(cfg, "", 3128, NULL, NULL) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_proxy(cfg, "proxy", 3128, "a:b", "p") == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_proxy(cfg, "pro xy", 3128, NULL, NULL) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_proxy(cfg, NULL, 0, NULL, NULL) == DPS_OK);

    CHECK(dps_client_new(NULL, NULL, &client) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_client_new(cfg, NULL, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    memset(&transport, 0, sizeof transport);
    transport.send = null_send; /* the other required hooks are NULL */
    CHECK(dps_client_new(cfg, &transport, &client) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(client == NULL); /* out-params are written only on success */
    CHECK(dps_client_do_work(NULL, &next) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_client_do_work(NULL, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_client_register(NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_client_last_result(NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(!dps_client_wants_write(NULL));
    CHECK(dps_client_socket(NULL) == -1);
    CHECK(dps_client_assigned_hub(NULL) == NULL);
    CHECK(dps_client_device_id(NULL) == NULL);
    CHECK(dps_client_substatus(NULL) == NULL);
    CHECK(dps_client_payload_json(NULL) == NULL);
    CHECK(dps_client_operation_id(NULL) == NULL);
    CHECK(dps_client_registration_status(NULL) == NULL);
    CHECK(dps_client_etag(NULL) == NULL);
    CHECK(dps_client_created_date_time_utc(NULL) == NULL);
    CHECK(dps_client_last_updated_date_time_utc(NULL) == NULL);
    CHECK(dps_client_error_message(NULL) == NULL);
    CHECK(dps_client_tracking_id(NULL) == NULL);
    CHECK(dps_client_result_detail(NULL) == NULL);
    CHECK(dps_client_error_code(NULL) == 0);
    CHECK(dps_client_http_status(NULL) == 0);
    CHECK(dps_client_retry_after_ms(NULL) == -1);

    CHECK(dps_derive_group_key(NULL, "dev", buf, sizeof buf, &written) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_derive_group_key(KEY, NULL, buf, sizeof buf, &written) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_derive_group_key(KEY, "dev", NULL, sizeof buf, &written) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_derive_group_key(KEY, "dev", buf, sizeof buf, NULL) == DPS_OK); /* optional */
    CHECK(dps_sas_token(NULL, "dev", KEY, 1, buf, sizeof buf, NULL) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_sas_token(SCOPE, NULL, KEY, 1, buf, sizeof buf, NULL) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_sas_token(SCOPE, "dev", NULL, 1, buf, sizeof buf, NULL) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_sas_token(SCOPE, "dev", KEY, 1, NULL, sizeof buf, NULL) ==
          DPS_ERR_INVALID_NULL_POINTER);

    /* External signing, certificate issuance, stored assignments */
    CHECK(dps_config_set_signing_callback(NULL, hsm_sign, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_signing_callback(cfg, NULL, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_csr_der(NULL, (const uint8_t *)"\x30\x00", 2) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_csr_der(cfg, NULL, 2) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_csr_der(cfg, NULL, 0) == DPS_OK); /* NULL, 0 removes the CSR */
    CHECK(dps_config_set_csr_der(cfg, (const uint8_t *)"\x30\x01", 2) == DPS_ERR_INVALID_CSR);
    CHECK(dps_config_set_csr_der(cfg, (const uint8_t *)"\x30\x00", 2) == DPS_OK);
    CHECK(dps_config_set_csr_der(cfg, NULL, 0) == DPS_OK);
    CHECK(dps_client_issued_certificate_chain_pem(NULL) == NULL);
    {
        uint8_t blob[DPS_ASSIGNMENT_MAX_LEN];
        dps_assignment *assignment = NULL;
        written = 7;
        CHECK(dps_client_assignment_save(NULL, blob, sizeof blob, &written) ==
              DPS_ERR_INVALID_NULL_POINTER);
        CHECK(written == 7);
        CHECK(dps_assignment_parse(NULL, 10, &assignment) == DPS_ERR_INVALID_NULL_POINTER);
        CHECK(dps_assignment_parse(NULL, 0, &assignment) == DPS_ERR_INVALID_ASSIGNMENT);
        CHECK(dps_assignment_parse(blob, 0, NULL) == DPS_ERR_INVALID_NULL_POINTER);
        CHECK(assignment == NULL);
        CHECK(dps_assignment_assigned_hub(NULL) == NULL);
        CHECK(dps_assignment_device_id(NULL) == NULL);
        CHECK(dps_assignment_etag(NULL) == NULL);
        CHECK(dps_assignment_assigned_at_unix(NULL) == 0);
        dps_assignment_free(NULL);
        /* Nothing stored: provision, whatever the hub said (and for unknown values). */
        CHECK(dps_should_provision(NULL, 0, DPS_HUB_NOT_TRIED));
        CHECK(dps_should_provision(NULL, 40, DPS_HUB_UNREACHABLE));
        CHECK(dps_should_provision(NULL, 0, 12345));
    }

    dps_client_free(NULL);
    dps_config_free(NULL);
    dps_config_free(cfg);
}

static void invalid_values(void) {
    dps_config *cfg = dps_config_new();
    dps_client *client = NULL;
    const char bad_utf8[] = {'d', (char)0xC3, (char)0x28, '\0'};

    CHECK(dps_config_set_id_scope(cfg, "") == DPS_ERR_INVALID_ID_SCOPE);
    CHECK(dps_config_set_id_scope(cfg, "0ne 0001") == DPS_ERR_INVALID_ID_SCOPE);
    CHECK(dps_config_set_registration_id(cfg, "bad id!") == DPS_ERR_INVALID_REGISTRATION_ID);
    CHECK(dps_config_set_registration_id(cfg, "") == DPS_ERR_INVALID_REGISTRATION_ID);
    CHECK(dps_config_set_registration_id(cfg, bad_utf8) == DPS_ERR_INVALID_UTF8);
    CHECK(dps_config_set_symmetric_key(cfg, "not base64!") == DPS_ERR_INVALID_KEY);
    CHECK(dps_config_set_symmetric_key(cfg, "") == DPS_ERR_INVALID_KEY);
    CHECK(dps_config_set_group_key(cfg, "***") == DPS_ERR_INVALID_KEY);
    CHECK_STR(dps_config_result_detail(cfg), "key is not base64"); /* the last refusal */
    CHECK(dps_config_set_payload_json(cfg, "{not json") == DPS_ERR_INVALID_PAYLOAD);
    CHECK(strncmp(dps_config_result_detail(cfg), "payload is not valid JSON: ", 27) == 0);
    {
        /* Too big, too deep and not JSON each say so: 100000 bytes; 65 levels. */
        static char json[100001];
        memset(json, 'x', 100000);
        json[0] = json[99999] = '"';
        json[100000] = '\0';
        CHECK(dps_config_set_payload_json(cfg, json) == DPS_ERR_INVALID_PAYLOAD);
        CHECK_STR(dps_config_result_detail(cfg),
                  "payload is 100000 bytes; the service accepts at most 98304");
        memset(json, '[', 65);
        memset(json + 65, ']', 65);
        json[130] = '\0';
        CHECK(dps_config_set_payload_json(cfg, json) == DPS_ERR_INVALID_PAYLOAD);
        CHECK_STR(dps_config_result_detail(cfg), "payload nests 65 levels deep; at most 64");
        json[0] = ' ';
        json[129] = ' '; /* 64 levels */
        CHECK(dps_config_set_payload_json(cfg, json) == DPS_OK);
        CHECK(dps_config_set_payload_json(cfg, NULL) == DPS_OK);
    }
    /* Host names TLS could never use are refused here, before anything is dialled. */
    CHECK(dps_config_set_endpoint(cfg, "exa mple.com", 8883) == DPS_ERR_INVALID_ARGUMENT);
    CHECK_STR(dps_config_result_detail(cfg), "host \"exa mple.com\" contains ' '; a host name "
                                             "has only letters, digits, '-' and '.'");
    CHECK(dps_config_set_endpoint(cfg, "x..y", 8883) == DPS_ERR_INVALID_ARGUMENT);
    CHECK_STR(dps_config_result_detail(cfg),
              "host \"x..y\" has an empty label (a leading dot or two dots in a row)");
    CHECK(dps_config_set_endpoint(cfg, "a:b", 8883) == DPS_ERR_INVALID_ARGUMENT);
    CHECK_STR(dps_config_result_detail(cfg), "host \"a:b\" contains ':' but is not an IPv6 "
                                             "address; give the port separately");
    CHECK(dps_config_set_endpoint(cfg, "", 8883) == DPS_ERR_INVALID_ARGUMENT);
    CHECK_STR(dps_config_result_detail(cfg), "host is empty");
    CHECK(dps_config_set_host(cfg, "a:b") == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_endpoint(cfg, "host", 0) == DPS_ERR_INVALID_ARGUMENT);
    CHECK_STR(dps_config_result_detail(cfg), "port 0 is not a port; give 1 to 65535");
    CHECK(dps_config_set_endpoint(cfg, "[::1]", 8883) == DPS_OK);
    CHECK(dps_config_set_host(cfg, "dps.example") == DPS_OK); /* the port stays */
    {
        /* The proxy's host follows the same rule (a build without TLS has no proxy at all). */
        dps_result r = dps_config_set_proxy(cfg, "x..y", 3128, NULL, NULL);
        if (r != DPS_ERR_INVALID_UNSUPPORTED) {
            CHECK(r == DPS_ERR_INVALID_ARGUMENT);
            CHECK_STR(dps_config_result_detail(cfg), "proxy host \"x..y\" has an empty label (a "
                                                     "leading dot or two dots in a row)");
        }
        CHECK(dps_config_set_proxy(cfg, NULL, 0, NULL, NULL) == DPS_OK);
    }
    /* Keep-alive 5..1767 s, packet limit 1024..268435460 bytes; out of range changes nothing. */
    CHECK(DPS_KEEP_ALIVE_MIN_S == 5 && DPS_KEEP_ALIVE_MAX_S == 1767);
    CHECK(DPS_KEEP_ALIVE_DEFAULT_S == 60);
    CHECK(dps_config_set_keep_alive_s(cfg, 0) == DPS_ERR_INVALID_ARGUMENT);
    CHECK_STR(dps_config_result_detail(cfg), "keep-alive (s) 0 is outside 5..=1767");
    CHECK(dps_config_set_keep_alive_s(cfg, DPS_KEEP_ALIVE_MIN_S - 1) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_keep_alive_s(cfg, DPS_KEEP_ALIVE_MAX_S + 1) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_keep_alive_s(cfg, DPS_KEEP_ALIVE_MIN_S) == DPS_OK);
    CHECK(dps_config_set_keep_alive_s(cfg, DPS_KEEP_ALIVE_MAX_S) == DPS_OK);
    CHECK(DPS_MAX_PACKET_SIZE_MIN == 1024 && DPS_MAX_PACKET_SIZE_MAX == 268435460);
    CHECK(DPS_MAX_PACKET_SIZE_DEFAULT == 99328);
    CHECK(dps_config_set_max_packet_size(cfg, DPS_MAX_PACKET_SIZE_MIN - 1) ==
          DPS_ERR_INVALID_ARGUMENT);
    CHECK_STR(dps_config_result_detail(cfg),
              "maximum packet size (bytes) 1023 is outside 1024..=268435460");
    CHECK(dps_config_set_max_packet_size(cfg, DPS_MAX_PACKET_SIZE_MAX + 1) ==
          DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_max_packet_size(cfg, DPS_MAX_PACKET_SIZE_MIN) == DPS_OK);
    CHECK(dps_config_set_max_packet_size(cfg, DPS_MAX_PACKET_SIZE_DEFAULT) == DPS_OK);
    CHECK(dps_config_set_api_version(cfg, "2019-03-31&x=1") == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_api_version(cfg, "2019-3-31") == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_api_version(cfg, "2025-07-01-preview") == DPS_OK);
    CHECK(dps_config_set_api_version(cfg, "2019-03-31") == DPS_OK);
    CHECK(dps_config_set_model_id(cfg, "com:example:Thermostat;1") == DPS_ERR_INVALID_MODEL_ID);
    CHECK(dps_config_set_model_id(cfg, "dtmi:com:example:Thermostat;0") ==
          DPS_ERR_INVALID_MODEL_ID);
    CHECK(dps_config_set_model_id(cfg, bad_utf8) == DPS_ERR_INVALID_UTF8);
    CHECK(DPS_SAS_TOKEN_LIFETIME_MIN_S == 60 && DPS_SAS_TOKEN_LIFETIME_MAX_S == 2592000);
    CHECK(dps_config_set_sas_token_lifetime_s(cfg, DPS_SAS_TOKEN_LIFETIME_MIN_S - 1) ==
          DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_sas_token_lifetime_s(cfg, DPS_SAS_TOKEN_LIFETIME_MAX_S + 1) ==
          DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_sas_token_lifetime_s(cfg, DPS_SAS_TOKEN_LIFETIME_MIN_S) == DPS_OK);
    CHECK(dps_config_set_sas_token_lifetime_s(cfg, DPS_SAS_TOKEN_LIFETIME_MAX_S) == DPS_OK);
    CHECK(dps_config_set_client_version(cfg, "") == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_client_version(cfg, "line\nbreak") == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_client_version(cfg, "contoso-fw/2.4.1 (board-x)") == DPS_OK);
    CHECK(dps_config_set_timeout_ms(cfg, 0) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_log_callback(cfg, NULL, NULL, 0) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_log_callback(cfg, NULL, NULL, 99) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_add_trust_anchors_pem(cfg, (const uint8_t *)"junk", 4, false) ==
          DPS_ERR_INVALID_CERTIFICATE);
    CHECK(dps_config_set_trust_anchors_pem(cfg, (const uint8_t *)"junk", 4, true) ==
          DPS_ERR_INVALID_CERTIFICATE);
    CHECK(dps_config_set_trust_anchors_pem(cfg, NULL, 0, false) ==
          DPS_ERR_INVALID_CERTIFICATE); /* would trust nothing */

    /* An incomplete configuration is refused when the client is created: nothing dialled. */
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_ERR_INVALID_CONFIG);
    CHECK(dps_config_set_id_scope(cfg, SCOPE) == DPS_OK);
    CHECK(dps_config_set_registration_id(cfg, "dev-1") == DPS_OK);
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_ERR_INVALID_CONFIG); /* no key */
    CHECK(client == NULL);
    CHECK(dps_config_set_symmetric_key(cfg, KEY) == DPS_OK);
    /* A model id needs the payload to be a JSON object without its own modelId. */
    CHECK(dps_config_set_model_id(cfg, "dtmi:com:example:Thermostat;1") == DPS_OK);
    CHECK(dps_config_set_payload_json(cfg, "[1]") == DPS_OK);
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_ERR_INVALID_PAYLOAD);
    CHECK(dps_config_set_payload_json(cfg, "{\"modelId\":\"dtmi:x;1\"}") == DPS_OK);
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_ERR_INVALID_PAYLOAD);
    CHECK(dps_config_set_payload_json(cfg, "{\"site\":1}") == DPS_OK);
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_OK);
    dps_client_free(client);
    client = NULL;
    CHECK(dps_config_set_model_id(cfg, NULL) == DPS_OK);
    CHECK(dps_config_set_payload_json(cfg, NULL) == DPS_OK);
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_OK);
    CHECK(client != NULL);
    CHECK(dps_client_last_result(client) == DPS_ERR_INVALID_STATE); /* no attempt yet */
    CHECK(dps_client_assigned_hub(client) == NULL);
    CHECK(dps_client_http_status(client) == 0);
    dps_client_free(client);
    dps_config_free(cfg);
}

/* Records the last error-level log line. */
static void keep_last_error(void *user, dps_log_level level, const char *message) {
    if (level == DPS_LOG_ERROR) {
        snprintf((char *)user, 512, "%s", message);
    }
}

/* X.509 credentials offline: bad inputs have their own codes; the registration id must be
 * the certificate's CN, and dps_client_new says why through the log callback. */
static void client_certificates(void) {
    dps_config *cfg = dps_config_new();
    dps_client *client = NULL;
    char last_error[512] = "";
    const uint8_t *cert = (const uint8_t *)DEVICE_CERT_PEM;
    const uint8_t *key = (const uint8_t *)DEVICE_CERT_KEY_PEM;
    size_t cert_len = strlen(DEVICE_CERT_PEM), key_len = strlen(DEVICE_CERT_KEY_PEM);

    CHECK(dps_config_set_client_certificate(cfg, (const uint8_t *)"junk", 4, key, key_len) ==
          DPS_ERR_INVALID_CERTIFICATE);
    CHECK(dps_config_set_client_certificate(cfg, cert, cert_len, NULL, 0) ==
          DPS_ERR_INVALID_PRIVATE_KEY);
    CHECK(dps_config_set_client_certificate(cfg, cert, cert_len, (const uint8_t *)"junk", 4) ==
          DPS_ERR_INVALID_PRIVATE_KEY);
    CHECK(dps_config_set_client_certificate(cfg, cert, cert_len,
                                            (const uint8_t *)OTHER_KEY_PEM,
                                            strlen(OTHER_KEY_PEM)) ==
          DPS_ERR_INVALID_CERTIFICATE_KEY_MISMATCH);
    CHECK(dps_config_set_client_certificate(cfg, cert, cert_len, key, key_len) == DPS_OK);
    CHECK(dps_config_set_id_scope(cfg, SCOPE) == DPS_OK);
    CHECK(dps_config_set_log_callback(cfg, keep_last_error, last_error, DPS_LOG_ERROR) == DPS_OK);

    /* No registration id: the CN is used. */
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_OK);
    dps_client_free(client);
    client = NULL;
    CHECK(dps_config_set_registration_id(cfg, "C-Device") == DPS_OK); /* case-insensitive */
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_OK);
    dps_client_free(client);
    client = NULL;
    CHECK(dps_config_set_registration_id(cfg, "another-device") == DPS_OK);
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_ERR_INVALID_CERTIFICATE_CN);
    CHECK(client == NULL);
    CHECK(strstr(last_error, "\"another-device\"") != NULL);
    CHECK(strstr(last_error, "\"c-device\"") != NULL);
    /* A symmetric key replaces the certificate, and the other way round. */
    CHECK(dps_config_set_symmetric_key(cfg, KEY) == DPS_OK);
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_OK);
    dps_client_free(client);
    dps_config_free(cfg);
}

/* The class each name prefix stands for (longest prefixes first). */
static dps_class class_of_name(const char *name) {
    static const struct {
        const char *prefix;
        dps_class cls;
    } classes[] = {
        {"DPS_OK", DPS_CLASS_OK},
        {"DPS_PENDING", DPS_CLASS_PENDING},
        {"DPS_ERR_INVALID", DPS_CLASS_INVALID},
        {"DPS_ERR_AUTH", DPS_CLASS_AUTH},
        {"DPS_ERR_TLS", DPS_CLASS_TLS},
        {"DPS_ERR_TRANSPORT", DPS_CLASS_TRANSPORT},
        {"DPS_ERR_PROTOCOL", DPS_CLASS_PROTOCOL},
        {"DPS_ERR_TIMEOUT", DPS_CLASS_TIMEOUT},
        {"DPS_ERR_REGISTRATION", DPS_CLASS_REGISTRATION},
    };
    size_t i;
    for (i = 0; i < sizeof classes / sizeof classes[0]; i++) {
        if (strncmp(name, classes[i].prefix, strlen(classes[i].prefix)) == 0) {
            return classes[i].cls;
        }
    }
    return DPS_CLASS_INTERNAL;
}

static void result_codes(void) {
    uint32_t v;
    int named = 0;

    for (v = 0; v < 2000; v++) {
        const char *name = dps_result_name(v);
        const char *text = dps_result_str(v);
        CHECK(name != NULL && text != NULL);
        if (name == NULL || text == NULL) {
            continue;
        }
        if (strcmp(name, "DPS_ERR_UNKNOWN") == 0) {
            CHECK(strcmp(text, "unknown result code") == 0);
            CHECK(dps_result_class(v) == DPS_CLASS_INTERNAL);
            CHECK(!dps_result_is_retryable(v));
        } else {
            named++;
            CHECK(strcmp(text, "unknown result code") != 0 && text[0] != '\0');
            /* The name's prefix and the class agree: the CLI's exit codes rely on it. */
            CHECK(dps_result_class(v) == class_of_name(name));
        }
    }
    CHECK(named >= 40);
    CHECK_STR(dps_result_name(0xFFFFFFFFu), "DPS_ERR_UNKNOWN");
    CHECK(dps_result_class(0xFFFFFFFFu) == DPS_CLASS_INTERNAL);
    CHECK_STR(dps_result_name(DPS_OK), "DPS_OK");
    CHECK_STR(dps_result_name(DPS_ERR_TIMEOUT), "DPS_ERR_TIMEOUT");
    CHECK_STR(dps_result_name(DPS_ERR_AUTH_UNAUTHORIZED), "DPS_ERR_AUTH_UNAUTHORIZED");
    CHECK(dps_result_class(DPS_OK) == DPS_CLASS_OK);
    CHECK(dps_result_class(DPS_PENDING) == DPS_CLASS_PENDING);
    CHECK(dps_result_class(DPS_ERR_PANIC) == DPS_CLASS_INTERNAL);
    CHECK(dps_result_class(DPS_ERR_TLS_CERT_UNTRUSTED) == DPS_CLASS_TLS);
    CHECK(dps_result_class(DPS_ERR_REGISTRATION_DISABLED) == DPS_CLASS_REGISTRATION);
    CHECK(dps_result_is_retryable(DPS_ERR_TRANSPORT_CLOSED));
    CHECK(dps_result_is_retryable(DPS_ERR_TIMEOUT_THROTTLED));
    CHECK(!dps_result_is_retryable(DPS_ERR_AUTH_UNAUTHORIZED));
    CHECK(!dps_result_is_retryable(DPS_ERR_INVALID_KEY));
    CHECK(!dps_result_is_retryable(DPS_OK));
}

static void helpers(void) {
    char buf[512];
    size_t written = 0;
    char version[32];

    CHECK(dps_derive_group_key(
              "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
              "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", buf, sizeof buf, &written) == DPS_OK);
    CHECK_STR(buf, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");
    CHECK(written == strlen(buf));
    /* Too small a buffer: an error, and nothing written. */
    memcpy(buf, "untouched", 10);
    written = 12345;
    CHECK(dps_derive_group_key(KEY, "dev", buf, 44, &written) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(strcmp(buf, "untouched") == 0 && written == 12345);
    CHECK(dps_derive_group_key(KEY, "dev", buf, 45, &written) == DPS_OK && written == 44);
    CHECK(dps_derive_group_key("%%%", "dev", buf, sizeof buf, &written) == DPS_ERR_INVALID_KEY);

    CHECK(dps_sas_token("0ne000EEBBD", "FirstDevice", KEY, 1591921306, buf, sizeof buf,
                        &written) == DPS_OK);
    CHECK_STR(buf, "SharedAccessSignature sr=0ne000EEBBD%2fregistrations%2fFirstDevice"
                   "&sig=hwgBlMB6G2Zg5ZcYtwmtLVKRbifiSCPfUMyscbVWa8o%3D&se=1591921306"
                   "&skn=registration");
    CHECK(written == strlen(buf));
    CHECK(dps_sas_token("0ne000EEBBD", "FirstDevice", KEY, 1591921306, buf, 20, NULL) ==
          DPS_ERR_INVALID_ARGUMENT);

    snprintf(version, sizeof version, "%d.%d.%d", DPS_VERSION_MAJOR, DPS_VERSION_MINOR,
             DPS_VERSION_PATCH);
    CHECK_STR(dps_version(), version);
}

/* ======================================================================================== */
/* Registrations through hooks written here (needs a running emulator)                       */
/* ======================================================================================== */

/* A blocking connect, then a non-blocking socket that gives the library one byte per recv
 * and at most 7 bytes per send, refusing every other send: every packet and TLS record
 * arrives split at every byte boundary and leaves in pieces. */
typedef struct trickle {
    int fd;
    int send_blocked; /* the last send was refused: the library holds bytes to send */
    int connects, closes, failed_connects;
    long sends, recvs, refused_sends;
    uint64_t clock_calls;
} trickle;

static int trickle_connect(void *user, const char *host, uint16_t port) {
    trickle *t = (trickle *)user;
    struct addrinfo hints, *list = NULL, *ai;
    char service[8];

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof service, "%u", (unsigned)port);
    CHECK(t->fd < 0); /* the library closes before it connects again */
    if (getaddrinfo(host, service, &hints, &list) != 0) {
        t->failed_connects++;
        return -1;
    }
    for (ai = list; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK) == 0) {
            t->fd = fd;
            break;
        }
        close(fd);
    }
    freeaddrinfo(list);
    if (t->fd < 0) {
        t->failed_connects++;
        return -1;
    }
    t->connects++;
    return 0;
}

static ptrdiff_t trickle_send(void *user, const uint8_t *buf, size_t len) {
    trickle *t = (trickle *)user;
    ssize_t n;

    CHECK(t->fd >= 0 && buf != NULL && len > 0);
    t->send_blocked = 1;
    if (t->sends++ % 2 == 1) {
        t->refused_sends++;
        return DPS_IO_WOULD_BLOCK;
    }
    n = send(t->fd, buf, len < 7 ? len : 7, 0);
    if (n >= 0) {
        t->send_blocked = 0;
        return (ptrdiff_t)n;
    }
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? DPS_IO_WOULD_BLOCK : DPS_IO_ERROR;
}

static ptrdiff_t trickle_recv(void *user, uint8_t *buf, size_t len) {
    trickle *t = (trickle *)user;
    ssize_t n;

    CHECK(t->fd >= 0 && buf != NULL && len > 0);
    t->recvs++;
    n = recv(t->fd, buf, 1, 0);
    if (n >= 0) {
        return (ptrdiff_t)n;
    }
    if (errno == ECONNRESET) {
        return 0;
    }
    return (errno == EAGAIN || errno == EWOULDBLOCK) ? DPS_IO_WOULD_BLOCK : DPS_IO_ERROR;
}

static void trickle_close(void *user) {
    trickle *t = (trickle *)user;
    CHECK(t->fd >= 0); /* called once per successful connect, never twice */
    if (t->fd >= 0) {
        close(t->fd);
    }
    t->fd = -1;
    t->send_blocked = 0;
    t->closes++;
}

static void trickle_wait(void *user, uint32_t timeout_ms, bool want_write) {
    trickle *t = (trickle *)user;
    struct pollfd p;
    p.fd = t->fd;
    p.events = (short)(POLLIN | ((want_write || t->send_blocked) ? POLLOUT : 0));
    p.revents = 0;
    (void)poll(&p, t->fd >= 0 ? 1 : 0, timeout_ms > 60000 ? 60000 : (int)timeout_ms);
}

static uint64_t clock_now_ms(void *user) {
    struct timespec ts;
    ((trickle *)user)->clock_calls++;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t clock_unix_seconds(void *user) {
    ((trickle *)user)->clock_calls++;
    return (uint64_t)time(NULL);
}

/* What the callbacks saw. */
typedef struct observer {
    dps_client *client; /* set once created, for the re-entrancy checks */
    const char *secret; /* must never reach a callback */
    int log_lines, statuses, reentrant_calls_refused, assigned_seen;
    dps_status last_status;
} observer;

static void on_log(void *user, dps_log_level level, const char *message) {
    observer *o = (observer *)user;
    CHECK(level >= DPS_LOG_ERROR && level <= DPS_LOG_DEBUG);
    CHECK(message != NULL);
    if (message != NULL) {
        CHECK(strstr(message, o->secret) == NULL);
        CHECK(strstr(message, "SharedAccessSignature") == NULL);
        CHECK(strstr(message, "sig=") == NULL);
    }
    o->log_lines++;
    if (getenv("API_TEST_VERBOSE") != NULL) {
        fprintf(stderr, "api_test: log %d: %s\n", (int)level, message);
    }
}

static void on_status(void *user, dps_status status) {
    observer *o = (observer *)user;
    o->statuses++;
    o->last_status = status;
    if (status == DPS_STATUS_ASSIGNED) {
        o->assigned_seen++;
    }
    if (o->client != NULL) {
        uint32_t next = 0;
        /* Driving the client from its own callback is refused; reading it is allowed. */
        CHECK(dps_client_do_work(o->client, &next) == DPS_ERR_INVALID_STATE);
        CHECK(dps_client_register(o->client) == DPS_ERR_INVALID_STATE);
        (void)dps_client_http_status(o->client);
        (void)dps_client_registration_status(o->client);
        o->reentrant_calls_refused++;
    }
}

typedef struct endpoint {
    const char *host;
    uint16_t port;
    char *ca_pem;
    size_t ca_len;
} endpoint;

static dps_config *registration_config(const endpoint *ep, const char *registration_id,
                                       const char *key, int group, trickle *t, observer *o) {
    dps_config *cfg = dps_config_new();
    dps_clock clock;

    memset(&clock, 0, sizeof clock);
    clock.user = t;
    clock.now_ms = clock_now_ms;
    clock.unix_seconds = clock_unix_seconds;
    CHECK(dps_config_set_id_scope(cfg, SCOPE) == DPS_OK);
    CHECK(dps_config_set_registration_id(cfg, registration_id) == DPS_OK);
    CHECK((group ? dps_config_set_group_key(cfg, key) : dps_config_set_symmetric_key(cfg, key)) ==
          DPS_OK);
    CHECK(dps_config_set_endpoint(cfg, ep->host, ep->port) == DPS_OK);
    CHECK(dps_config_add_trust_anchors_pem(cfg, (const uint8_t *)ep->ca_pem, ep->ca_len, false) ==
          DPS_OK);
    CHECK(dps_config_set_timeout_ms(cfg, 60000) == DPS_OK);
    CHECK(dps_config_set_clock(cfg, &clock) == DPS_OK);
    CHECK(dps_config_set_log_callback(cfg, on_log, o, DPS_LOG_DEBUG) == DPS_OK);
    CHECK(dps_config_set_status_callback(cfg, on_status, o) == DPS_OK);
    return cfg;
}

static dps_transport trickle_hooks(trickle *t, int with_wait) {
    dps_transport hooks;
    memset(&hooks, 0, sizeof hooks);
    hooks.user = t;
    hooks.connect = trickle_connect;
    hooks.send = trickle_send;
    hooks.recv = trickle_recv;
    hooks.close = trickle_close;
    hooks.wait = with_wait ? trickle_wait : NULL;
    return hooks;
}

/* A firmware-style main loop: do the work possible now, then sleep until the socket is
 * readable or the library's timer is due. */
static dps_result drive_with_do_work(dps_client *client, trickle *t) {
    for (;;) {
        uint32_t next = 0;
        dps_result r = dps_client_do_work(client, &next);
        if (r != DPS_PENDING) {
            return r;
        }
        CHECK(dps_client_last_result(client) == DPS_PENDING);
        trickle_wait(t, next, false);
    }
}

static void register_with_do_work(const endpoint *ep) {
    trickle t;
    observer o;
    dps_transport hooks;
    dps_config *cfg;
    dps_client *client = NULL;
    dps_result r;

    memset(&t, 0, sizeof t);
    t.fd = -1;
    memset(&o, 0, sizeof o);
    o.secret = DEVICE_KEY;
    hooks = trickle_hooks(&t, 0);
    cfg = registration_config(ep, "api-device", DEVICE_KEY, 0, &t, &o);
    CHECK(dps_config_set_payload_json(cfg, "{\"modelId\":\"dtmi:example:api;1\"}") == DPS_OK);
    CHECK(dps_client_new(cfg, &hooks, &client) == DPS_OK);
    /* The client copied everything it needs; the config may go right away. */
    dps_config_free(cfg);
    if (client == NULL) {
        return;
    }
    o.client = client;

    r = drive_with_do_work(client, &t);
    CHECK_RESULT(client, r, "DPS_OK");
    CHECK(dps_client_last_result(client) == DPS_OK);
    CHECK_STR(dps_client_assigned_hub(client), "api-hub.azure-devices.net");
    CHECK_STR(dps_client_device_id(client), "api-device");
    CHECK_STR(dps_client_substatus(client), "initialAssignment");
    CHECK_STR(dps_client_registration_status(client), "assigned");
    CHECK_STR(dps_client_payload_json(client), "{\"from\":\"service\"}");
    CHECK(dps_client_operation_id(client) != NULL);
    CHECK(dps_client_http_status(client) == 200);
    CHECK(dps_client_error_code(client) == 0);
    CHECK(dps_client_error_message(client) == NULL);
    CHECK(o.assigned_seen == 1 && o.last_status == DPS_STATUS_ASSIGNED);
    CHECK(o.log_lines > 0);
    CHECK(o.reentrant_calls_refused == o.statuses && o.statuses >= 3);
    CHECK(t.connects == 1);
    CHECK(t.refused_sends > 0 && t.recvs > 1000); /* the handshake really came byte by byte */
    CHECK(t.clock_calls > 0);

    /* Calling again after an attempt ended starts a new one on the same handle, here with the
     * blocking call and no wait hook (the library sleeps in short steps). */
    r = dps_client_register(client);
    CHECK_RESULT(client, r, "DPS_OK");
    CHECK_STR(dps_client_assigned_hub(client), "api-hub.azure-devices.net");
    CHECK(o.assigned_seen == 2);
    CHECK(t.connects == 2);

    dps_client_free(client);
    CHECK(t.closes == t.connects && t.fd < 0);
}

static void register_group_member(const endpoint *ep) {
    trickle t;
    observer o;
    dps_transport hooks;
    dps_config *cfg;
    dps_client *client = NULL;
    char device_key[64];
    dps_result r;

    memset(&t, 0, sizeof t);
    t.fd = -1;
    memset(&o, 0, sizeof o);
    CHECK(dps_derive_group_key(GROUP_KEY, "api-member-7", device_key, sizeof device_key, NULL) ==
          DPS_OK);
    o.secret = device_key; /* the derived key must not leak either */
    hooks = trickle_hooks(&t, 1);
    cfg = registration_config(ep, "api-member-7", GROUP_KEY, 1, &t, &o);
    CHECK(dps_client_new(cfg, &hooks, &client) == DPS_OK);
    dps_config_free(cfg);
    if (client == NULL) {
        return;
    }
    r = dps_client_register(client);
    CHECK_RESULT(client, r, "DPS_OK");
    CHECK_STR(dps_client_assigned_hub(client), "api-group-hub.azure-devices.net");
    CHECK_STR(dps_client_device_id(client), "api-member-7");
    CHECK(dps_client_payload_json(client) == NULL);
    dps_client_free(client);
    CHECK(t.closes == t.connects && t.connects == 1);
}

static void registration_failures(const endpoint *ep) {
    trickle t;
    observer o;
    dps_transport hooks;
    dps_config *cfg;
    dps_client *client = NULL;
    dps_result r;

    memset(&t, 0, sizeof t);
    t.fd = -1;
    memset(&o, 0, sizeof o);
    o.secret = FAILED_KEY;
    hooks = trickle_hooks(&t, 1);
    cfg = registration_config(ep, "api-failed", FAILED_KEY, 0, &t, &o);
    CHECK(dps_client_new(cfg, &hooks, &client) == DPS_OK);
    dps_config_free(cfg);
    if (client != NULL) {
        r = dps_client_register(client);
        CHECK_RESULT(client, r, "DPS_ERR_REGISTRATION_FAILED");
        CHECK(dps_client_last_result(client) == DPS_ERR_REGISTRATION_FAILED);
        CHECK_STR(dps_client_registration_status(client), "failed");
        CHECK(dps_client_error_code(client) == 400209);
        CHECK(dps_client_error_message(client) != NULL &&
              strstr(dps_client_error_message(client), "allocation failed") != NULL);
        CHECK(dps_client_result_detail(client) != NULL);
        CHECK(dps_client_assigned_hub(client) == NULL);
        CHECK(o.last_status == DPS_STATUS_FAILED);
        dps_client_free(client);
    }

    /* The wrong key: the service answers 401 and hangs up. */
    client = NULL;
    memset(&o, 0, sizeof o);
    o.secret = KEY;
    cfg = registration_config(ep, "api-device", KEY, 0, &t, &o);
    CHECK(dps_client_new(cfg, &hooks, &client) == DPS_OK);
    dps_config_free(cfg);
    if (client != NULL) {
        r = dps_client_register(client);
        CHECK(dps_result_class(r) == DPS_CLASS_AUTH);
        CHECK(!dps_result_is_retryable(r));
        CHECK(dps_client_error_code(client) == 401002);
        CHECK(dps_client_http_status(client) == 401);
        CHECK(dps_client_tracking_id(client) != NULL);
        dps_client_free(client);
    }

    /* The emulator's CA replaced by another one: the server is no longer trusted. */
    client = NULL;
    memset(&o, 0, sizeof o);
    o.secret = DEVICE_KEY;
    cfg = registration_config(ep, "api-device", DEVICE_KEY, 0, &t, &o);
    CHECK(dps_config_set_trust_anchors_pem(cfg, (const uint8_t *)DEVICE_CERT_PEM,
                                           strlen(DEVICE_CERT_PEM), false) == DPS_OK);
    CHECK(dps_client_new(cfg, &hooks, &client) == DPS_OK);
    dps_config_free(cfg);
    if (client != NULL) {
        r = dps_client_register(client);
        CHECK_RESULT(client, r, "DPS_ERR_TLS_CERT_UNTRUSTED");
        dps_client_free(client);
    }
    CHECK(t.closes == t.connects && t.fd < 0);
}

/* ======================================================================================== */
/* External signing (HSM), certificate issuance, stored assignments                         */
/* ======================================================================================== */

/* A dependency-free SHA-256 and HMAC (FIPS 180-4, RFC 2104): the "HSM" of these tests holds
 * the device key and signs in C, so the library never sees the key. */
typedef struct sha256 {
    uint32_t h[8];
    uint8_t block[64];
    size_t used;
    uint64_t bits;
} sha256;

static uint32_t ror32(uint32_t x, unsigned n) {
    return (x >> n) | (x << (32u - n));
}

static void sha256_block(sha256 *s, const uint8_t *p) {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    uint32_t w[64], v[8], t1, t2;
    int i;
    for (i = 0; i < 16; i++) {
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    }
    for (i = 16; i < 64; i++) {
        w[i] = w[i - 16] + (ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3)) +
               w[i - 7] + (ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10));
    }
    memcpy(v, s->h, sizeof v);
    for (i = 0; i < 64; i++) {
        t1 = v[7] + (ror32(v[4], 6) ^ ror32(v[4], 11) ^ ror32(v[4], 25)) +
             ((v[4] & v[5]) ^ (~v[4] & v[6])) + k[i] + w[i];
        t2 = (ror32(v[0], 2) ^ ror32(v[0], 13) ^ ror32(v[0], 22)) +
             ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof v[0]);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (i = 0; i < 8; i++) {
        s->h[i] += v[i];
    }
}

static void sha256_init(sha256 *s) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memset(s, 0, sizeof *s);
    memcpy(s->h, iv, sizeof iv);
}

static void sha256_update(sha256 *s, const uint8_t *p, size_t n) {
    while (n-- > 0) {
        s->block[s->used++] = *p++;
        s->bits += 8;
        if (s->used == 64) {
            sha256_block(s, s->block);
            s->used = 0;
        }
    }
}

static void sha256_final(sha256 *s, uint8_t out[32]) {
    uint64_t bits = s->bits;
    uint8_t pad = 0x80, len[8];
    int i;
    sha256_update(s, &pad, 1);
    pad = 0;
    while (s->used != 56) {
        sha256_update(s, &pad, 1);
    }
    for (i = 0; i < 8; i++) {
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    }
    sha256_update(s, len, 8);
    for (i = 0; i < 32; i++) {
        out[i] = (uint8_t)(s->h[i / 4] >> (24 - 8 * (i % 4)));
    }
}

static void hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                        uint8_t out[32]) {
    uint8_t pad[64], inner[32];
    sha256 s;
    size_t i;
    for (i = 0; i < 64; i++) { /* keys here are at most 64 bytes */
        pad[i] = (uint8_t)((i < key_len ? key[i] : 0) ^ 0x36);
    }
    sha256_init(&s);
    sha256_update(&s, pad, 64);
    sha256_update(&s, msg, len);
    sha256_final(&s, inner);
    for (i = 0; i < 64; i++) {
        pad[i] ^= 0x36 ^ 0x5c;
    }
    sha256_init(&s);
    sha256_update(&s, pad, 64);
    sha256_update(&s, inner, 32);
    sha256_final(&s, out);
}

/* The key of api_enrollments.json's "api-hsm-device": the bytes 0..31, base64
 * "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=". Only the "HSM" below holds it. */
typedef struct hsm {
    uint8_t key[32];
    int32_t fail_with; /* non-zero: refuse to sign */
    int calls;
    int reentrant_calls_refused;
    dps_client *client;
    char last_data[256];
} hsm;

static int32_t hsm_sign(void *user, const uint8_t *data, size_t data_len, uint8_t *signature,
                        size_t signature_len) {
    hsm *h = (hsm *)user;
    h->calls++;
    CHECK(signature_len == 32 && data != NULL && signature != NULL);
    if (data_len < sizeof h->last_data) {
        memcpy(h->last_data, data, data_len);
        h->last_data[data_len] = '\0';
    }
    if (h->client != NULL) {
        /* Mid-step: the client can be neither driven nor read from here. */
        CHECK(dps_client_do_work(h->client, NULL) == DPS_ERR_INVALID_STATE);
        CHECK(dps_client_last_result(h->client) == DPS_ERR_INVALID_STATE);
        {
            size_t written = 0;
            CHECK(dps_client_assignment_save(h->client, NULL, 0, &written) ==
                  DPS_ERR_INVALID_STATE);
        }
        h->reentrant_calls_refused++;
    }
    if (h->fail_with != 0 || signature_len != 32) {
        return h->fail_with;
    }
    hmac_sha256(h->key, sizeof h->key, data, data_len, signature);
    return 0;
}

static void hmac_vectors(void) {
    /* RFC 4231 test case 2. */
    static const uint8_t want[32] = {0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e,
                                     0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
                                     0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83,
                                     0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43};
    const char *msg = "what do ya want for nothing?";
    uint8_t mac[32];
    hmac_sha256((const uint8_t *)"Jefe", 4, (const uint8_t *)msg, strlen(msg), mac);
    CHECK(memcmp(mac, want, sizeof mac) == 0);
}

/* Save the assignment as firmware would (to flash), then decide at the "next boot". */
static void check_assignment_blob(dps_client *client) {
    uint8_t blob[DPS_ASSIGNMENT_MAX_LEN];
    size_t needed = 0, written = 0;
    dps_assignment *a = NULL;
    time_t now = time(NULL);

    CHECK(dps_client_assignment_save(client, NULL, 0, &needed) ==
          DPS_ERR_INVALID_BUFFER_TOO_SMALL);
    CHECK(needed > 20 && needed <= sizeof blob);
    memset(blob, 0xAA, sizeof blob);
    CHECK(dps_client_assignment_save(client, blob, needed - 1, &written) ==
          DPS_ERR_INVALID_BUFFER_TOO_SMALL);
    CHECK(written == needed && blob[0] == 0xAA);
    CHECK(dps_client_assignment_save(client, blob, sizeof blob, &written) == DPS_OK);
    CHECK(written == needed);

    CHECK(dps_assignment_parse(blob, written, &a) == DPS_OK);
    if (a != NULL) {
        CHECK_STR(dps_assignment_assigned_hub(a), "api-hub.azure-devices.net");
        CHECK_STR(dps_assignment_device_id(a), "api-hsm-device");
        CHECK(dps_assignment_etag(a) != NULL && dps_client_etag(client) != NULL &&
              strcmp(dps_assignment_etag(a), dps_client_etag(client)) == 0);
        /* The record's times, as the service sent them. */
        CHECK(dps_client_created_date_time_utc(client) != NULL &&
              dps_client_last_updated_date_time_utc(client) != NULL);
        CHECK(dps_assignment_assigned_at_unix(a) + 60 >= (uint64_t)now &&
              dps_assignment_assigned_at_unix(a) <= (uint64_t)now + 60);
        dps_assignment_free(a);
    }
    /* Keep the stored hub unless it rejected the device. */
    CHECK(!dps_should_provision(blob, written, DPS_HUB_NOT_TRIED));
    CHECK(!dps_should_provision(blob, written, DPS_HUB_CONNECTED));
    CHECK(!dps_should_provision(blob, written, DPS_HUB_UNREACHABLE));
    CHECK(dps_should_provision(blob, written, DPS_HUB_REJECTED_DEVICE));
    CHECK(!dps_should_provision(blob, written, 99)); /* unknown: keep */
    CHECK(dps_should_provision(blob, written - 1, DPS_HUB_NOT_TRIED)); /* truncated */
    blob[written / 2] ^= 0x10;                                        /* a worn flash bit */
    CHECK(dps_should_provision(blob, written, DPS_HUB_CONNECTED));
    a = NULL;
    CHECK(dps_assignment_parse(blob, written, &a) == DPS_ERR_INVALID_ASSIGNMENT && a == NULL);
}

static void register_with_hsm(const endpoint *ep) {
    trickle t;
    observer o;
    hsm h;
    dps_transport hooks;
    dps_config *cfg;
    dps_client *client = NULL;
    dps_result r;
    int i;

    memset(&t, 0, sizeof t);
    t.fd = -1;
    memset(&o, 0, sizeof o);
    o.secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    memset(&h, 0, sizeof h);
    for (i = 0; i < 32; i++) {
        h.key[i] = (uint8_t)i;
    }
    hooks = trickle_hooks(&t, 1);
    /* A wrong key first: the signing callback replaces it. */
    cfg = registration_config(ep, "api-hsm-device", KEY, 0, &t, &o);
    CHECK(dps_config_set_signing_callback(cfg, hsm_sign, &h) == DPS_OK);
    CHECK(dps_client_new(cfg, &hooks, &client) == DPS_OK);
    dps_config_free(cfg);
    if (client == NULL) {
        return;
    }
    h.client = client;
    r = dps_client_register(client);
    CHECK_RESULT(client, r, "DPS_OK");
    CHECK_STR(dps_client_assigned_hub(client), "api-hub.azure-devices.net");
    CHECK(h.calls == 1 && h.reentrant_calls_refused == 1);
    CHECK(strncmp(h.last_data, "0ne00000001%2fregistrations%2fapi-hsm-device\n", 45) == 0);
    check_assignment_blob(client);

    /* The HSM fails: an auth-class error at once, the callback asked once, no retries. */
    h.fail_with = -5;
    h.calls = 0;
    r = dps_client_register(client);
    CHECK_RESULT(client, r, "DPS_ERR_AUTH_SIGNING_FAILED");
    CHECK(dps_result_class(r) == DPS_CLASS_AUTH && !dps_result_is_retryable(r));
    CHECK(h.calls == 1);
    h.client = NULL;
    dps_client_free(client);
    CHECK(t.closes == t.connects && t.fd < 0);
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    char *buf = (char *)malloc(1 << 20);
    size_t n = 0;
    if (f != NULL && buf != NULL) {
        n = fread(buf, 1, (1 << 20) - 1, f);
    }
    if (f != NULL) {
        fclose(f);
    }
    if (f == NULL || n == 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

int main(int argc, char **argv) {
    endpoint ep;
    const char *ca_file = NULL;
    int i;

    memset(&ep, 0, sizeof ep);
    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--host") == 0) {
            ep.host = argv[i + 1];
        } else if (strcmp(argv[i], "--port") == 0) {
            ep.port = (uint16_t)atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--ca-file") == 0) {
            ca_file = argv[i + 1];
        }
    }

    null_arguments();
    invalid_values();
    client_certificates();
    result_codes();
    helpers();
    hmac_vectors();
    if (ep.host != NULL) {
        ep.ca_pem = ca_file != NULL ? read_file(ca_file, &ep.ca_len) : NULL;
        CHECK(ep.port != 0 && ep.ca_pem != NULL);
        if (ep.port != 0 && ep.ca_pem != NULL) {
            register_with_do_work(&ep);
            register_group_member(&ep);
            registration_failures(&ep);
            register_with_hsm(&ep);
        }
        free(ep.ca_pem);
    }
    if (failures != 0) {
        fprintf(stderr, "api_test: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("api_test: %d checks passed%s\n", checks,
           ep.host != NULL ? " (with registrations against the emulator)" : "");
    return 0;
}
