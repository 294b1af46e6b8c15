/* What the provisioning image is built with. Every value can be overridden with -D; the QEMU
 * test reads the quoted ones from this file to create the matching enrollment. The key is a
 * test key for the local emulator only (base64 of SHA-256 of the registration id), never a
 * real credential: a product keeps its key in protected storage, or signs with a secure
 * element through dps_config_set_signing_callback. */
#ifndef FW_DEVICE_CONFIG_H
#define FW_DEVICE_CONFIG_H

#ifndef FW_ID_SCOPE
#define FW_ID_SCOPE "0ne00000001"
#endif
#ifndef FW_REGISTRATION_ID
#define FW_REGISTRATION_ID "fw-qemu-device"
#endif
#ifndef FW_SYMMETRIC_KEY
#define FW_SYMMETRIC_KEY "2OA1/um7mMUFumeB0gA3+DO9C9P9OdaIvSvCQzqaCYU="
#endif
/* The name the modem dials and checks the certificate against; the bridge's --route sends it
 * to the emulator's port on loopback. */
#ifndef FW_DPS_HOST
#define FW_DPS_HOST "localhost"
#endif
#ifndef FW_DPS_PORT
#define FW_DPS_PORT 8883
#endif

/* The heap the library gets: a static array (in .bss), first-fit. */
#ifndef FW_ARENA_SIZE
#define FW_ARENA_SIZE (32u * 1024u)
#endif
/* dps_allocator.reserve: kept aside during a registration so that running out of memory ends
 * it with DPS_ERR_OUT_OF_MEMORY instead of failing half-way. */
#ifndef FW_HEAP_RESERVE
#define FW_HEAP_RESERVE 2048u
#endif
/* The most verbose library log level printed over semihosting (1 errors ... 4 debug). */
#ifndef FW_LOG_LEVEL
#define FW_LOG_LEVEL 3
#endif
/* One registration attempt's deadline. */
#ifndef FW_TIMEOUT_MS
#define FW_TIMEOUT_MS 30000u
#endif

#endif
