/*
 * Test stand-in (see README.md): the FreeRTOS kernel calls and FreeRTOS+TCP socket calls the
 * example uses, with FreeRTOS+TCP's return conventions, over POSIX sockets. Not FreeRTOS, not
 * for firmware.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "FreeRTOS.h"
#include "FreeRTOS_DNS.h"
#include "FreeRTOS_IP.h"
#include "FreeRTOS_Sockets.h"
#include "board_rtc.h"
#include "portable.h"
#include "task.h"

/* ---- kernel ---------------------------------------------------------------------------- */

static uint64_t host_ms(void) {
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

TickType_t xTaskGetTickCount(void) {
    static uint64_t boot_ms;

    if (boot_ms == 0) {
        boot_ms = host_ms();
    }
    return (TickType_t)(configINITIAL_TICK_COUNT + pdMS_TO_TICKS(host_ms() - boot_ms));
}

void vTaskDelay(TickType_t xTicksToDelay) {
    uint64_t ms = (uint64_t)xTicksToDelay * 1000u / configTICK_RATE_HZ;
    struct timespec ts;

    ts.tv_sec = (time_t)(ms / 1000u);
    ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* The host's clock, or DPS_STANDIN_UNIX_TIME when set (0: an RTC that was never set), for the
 * tests of what a wrong wall clock does. */
uint32_t board_rtc_unix_seconds(void) {
    const char *forced = getenv("DPS_STANDIN_UNIX_TIME");
    return forced != NULL ? (uint32_t)strtoul(forced, NULL, 10) : (uint32_t)time(NULL);
}

/* The board's TRNG. */
BaseType_t xApplicationGetRandomNumber(uint32_t *pulNumber) {
    return getentropy(pulNumber, sizeof *pulNumber) == 0 ? pdTRUE : pdFALSE;
}

/* heap_4 guarantees portBYTE_ALIGNMENT (8) and no more: the stand-in hands out blocks that
 * are 8- but never 16-aligned, so an allocator hook that forwards larger alignments to
 * pvPortMalloc fails here as it would on a device. */
void *pvPortMalloc(size_t xWantedSize) {
    uint8_t *block = malloc(xWantedSize + 8u); /* 16-aligned on the host */
    return block == NULL ? NULL : block + 8;
}

void vPortFree(void *pv) {
    if (pv != NULL) {
        free((uint8_t *)pv - 8);
    }
}

/* ---- tasks: host threads on painted stacks ------------------------------------------------- */

#define STACK_PAINT 0xA5u
#define MAX_TASKS 4

struct tskTaskControlBlock {
    pthread_t thread;
    TaskFunction_t code;
    void *parameters;
    uint8_t *stack;
    size_t stack_bytes;
};

static struct tskTaskControlBlock *tasks[MAX_TASKS];
static int task_count;
static pthread_key_t current_task;

static void *task_main(void *arg) {
    struct tskTaskControlBlock *task = arg;

    (void)pthread_setspecific(current_task, task);
    task->code(task->parameters);
    return NULL; /* a FreeRTOS task must not return; the stand-in tolerates it */
}

BaseType_t xTaskCreate(TaskFunction_t pxTaskCode, const char *pcName,
                       configSTACK_DEPTH_TYPE uxStackDepth, void *pvParameters,
                       UBaseType_t uxPriority, TaskHandle_t *pxCreatedTask) {
    struct tskTaskControlBlock *task;
    void *stack = NULL;
    pthread_attr_t attr;
    size_t bytes = (size_t)uxStackDepth * sizeof(StackType_t);

    (void)pcName;
    (void)uxPriority;
    if (task_count == 0 && pthread_key_create(&current_task, NULL) != 0) {
        return pdFAIL;
    }
    if (task_count == MAX_TASKS || bytes < (size_t)PTHREAD_STACK_MIN ||
        (task = calloc(1, sizeof *task)) == NULL) {
        return pdFAIL;
    }
    if (posix_memalign(&stack, 4096, bytes) != 0) {
        free(task);
        return pdFAIL;
    }
    memset(stack, STACK_PAINT, bytes);
    task->code = pxTaskCode;
    task->parameters = pvParameters;
    task->stack = stack;
    task->stack_bytes = bytes;
    if (pthread_attr_init(&attr) != 0 || pthread_attr_setstack(&attr, stack, bytes) != 0 ||
        pthread_create(&task->thread, &attr, task_main, task) != 0) {
        free(stack);
        free(task);
        return pdFAIL;
    }
    (void)pthread_attr_destroy(&attr);
    tasks[task_count++] = task;
    if (pxCreatedTask != NULL) {
        *pxCreatedTask = task;
    }
    return pdPASS;
}

void vTaskStartScheduler(void) {
    int i;

    for (i = 0; i < task_count; i++) {
        (void)pthread_join(tasks[i]->thread, NULL);
        free(tasks[i]->stack);
        free(tasks[i]);
        tasks[i] = NULL;
    }
    task_count = 0;
}

void vTaskDelete(TaskHandle_t xTaskToDelete) {
    if (xTaskToDelete == NULL) {
        pthread_exit(NULL);
    }
}

/* Stacks grow down: the paint left at the low end is what the task never touched. */
UBaseType_t uxTaskGetStackHighWaterMark(TaskHandle_t xTask) {
    const struct tskTaskControlBlock *task =
        xTask != NULL ? xTask : pthread_getspecific(current_task);
    size_t untouched = 0;

    if (task == NULL) {
        return 0;
    }
    while (untouched < task->stack_bytes && task->stack[untouched] == STACK_PAINT) {
        untouched++;
    }
    return (UBaseType_t)(untouched / sizeof(StackType_t));
}

/* ---- sockets --------------------------------------------------------------------------- */

typedef enum { S_CREATED, S_CONNECTING, S_ESTABLISHED, S_CLOSED } tcp_state;

struct xSOCKET {
    int fd;
    tcp_state state;
    TickType_t rcv_timeout, snd_timeout; /* ipconfigSOCK_DEFAULT_*_BLOCK_TIME: portMAX_DELAY */
};

static int poll_ms(TickType_t ticks) {
    if (ticks == portMAX_DELAY) {
        return -1;
    }
    return (int)((uint64_t)ticks * 1000u / configTICK_RATE_HZ);
}

/* Waits up to `ticks` for `events`; 1 when they came. */
static int wait_for(const struct xSOCKET *s, short events, TickType_t ticks) {
    struct pollfd p;

    p.fd = s->fd;
    p.events = events;
    p.revents = 0;
    return poll(&p, 1, poll_ms(ticks)) > 0;
}

/* Moves a connecting socket on: the IP task's job in the real stack. */
static void update_state(struct xSOCKET *s) {
    int err = 0;
    socklen_t len = sizeof err;

    if (s->state != S_CONNECTING || !wait_for(s, POLLOUT, 0)) {
        return;
    }
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        s->state = S_ESTABLISHED;
    } else {
        s->state = S_CLOSED; /* RST or timeout: eCLOSED, and recv gives -ENOTCONN */
    }
}

static int valid(Socket_t s) { return s != NULL && s != FREERTOS_INVALID_SOCKET; }

Socket_t FreeRTOS_socket(BaseType_t xDomain, BaseType_t xType, BaseType_t xProtocol) {
    struct xSOCKET *s;
    int one = 1;

    if (xDomain != FREERTOS_AF_INET || xType != FREERTOS_SOCK_STREAM ||
        xProtocol != FREERTOS_IPPROTO_TCP || (s = calloc(1, sizeof *s)) == NULL) {
        return FREERTOS_INVALID_SOCKET;
    }
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || fcntl(s->fd, F_SETFL, O_NONBLOCK) != 0) {
        if (s->fd >= 0) {
            close(s->fd);
        }
        free(s);
        return FREERTOS_INVALID_SOCKET;
    }
    (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->rcv_timeout = s->snd_timeout = portMAX_DELAY;
    return s;
}

BaseType_t FreeRTOS_setsockopt(Socket_t xSocket, int32_t lLevel, int32_t lOptionName,
                               const void *pvOptionValue, size_t uxOptionLength) {
    (void)lLevel;
    if (!valid(xSocket) || pvOptionValue == NULL || uxOptionLength != sizeof(TickType_t)) {
        return -pdFREERTOS_ERRNO_EINVAL;
    }
    if (lOptionName == FREERTOS_SO_RCVTIMEO) {
        memcpy(&xSocket->rcv_timeout, pvOptionValue, sizeof(TickType_t));
    } else if (lOptionName == FREERTOS_SO_SNDTIMEO) {
        memcpy(&xSocket->snd_timeout, pvOptionValue, sizeof(TickType_t));
    } else {
        return -pdFREERTOS_ERRNO_EINVAL;
    }
    return 0;
}

/* Like FreeRTOS+TCP: with a receive block time of 0, -EWOULDBLOCK while the SYN is out; the
 * outcome shows through FreeRTOS_issocketconnected, send and recv. */
BaseType_t FreeRTOS_connect(Socket_t xClientSocket, const struct freertos_sockaddr *pxAddress,
                            socklen_t xAddressLength) {
    struct sockaddr_in sin;

    (void)xAddressLength;
    if (!valid(xClientSocket) || pxAddress == NULL) {
        return -pdFREERTOS_ERRNO_EINVAL;
    }
    if (xClientSocket->state != S_CREATED) {
        return xClientSocket->state == S_CONNECTING ? -pdFREERTOS_ERRNO_EALREADY
                                                    : -pdFREERTOS_ERRNO_EINVAL;
    }
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = pxAddress->sin_port;
    sin.sin_addr.s_addr = pxAddress->sin_addr;
    if (connect(xClientSocket->fd, (const struct sockaddr *)&sin, sizeof sin) == 0) {
        xClientSocket->state = S_ESTABLISHED;
    } else {
        /* A refusal shows later in FreeRTOS+TCP (the RST arrives in the IP task). */
        xClientSocket->state = errno == EINPROGRESS ? S_CONNECTING : S_CLOSED;
    }
    if (xClientSocket->state != S_ESTABLISHED && xClientSocket->rcv_timeout != 0) {
        (void)wait_for(xClientSocket, POLLOUT, xClientSocket->rcv_timeout);
        update_state(xClientSocket);
        if (xClientSocket->state == S_CONNECTING) {
            return -pdFREERTOS_ERRNO_ETIMEDOUT;
        }
        return xClientSocket->state == S_ESTABLISHED ? 0 : -pdFREERTOS_ERRNO_ENOTCONN;
    }
    return xClientSocket->state == S_ESTABLISHED ? 0 : -pdFREERTOS_ERRNO_EWOULDBLOCK;
}

BaseType_t FreeRTOS_issocketconnected(Socket_t xSocket) {
    if (!valid(xSocket)) {
        return -pdFREERTOS_ERRNO_EINVAL;
    }
    update_state(xSocket);
    return xSocket->state == S_ESTABLISHED ? pdTRUE : pdFALSE;
}

/* The number of bytes queued, 0 when nothing could be queued now, -ENOTCONN once closed. */
BaseType_t FreeRTOS_send(Socket_t xSocket, const void *pvBuffer, size_t uxDataLength,
                         BaseType_t xFlags) {
    ssize_t n;

    if (!valid(xSocket) || pvBuffer == NULL) {
        return -pdFREERTOS_ERRNO_EINVAL;
    }
    update_state(xSocket);
    if (xSocket->state == S_CLOSED || xSocket->state == S_CREATED) {
        return -pdFREERTOS_ERRNO_ENOTCONN;
    }
    if (xSocket->state == S_CONNECTING || uxDataLength == 0) {
        return 0;
    }
    if ((xFlags & FREERTOS_MSG_DONTWAIT) == 0 && xSocket->snd_timeout != 0) {
        (void)wait_for(xSocket, POLLOUT, xSocket->snd_timeout);
    }
    n = send(xSocket->fd, pvBuffer, uxDataLength, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
        return (BaseType_t)n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        return 0;
    }
    xSocket->state = S_CLOSED;
    return -pdFREERTOS_ERRNO_ENOTCONN;
}

/* The number of bytes read, 0 when none came within the block time, -ENOTCONN once the peer
 * closed or reset the connection (after the data before it was read). */
BaseType_t FreeRTOS_recv(Socket_t xSocket, void *pvBuffer, size_t uxBufferLength,
                         BaseType_t xFlags) {
    ssize_t n;

    if (!valid(xSocket) || pvBuffer == NULL) {
        return -pdFREERTOS_ERRNO_EINVAL;
    }
    update_state(xSocket);
    if (xSocket->state == S_CONNECTING || xSocket->state == S_CREATED) {
        return 0;
    }
    if (xSocket->state == S_ESTABLISHED && (xFlags & FREERTOS_MSG_DONTWAIT) == 0 &&
        xSocket->rcv_timeout != 0) {
        (void)wait_for(xSocket, POLLIN, xSocket->rcv_timeout);
    }
    n = xSocket->state == S_ESTABLISHED ? recv(xSocket->fd, pvBuffer, uxBufferLength, MSG_DONTWAIT)
                                        : 0;
    if (n > 0) {
        return (BaseType_t)n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        return 0;
    }
    xSocket->state = S_CLOSED;
    return -pdFREERTOS_ERRNO_ENOTCONN;
}

BaseType_t FreeRTOS_shutdown(Socket_t xSocket, BaseType_t xHow) {
    (void)xHow;
    if (!valid(xSocket)) {
        return -pdFREERTOS_ERRNO_EINVAL;
    }
    if (xSocket->state != S_ESTABLISHED) {
        return -pdFREERTOS_ERRNO_ENOTCONN;
    }
    (void)shutdown(xSocket->fd, SHUT_RDWR);
    return 0;
}

BaseType_t FreeRTOS_closesocket(Socket_t xSocket) {
    if (!valid(xSocket)) {
        return 0;
    }
    close(xSocket->fd);
    free(xSocket);
    return 1;
}

uint32_t FreeRTOS_inet_addr(const char *pcIPAddress) {
    struct in_addr a;

    return inet_pton(AF_INET, pcIPAddress, &a) == 1 ? a.s_addr : 0u;
}

uint16_t FreeRTOS_htons(uint16_t usIn) { return htons(usIn); }

uint32_t FreeRTOS_gethostbyname(const char *pcHostName) {
    struct addrinfo hints, *ai = NULL;
    uint32_t ip = 0;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(pcHostName, NULL, &hints, &ai) == 0 && ai != NULL) {
        ip = ((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr.s_addr;
    }
    if (ai != NULL) {
        freeaddrinfo(ai);
    }
    return ip;
}

/* ---- socket sets ------------------------------------------------------------------------ */

#define SET_SIZE 4

struct xSOCKET_SET {
    Socket_t sockets[SET_SIZE];
    EventBits_t bits[SET_SIZE];
};

SocketSet_t FreeRTOS_CreateSocketSet(void) { return calloc(1, sizeof(struct xSOCKET_SET)); }

void FreeRTOS_DeleteSocketSet(SocketSet_t xSocketSet) { free(xSocketSet); }

void FreeRTOS_FD_SET(Socket_t xSocket, SocketSet_t xSocketSet, EventBits_t xBitsToSet) {
    int i, free_slot = -1;

    for (i = 0; i < SET_SIZE; i++) {
        if (xSocketSet->sockets[i] == xSocket) {
            xSocketSet->bits[i] |= xBitsToSet;
            return;
        }
        if (xSocketSet->sockets[i] == NULL && free_slot < 0) {
            free_slot = i;
        }
    }
    if (free_slot >= 0) {
        xSocketSet->sockets[free_slot] = xSocket;
        xSocketSet->bits[free_slot] = xBitsToSet;
    }
}

void FreeRTOS_FD_CLR(Socket_t xSocket, SocketSet_t xSocketSet, EventBits_t xBitsToClear) {
    int i;

    for (i = 0; i < SET_SIZE; i++) {
        if (xSocketSet->sockets[i] == xSocket) {
            xSocketSet->bits[i] &= ~xBitsToClear;
            if (xSocketSet->bits[i] == 0) {
                xSocketSet->sockets[i] = NULL;
            }
        }
    }
}

/* Non-zero when a socket in the set has one of its events, 0 after the block time. */
BaseType_t FreeRTOS_select(SocketSet_t xSocketSet, TickType_t xBlockTimeTicks) {
    struct pollfd p[SET_SIZE];
    int i, n = 0;

    for (i = 0; i < SET_SIZE; i++) {
        Socket_t s = xSocketSet->sockets[i];
        if (s == NULL) {
            continue;
        }
        p[n].fd = s->fd;
        p[n].events = (short)(((xSocketSet->bits[i] & eSELECT_READ) ? POLLIN : 0) |
                              ((xSocketSet->bits[i] & eSELECT_WRITE) ? POLLOUT : 0));
        p[n].revents = 0;
        n++;
    }
    if (n == 0) {
        vTaskDelay(xBlockTimeTicks);
        return 0;
    }
    return poll(p, (nfds_t)n, poll_ms(xBlockTimeTicks)) > 0 ? 1 : 0;
}
