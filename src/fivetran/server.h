/* server.h: the gRPC plumbing of `serve` on the gRPC C core: listening, one worker thread per
 * call, blocking sends that wait for flow control (a slow client makes the sender wait, never
 * buffer), cancellation, graceful shutdown. The RPC handlers (rpc.c) see only dc_call_t. */
#ifndef DC_FIVETRAN_SERVER_H
#define DC_FIVETRAN_SERVER_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC status codes (grpc/status.h) the handlers answer with. */
enum {
    DC_GRPC_OK = 0,
    DC_GRPC_CANCELLED = 1,
    DC_GRPC_UNKNOWN = 2,
    DC_GRPC_INVALID_ARGUMENT = 3,
    DC_GRPC_NOT_FOUND = 5,
    DC_GRPC_FAILED_PRECONDITION = 9,
    DC_GRPC_UNIMPLEMENTED = 12,
    DC_GRPC_INTERNAL = 13,
    DC_GRPC_UNAVAILABLE = 14,
};

typedef struct dc_call dc_call_t;

/* The request message's bytes (valid during the handler). */
const uint8_t *dc_call_request(const dc_call_t *c, size_t *len);
/* Sends one message and waits until gRPC has taken it (flow control). False when the client
 * went away or cancelled: the handler should stop. */
bool dc_call_send(dc_call_t *c, const ProtobufCMessage *msg);
/* The same for a message already encoded: the bytes head then body (copied). */
bool dc_call_send_bytes(dc_call_t *c, const void *head, size_t head_len, const void *body,
                        size_t body_len);
/* Whether the client cancelled or disconnected (as far as known). */
bool dc_call_cancelled(const dc_call_t *c);

/* A handler returns the status to finish the call with; *message is the status text for errors
 * (the handler's static or per-call buffer, copied before return). */
typedef int (*dc_rpc_handler_t)(dc_call_t *c, char *message, size_t message_size);

/* Finds the handler for a method path ("/fivetran_sdk.v2.SourceConnector/Test"), NULL when
 * unknown (answered UNIMPLEMENTED). */
dc_rpc_handler_t dc_rpc_lookup(const char *method, size_t len);

/* Listens on bind:port (bind NULL: every address, IPv4 and IPv6), logs "listening on A:P" and
 * serves until SIGTERM or SIGINT. Returns the process exit status. */
int dc_serve_run(const char *bind, int port);

#endif
