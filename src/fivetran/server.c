/* server.c: the gRPC C core server (design: one acceptor thread on a NEXT completion queue, one
 * worker thread per call with its own PLUCK queue, as ../shared/research/grpc-c-core.md §5
 * describes). Nothing here knows Fivetran's messages: rpc.c handles the calls. */
#include "fivetran/server.h"
#include "core/mem.h"
#include "core/log.h"

#include <errno.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fivetran's largest message, either direction (fivetran-sdk.md §1.1). */
#define MAX_MESSAGE (128 * 1024 * 1024)

struct dc_call {
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_completion_queue *cq; /* PLUCK queue bound to this call */
    grpc_byte_buffer *request_bb;
    grpc_slice request; /* the whole request, flattened */
    int cancelled;      /* RECV_CLOSE_ON_SERVER's flag */
    bool closed;        /* the close op completed */
    bool send_failed;
    int tags[4]; /* distinct addresses as pluck tags */
};

static volatile sig_atomic_t stop_requested;
static pthread_mutex_t workers_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t workers_cv = PTHREAD_COND_INITIALIZER;
static int workers;

static void
on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static gpr_timespec
forever(void)
{
    return gpr_inf_future(GPR_CLOCK_REALTIME);
}

static bool
run_batch(dc_call_t *c, const grpc_op *ops, size_t n, void *tag)
{
    if (grpc_call_start_batch(c->call, ops, n, tag, NULL) != GRPC_CALL_OK)
        return false;
    grpc_event ev = grpc_completion_queue_pluck(c->cq, tag, forever(), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

const uint8_t *
dc_call_request(const dc_call_t *c, size_t *len)
{
    *len = GRPC_SLICE_LENGTH(c->request);
    return GRPC_SLICE_START_PTR(c->request);
}

bool
dc_call_cancelled(const dc_call_t *c)
{
    return c->send_failed || c->cancelled;
}

/* Sends s (taking it over) and waits until gRPC has taken it. */
static bool
send_slice(dc_call_t *c, grpc_slice s)
{
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_op op = {0};
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = bb;
    /* One send in flight; its completion is the flow-control signal. */
    bool ok = run_batch(c, &op, 1, &c->tags[1]);
    grpc_byte_buffer_destroy(bb);
    if (!ok)
        c->send_failed = true;
    return ok;
}

bool
dc_call_send(dc_call_t *c, const ProtobufCMessage *msg)
{
    if (c->send_failed)
        return false;
    size_t n = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(n);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    return send_slice(c, s);
}

bool
dc_call_send_bytes(dc_call_t *c, const void *head, size_t head_len, const void *body,
                   size_t body_len)
{
    if (c->send_failed)
        return false;
    grpc_slice s = grpc_slice_malloc(head_len + body_len);
    memcpy(GRPC_SLICE_START_PTR(s), head, head_len);
    memcpy(GRPC_SLICE_START_PTR(s) + head_len, body, body_len);
    return send_slice(c, s);
}

/* Finishes the call with status (and message when not OK). */
static void
finish(dc_call_t *c, int status, const char *message)
{
    grpc_slice details = grpc_slice_from_copied_string(status == DC_GRPC_OK ? "" : message);
    grpc_op op = {0};
    op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    op.data.send_status_from_server.status = (grpc_status_code)status;
    op.data.send_status_from_server.status_details = &details;
    op.data.send_status_from_server.trailing_metadata_count = 0;
    run_batch(c, &op, 1, &c->tags[2]);
    grpc_slice_unref(details);
}

static void *
worker(void *arg)
{
    dc_call_t *c = arg;
    char message[1024] = "";
    int status = DC_GRPC_OK;

    /* The close op first, in its own batch: it reports cancellation. */
    grpc_op close_op = {0};
    close_op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    close_op.data.recv_close_on_server.cancelled = &c->cancelled;
    bool close_started =
        grpc_call_start_batch(c->call, &close_op, 1, &c->tags[3], NULL) == GRPC_CALL_OK;

    grpc_op ops[2] = {{0}, {0}};
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_RECV_MESSAGE;
    ops[1].data.recv_message.recv_message = &c->request_bb;
    if (!run_batch(c, ops, 2, &c->tags[0]) || !c->request_bb) {
        status = DC_GRPC_INVALID_ARGUMENT;
        snprintf(message, sizeof message, "no request message");
    } else {
        grpc_byte_buffer_reader reader;
        if (grpc_byte_buffer_reader_init(&reader, c->request_bb)) {
            c->request = grpc_byte_buffer_reader_readall(&reader);
            grpc_byte_buffer_reader_destroy(&reader);
        }
        char *method = grpc_slice_to_c_string(c->details.method);
        dc_rpc_handler_t h = dc_rpc_lookup(method, strlen(method));
        if (!h) {
            status = DC_GRPC_UNIMPLEMENTED;
            snprintf(message, sizeof message, "unknown method %s", method);
        } else {
            status = h(c, message, sizeof message);
        }
        if (status != DC_GRPC_OK)
            dc_log(DC_LOG_WARNING, "%s: status %d: %s", method, status, message);
        gpr_free(method);
    }
    finish(c, status, message);
    if (close_started)
        grpc_completion_queue_pluck(c->cq, &c->tags[3], forever(), NULL);

    grpc_slice_unref(c->request);
    if (c->request_bb)
        grpc_byte_buffer_destroy(c->request_bb);
    grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    grpc_completion_queue_shutdown(c->cq);
    grpc_completion_queue_destroy(c->cq);
    free(c);

    pthread_mutex_lock(&workers_mu);
    workers--;
    pthread_cond_broadcast(&workers_cv);
    pthread_mutex_unlock(&workers_mu);
    return NULL;
}

static dc_call_t *
post_request(grpc_server *server, grpc_completion_queue *srv_cq)
{
    dc_call_t *c = dc_xcalloc(1, sizeof *c);
    c->request = grpc_empty_slice();
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->md);
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    if (grpc_server_request_call(server, &c->call, &c->details, &c->md, c->cq, srv_cq, c) !=
        GRPC_CALL_OK) {
        dc_log(DC_LOG_SEVERE, "cannot wait for calls");
        abort();
    }
    return c;
}

static void
discard(dc_call_t *c)
{
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    grpc_completion_queue_shutdown(c->cq);
    grpc_completion_queue_destroy(c->cq);
    free(c);
}

/* gRPC's own log lines, folded into ours. */
static void
grpc_log_to_ours(gpr_log_func_args *args)
{
    dc_log(args->severity == GPR_LOG_SEVERITY_ERROR ? DC_LOG_WARNING : DC_LOG_DEBUG, "grpc: %s",
           args->message);
}

int
dc_serve_run(const char *bind, int port)
{
    gpr_set_log_function(grpc_log_to_ours);
    grpc_init();
    grpc_arg args[3];
    args[0].type = GRPC_ARG_INTEGER;
    args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    args[0].value.integer = MAX_MESSAGE;
    args[1].type = GRPC_ARG_INTEGER;
    args[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    args[1].value.integer = MAX_MESSAGE;
    args[2].type = GRPC_ARG_INTEGER;
    args[2].key = (char *)GRPC_ARG_ALLOW_REUSEPORT; /* a port in use must be an error */
    args[2].value.integer = 0;
    grpc_channel_args chargs = {3, args};
    grpc_server *server = grpc_server_create(&chargs, NULL);
    grpc_completion_queue *srv_cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(server, srv_cq, NULL);

    char addr[300];
    if (bind && strchr(bind, ':') && bind[0] != '[')
        snprintf(addr, sizeof addr, "[%s]:%d", bind, port);
    else
        snprintf(addr, sizeof addr, "%s:%d", bind ? bind : "[::]", port);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    int bound = grpc_server_add_http2_port(server, addr, creds);
    grpc_server_credentials_release(creds);
    if (!bound) {
        dc_log(DC_LOG_SEVERE, "cannot listen on %s (address in use or not available)", addr);
        grpc_server_destroy(server);
        grpc_completion_queue_shutdown(srv_cq);
        while (grpc_completion_queue_next(srv_cq, forever(), NULL).type != GRPC_QUEUE_SHUTDOWN)
            ;
        grpc_completion_queue_destroy(srv_cq);
        grpc_shutdown();
        return 1;
    }
    grpc_server_start(server);

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    const char *shown = bind ? bind : "0.0.0.0 and [::]";
    if (bind && strchr(bind, ':') && bind[0] != '[')
        dc_log(DC_LOG_INFO, "listening on [%s]:%d", shown, bound);
    else
        dc_log(DC_LOG_INFO, "listening on %s:%d", shown, bound);

    dc_call_t *pending = post_request(server, srv_cq);
    while (!stop_requested) {
        gpr_timespec deadline =
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(200, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(srv_cq, deadline, NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        dc_call_t *c = ev.tag;
        if (!ev.success) {
            discard(c);
            pending = post_request(server, srv_cq);
            continue;
        }
        /* Re-post before handling, so the next call never waits for this one. */
        pending = post_request(server, srv_cq);
        pthread_mutex_lock(&workers_mu);
        workers++;
        pthread_mutex_unlock(&workers_mu);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, worker, c) != 0) {
            dc_log(DC_LOG_SEVERE, "cannot start a thread for a call");
            grpc_call_cancel_with_status(c->call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                                         "no thread for the call", NULL);
            grpc_call_unref(c->call);
            discard(c);
            pthread_mutex_lock(&workers_mu);
            workers--;
            pthread_mutex_unlock(&workers_mu);
        }
        pthread_attr_destroy(&attr);
    }

    dc_log(DC_LOG_INFO, "stopping");
    int shutdown_tag = 0;
    grpc_server_shutdown_and_notify(server, srv_cq, &shutdown_tag);
    gpr_timespec grace =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(2000, GPR_TIMESPAN));
    bool cancelled_all = false;
    for (;;) {
        gpr_timespec deadline =
            gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(100, GPR_TIMESPAN));
        grpc_event ev = grpc_completion_queue_next(srv_cq, deadline, NULL);
        if (ev.type == GRPC_OP_COMPLETE && ev.tag == &shutdown_tag)
            break;
        if (ev.type == GRPC_OP_COMPLETE && ev.tag == pending) {
            discard(pending); /* the posted request, finished by the shutdown */
            pending = NULL;
        }
        if (!cancelled_all && gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), grace) > 0) {
            grpc_server_cancel_all_calls(server);
            cancelled_all = true;
        }
    }
    pthread_mutex_lock(&workers_mu);
    while (workers > 0)
        pthread_cond_wait(&workers_cv, &workers_mu);
    pthread_mutex_unlock(&workers_mu);
    grpc_server_destroy(server);
    grpc_completion_queue_shutdown(srv_cq);
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(srv_cq, forever(), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE && ev.tag == pending) {
            discard(pending);
            pending = NULL;
        }
    }
    grpc_completion_queue_destroy(srv_cq);
    grpc_shutdown();
    return 0;
}
