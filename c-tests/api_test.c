/*
 * C API contract tests: NULL for every pointer argument, _free(NULL), result names and
 * classes for every code and for unknown values, buffer-size handling of the helpers.
 * Exits non-zero on the first failed check.
 */
#include <stdio.h>
#include <string.h>

#include "dps_mqtt.h"

static int failures = 0;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                               \
        }                                                                             \
    } while (0)

static const char *KEY = "O+H9VTcdJP0Tqkl7bh4nVG0OJNrAataMpuWB54D0VEc=";

static void null_arguments(void) {
    dps_config *cfg = dps_config_new();
    dps_client *client = NULL;
    uint32_t next = 0;
    char buf[256];
    size_t written = 0;

    CHECK(cfg != NULL);
    CHECK(dps_config_set_id_scope(NULL, "0ne1") == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_id_scope(cfg, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_registration_id(NULL, "dev") == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_registration_id(cfg, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_symmetric_key(cfg, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_group_key(NULL, KEY) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_endpoint(cfg, NULL, 8883) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_add_trust_anchors_pem(cfg, NULL, 10, true) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_add_trust_anchors_pem(NULL, (const uint8_t *)"x", 1, true) ==
          DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_payload_json(NULL, "{}") == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_payload_json(cfg, NULL) == DPS_OK);
    CHECK(dps_config_set_api_version(cfg, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_timeout_ms(NULL, 1000) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_clock(cfg, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_log_callback(NULL, NULL, NULL, 1) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_config_set_status_callback(NULL, NULL, NULL) == DPS_ERR_INVALID_NULL_POINTER);

    CHECK(dps_client_new(NULL, NULL, &client) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_client_new(cfg, NULL, NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(client == NULL);
    CHECK(dps_client_do_work(NULL, &next) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_client_register(NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_client_last_result(NULL) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_client_assigned_hub(NULL) == NULL);
    CHECK(dps_client_device_id(NULL) == NULL);
    CHECK(dps_client_payload_json(NULL) == NULL);
    CHECK(dps_client_error_code(NULL) == 0);
    CHECK(dps_client_http_status(NULL) == 0);
    CHECK(dps_client_retry_after_ms(NULL) == -1);

    CHECK(dps_derive_group_key(NULL, "dev", buf, sizeof buf, &written) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_derive_group_key(KEY, "dev", NULL, sizeof buf, &written) == DPS_ERR_INVALID_NULL_POINTER);
    CHECK(dps_sas_token("0ne1", NULL, KEY, 1, buf, sizeof buf, NULL) == DPS_ERR_INVALID_NULL_POINTER);

    dps_client_free(NULL);
    dps_config_free(NULL);
    dps_config_free(cfg);
}

static void invalid_values(void) {
    dps_config *cfg = dps_config_new();
    dps_client *client = NULL;

    CHECK(dps_config_set_id_scope(cfg, "") == DPS_ERR_INVALID_ID_SCOPE);
    CHECK(dps_config_set_registration_id(cfg, "bad id!") == DPS_ERR_INVALID_REGISTRATION_ID);
    CHECK(dps_config_set_symmetric_key(cfg, "not base64!") == DPS_ERR_INVALID_KEY);
    CHECK(dps_config_set_payload_json(cfg, "{not json") == DPS_ERR_INVALID_PAYLOAD);
    CHECK(dps_config_set_endpoint(cfg, "host", 0) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_timeout_ms(cfg, 0) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_set_log_callback(cfg, NULL, NULL, 99) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_config_add_trust_anchors_pem(cfg, (const uint8_t *)"junk", 4, false) ==
          DPS_ERR_INVALID_CERTIFICATE);
    /* Incomplete configuration: reported when the client is created, nothing dialled. */
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_ERR_INVALID_CONFIG);
    CHECK(client == NULL);
    CHECK(dps_config_set_id_scope(cfg, "0ne00000001") == DPS_OK);
    CHECK(dps_config_set_registration_id(cfg, "dev-1") == DPS_OK);
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_ERR_INVALID_CONFIG);
    CHECK(dps_config_set_symmetric_key(cfg, KEY) == DPS_OK);
    {
        dps_transport incomplete;
        memset(&incomplete, 0, sizeof incomplete);
        CHECK(dps_client_new(cfg, &incomplete, &client) == DPS_ERR_INVALID_NULL_POINTER);
    }
    CHECK(dps_client_new(cfg, NULL, &client) == DPS_OK);
    CHECK(client != NULL);
    CHECK(dps_client_last_result(client) == DPS_ERR_INVALID_STATE);
    CHECK(dps_client_assigned_hub(client) == NULL);
    dps_client_free(client);
    dps_config_free(cfg);
}

static void result_codes(void) {
    unsigned v;
    int named = 0;
    for (v = 0; v < 1000; v++) {
        const char *name = dps_result_name(v);
        const char *text = dps_result_str(v);
        CHECK(name != NULL && text != NULL);
        if (strcmp(name, "DPS_ERR_UNKNOWN") != 0) {
            named++;
            CHECK(strcmp(text, "unknown result code") != 0);
        } else {
            CHECK(dps_result_class(v) == DPS_CLASS_INTERNAL);
            CHECK(!dps_result_is_retryable(v));
        }
    }
    CHECK(named > 30);
    CHECK(strcmp(dps_result_name(DPS_ERR_TIMEOUT), "DPS_ERR_TIMEOUT") == 0);
    CHECK(dps_result_class(DPS_ERR_AUTH_UNAUTHORIZED) == DPS_CLASS_AUTH);
    CHECK(dps_result_class(DPS_ERR_TLS_CERT_UNTRUSTED) == DPS_CLASS_TLS);
    CHECK(dps_result_class(DPS_ERR_REGISTRATION_DISABLED) == DPS_CLASS_REGISTRATION);
    CHECK(dps_result_is_retryable(DPS_ERR_TRANSPORT_CLOSED));
    CHECK(!dps_result_is_retryable(DPS_ERR_AUTH_UNAUTHORIZED));
    CHECK(strcmp(dps_result_name(0xFFFFFFFFu), "DPS_ERR_UNKNOWN") == 0);
}

static void helpers(void) {
    char buf[512];
    size_t written = 0;
    CHECK(dps_derive_group_key("8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
                               "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6", buf, sizeof buf, &written) == DPS_OK);
    CHECK(strcmp(buf, "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=") == 0);
    CHECK(written == strlen(buf));
    CHECK(dps_derive_group_key(KEY, "dev", buf, 10, &written) == DPS_ERR_INVALID_ARGUMENT);
    CHECK(dps_sas_token("0ne000EEBBD", "FirstDevice", KEY, 1591921306, buf, sizeof buf, &written) == DPS_OK);
    CHECK(strcmp(buf, "SharedAccessSignature sr=0ne000EEBBD%2fregistrations%2fFirstDevice"
                      "&sig=hwgBlMB6G2Zg5ZcYtwmtLVKRbifiSCPfUMyscbVWa8o%3D&se=1591921306&skn=registration") == 0);
    CHECK(strcmp(dps_version(), "0.1.0") == 0);
}

int main(void) {
    null_arguments();
    invalid_values();
    result_codes();
    helpers();
    if (failures != 0) {
        fprintf(stderr, "api_test: %d check(s) failed\n", failures);
        return 1;
    }
    printf("api_test: all checks passed\n");
    return 0;
}
