/*
 * cli_common: what dps_register and dps_register_offload share, so that their command-line
 * contract cannot drift apart: reading the options of the generated table (cli_options.h),
 * the JSON object on stdout with its exit codes, the usage handling, and the --verbose log
 * and status callbacks.
 *
 * The transport hooks are not here on purpose: each program's hooks are the part a firmware
 * author copies, and they read best whole, in one file.
 */
#ifndef DPS_CLI_COMMON_H
#define DPS_CLI_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "cli_options.h"
#include "dps_mqtt.h"

/* The options given on the command line: value[id] is the text that followed the flag ("1"
 * for a switch), NULL when the flag was not given. The flags, their kinds and the programs
 * that take them are the generated table of cli_options.h. */
typedef struct cli_options {
    const char *value[CLI_OPTION_COUNT];
    char error[192]; /* what cli_parse_args refused, when it names the argument */
} cli_options;

/* Reads argv into `o` for `program` (a CLI_PROGRAM_* bit): every flag of the table that the
 * program takes, numbers checked against their C type only (the setters decide what is
 * valid). Returns NULL, or what is wrong (e.g. "unknown option --regstration-id (did you
 * mean --registration-id?) (see --help)"). After --help, parsing stops with NULL. */
const char *cli_parse_args(cli_options *o, int argc, char **argv, unsigned program);

/* Parses a decimal integer in [min, max]; 0 on success. */
int cli_parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out);

/* --port, when given (cli_parse_args has checked it fits a uint16_t; 0 is the setter's to
 * refuse). Without it the port is the library's default, which follows --websocket. */
uint16_t cli_port(const cli_options *o);

/* --host, or the default host (for dps_config_set_endpoint, which takes both). */
const char *cli_host(const cli_options *o);

/* --timeout in milliseconds (cli_parse_args has checked it fits a uint32_t), or the library's
 * default when not given. */
uint32_t cli_timeout_ms(const cli_options *o);

/* The usage messages of both programs. */
#define CLI_CERT_AND_KEY "--cert and --key go together"
#define CLI_ONE_CREDENTIAL "give exactly one of --symmetric-key, --group-key and --cert/--key"

/* Writes the failure message of a refused option into `buf` and returns it: "--flag: reason",
 * with the library's reason (its log callback's last error) when it gave one, else
 * dps_result_str(r). */
const char *cli_refused(char *buf, size_t buf_len, const char *flag, dps_result r,
                        const char *reason);

/* What the log callback knows: the program name for its lines, whether to print, and the last
 * error, which explains a configuration that dps_client_new refused (e.g. a registration id
 * that is not the certificate's CN). */
typedef struct cli_log_state {
    const char *program;
    int verbose;
    char last_error[512];
} cli_log_state;

/* --help prints the usage on stdout and gives 0; a usage error prints it on stderr after the
 * error and gives the failure object's exit code; otherwise returns -1: go on. */
int cli_handle_usage(const char *program, const char *usage_text, int help,
                     const char *usage_error);

/* Prints the failure object and returns the exit code: the result's name, the message (or
 * dps_result_str), and dps_result_hint, what to do about it. `client` may be NULL (nothing
 * was dialled); otherwise the service's errorCode and trackingId are added when it sent them.
 * With a `log` in verbose mode, the error and its hint go to stderr too. */
int cli_report_failure(dps_result r, const char *message, const dps_client *client,
                       const cli_log_state *log);

/* Prints the success object. The payload is the JSON text the service returned, as is.
 * With `with_csr` it also carries "issuedCertificateChain": the PEM text, or null. */
void cli_report_success(const dps_client *client, int with_csr);

/* Log callback; `user` is a cli_log_state. The library promises never to pass a key or a token
 * to it, nor to cli_on_status. */
void cli_on_log(void *user, dps_log_level level, const char *message);

/* Status callback (--verbose); `user` is a cli_log_state. */
void cli_on_status(void *user, dps_status status);

#endif
