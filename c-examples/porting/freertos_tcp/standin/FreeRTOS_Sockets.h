/* Test stand-in for FreeRTOS+TCP's FreeRTOS_Sockets.h (see README.md). */
#ifndef FREERTOS_STANDIN_SOCKETS_H
#define FREERTOS_STANDIN_SOCKETS_H

#include "FreeRTOS.h"
#include "FreeRTOS_errno_TCP.h"

typedef struct xSOCKET *Socket_t;
typedef struct xSOCKET_SET *SocketSet_t;
typedef uint32_t socklen_t;
typedef uint32_t EventBits_t;

#define FREERTOS_INVALID_SOCKET ((Socket_t)(~(uintptr_t)0))
#define FREERTOS_AF_INET 2
#define FREERTOS_SOCK_STREAM 1
#define FREERTOS_IPPROTO_TCP 6
#define FREERTOS_SO_RCVTIMEO 0
#define FREERTOS_SO_SNDTIMEO 1
#define FREERTOS_MSG_DONTWAIT 16
#define FREERTOS_SHUT_RDWR 2

struct freertos_sockaddr {
    uint8_t sin_len;
    uint8_t sin_family;
    uint16_t sin_port;   /* network byte order */
    uint32_t sin_addr;   /* network byte order */
};

typedef enum eSelectEvent {
    eSELECT_READ = 0x0001,
    eSELECT_WRITE = 0x0002,
    eSELECT_EXCEPT = 0x0004,
    eSELECT_INTR = 0x0008,
    eSELECT_ALL = 0x000F
} eSelectEvent_t;

Socket_t FreeRTOS_socket(BaseType_t xDomain, BaseType_t xType, BaseType_t xProtocol);
BaseType_t FreeRTOS_setsockopt(Socket_t xSocket, int32_t lLevel, int32_t lOptionName,
                               const void *pvOptionValue, size_t uxOptionLength);
BaseType_t FreeRTOS_connect(Socket_t xClientSocket, const struct freertos_sockaddr *pxAddress,
                            socklen_t xAddressLength);
BaseType_t FreeRTOS_issocketconnected(Socket_t xSocket);
BaseType_t FreeRTOS_send(Socket_t xSocket, const void *pvBuffer, size_t uxDataLength,
                         BaseType_t xFlags);
BaseType_t FreeRTOS_recv(Socket_t xSocket, void *pvBuffer, size_t uxBufferLength,
                         BaseType_t xFlags);
BaseType_t FreeRTOS_shutdown(Socket_t xSocket, BaseType_t xHow);
BaseType_t FreeRTOS_closesocket(Socket_t xSocket);
uint32_t FreeRTOS_inet_addr(const char *pcIPAddress);

SocketSet_t FreeRTOS_CreateSocketSet(void);
void FreeRTOS_DeleteSocketSet(SocketSet_t xSocketSet);
void FreeRTOS_FD_SET(Socket_t xSocket, SocketSet_t xSocketSet, EventBits_t xBitsToSet);
void FreeRTOS_FD_CLR(Socket_t xSocket, SocketSet_t xSocketSet, EventBits_t xBitsToClear);
BaseType_t FreeRTOS_select(SocketSet_t xSocketSet, TickType_t xBlockTimeTicks);

#endif
