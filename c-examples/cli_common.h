/*
 * cli_common: what dps_register and dps_register_offload share, so that their command-line
 * contract cannot drift apart: the options both take, the JSON object on stdout with its exit
 * codes, the usage handling, and the --verbose log and status callbacks.
 *
 * The transport hooks are not here on purpose: each program's hooks are the part a firmware
 * author copies, and they read best whole, in one file.
 */
#ifndef DPS_CLI_COMMON_H
#define DPS_CLI_COMMON_H

#include "dps_mqtt.h"

/* The options both programs take. */
typedef struct cli_options {
    const char *id_scope, *registration_id, *symmetric_key, *group_key;
    const char *cert_file, *key_file;
    const char *host, *ca_file, *payload, *api_version;
    unsigned long port;       /* 0 until cli_finish_options: 8883, or 443 with --websocket */
    unsigned long timeout_ms; /* the whole registration's deadline */
    int verbose, help, websocket;
} cli_options;

/* Sets the defaults: the public DPS host, no port yet, a 90 s deadline. */
void cli_options_init(cli_options *o);

/* Parses argv[*i] if it is one of the shared flags, advancing *i past its value. Returns 1 when
 * it took the flag (and sets *error when the value is wrong or missing), 0 when the flag is the
 * program's own (or unknown). After --help, o->help is set and parsing should stop. */
int cli_parse_flag(cli_options *o, int argc, char **argv, int *i, const char **error);

/* The value of the flag at argv[*i], advancing *i; NULL when it is missing. */
const char *cli_flag_value(int argc, char **argv, int *i);

/* Parses a decimal integer in [min, max]; 0 on success. */
int cli_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* After the last flag: the port's default. */
void cli_finish_options(cli_options *o);

/* The usage messages of both programs. */
#define CLI_MISSING_VALUE "an option is missing its value"
#define CLI_UNKNOWN_OPTION "unknown option (see --help)"
#define CLI_CERT_AND_KEY "--cert and --key go together"
#define CLI_ONE_CREDENTIAL "give exactly one of --symmetric-key, --group-key and --cert/--key"

/* --help prints the usage on stdout and gives 0; a usage error prints it on stderr after the
 * error and gives the failure object's exit code; otherwise returns -1: go on. */
int cli_handle_usage(const char *program, const char *usage_text, int help,
                     const char *usage_error);

/* Prints the failure object and returns the exit code. `client` may be NULL (nothing was
 * dialled); otherwise the service's errorCode and trackingId are added when it sent them. */
int cli_report_failure(dps_result r, const char *message, const dps_client *client);

/* Prints the success object. The payload is the JSON text the service returned, as is.
 * With `with_csr` it also carries "issuedCertificateChain": the PEM text, or null. */
void cli_report_success(const dps_client *client, int with_csr);

/* What the log callback knows: the program name for its lines, whether to print, and the last
 * error, which explains a configuration that dps_client_new refused (e.g. a registration id
 * that is not the certificate's CN). */
typedef struct cli_log_state {
    const char *program;
    int verbose;
    char last_error[512];
} cli_log_state;

/* Log callback; `user` is a cli_log_state. The library promises never to pass a key or a token
 * to it, nor to cli_on_status. */
void cli_on_log(void *user, dps_log_level level, const char *message);

/* Status callback (--verbose); `user` is a cli_log_state. */
void cli_on_status(void *user, dps_status status);

#endif
