/* serve_count.c: the benchmark's `serve` client, in C on the gRPC core so that the client is
 * never the bottleneck: one Update, counting records and checkpoints by walking the messages'
 * framing without decoding values. Usage: docdb-serve-count PORT CONFIG_JSON */
#include <bson/bson.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connector_sdk.pb-c.h"
#include "core/buf.h"

static uint64_t
varint(const uint8_t **p, const uint8_t *end)
{
    uint64_t v = 0;
    int shift = 0;
    while (*p < end) {
        uint8_t c = *(*p)++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80)
            break;
        shift += 7;
    }
    return v;
}

static bool
pluck(grpc_completion_queue *cq, void *tag)
{
    grpc_event ev = grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

int
main(int argc, char **argv)
{
    if (argc != 3) {
        fputs("usage: docdb-serve-count PORT CONFIG_JSON\n", stderr);
        return 2;
    }
    bson_error_t jerr;
    char text[1 << 16];
    FILE *cf = fopen(argv[2], "rb");
    size_t tlen = cf ? fread(text, 1, sizeof text, cf) : 0;
    if (cf)
        fclose(cf);
    bson_t *cfg = bson_new_from_json((const uint8_t *)text, (ssize_t)tlen, &jerr);
    if (!cfg) {
        fprintf(stderr, "serve-count: %s: not a JSON configuration\n", argv[2]);
        return 2;
    }
    /* The request: the configuration as Fivetran's string map, the CA file uploaded. */
    FivetranSdk__V2__UpdateRequest req = FIVETRAN_SDK__V2__UPDATE_REQUEST__INIT;
    FivetranSdk__V2__UpdateRequest__ConfigurationEntry entries[64], *ep[64];
    dc_buf_t ca;
    dc_buf_init(&ca);
    bson_iter_t it;
    size_t n = 0;
    bson_iter_init(&it, cfg);
    while (bson_iter_next(&it) && n < 64) {
        FivetranSdk__V2__UpdateRequest__ConfigurationEntry e =
            FIVETRAN_SDK__V2__UPDATE_REQUEST__CONFIGURATION_ENTRY__INIT;
        e.key = (char *)bson_iter_key(&it);
        e.value = (char *)(BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL) : "");
        if (strcmp(e.key, "tls_ca_file") == 0) {
            FILE *f = fopen(e.value, "rb");
            char data[1 << 16];
            size_t len = f ? fread(data, 1, sizeof data, f) : 0;
            if (f)
                fclose(f);
            dc_buf_append_base64(&ca, (const uint8_t *)data, len);
            e.value = ca.data;
        }
        entries[n] = e;
        ep[n] = &entries[n];
        n++;
    }
    req.n_configuration = n;
    req.configuration = ep;
    size_t rlen = fivetran_sdk__v2__update_request__get_packed_size(&req);
    grpc_slice rs = grpc_slice_malloc(rlen);
    fivetran_sdk__v2__update_request__pack(&req, GRPC_SLICE_START_PTR(rs));
    grpc_byte_buffer *request = grpc_raw_byte_buffer_create(&rs, 1);
    grpc_slice_unref(rs);

    grpc_init();
    grpc_arg arg = {.type = GRPC_ARG_INTEGER,
                    .key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
                    .value.integer = 128 * 1024 * 1024};
    grpc_channel_args args = {1, &arg};
    char target[64];
    snprintf(target, sizeof target, "127.0.0.1:%s", argv[1]);
    grpc_channel_credentials *creds = grpc_insecure_credentials_create();
    grpc_channel *ch = grpc_channel_create(target, creds, &args);
    grpc_channel_credentials_release(creds);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_slice method = grpc_slice_from_static_string("/fivetran_sdk.v2.SourceConnector/Update");
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL,
                                               gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    int tag_start = 1, tag_msg = 2, tag_status = 3;
    if (grpc_call_start_batch(call, ops, 4, &tag_start, NULL) != GRPC_CALL_OK ||
        !pluck(cq, &tag_start)) {
        fputs("serve-count: cannot start the call\n", stderr);
        return 1;
    }
    uint64_t records = 0, checkpoints = 0, tasks = 0;
    for (;;) {
        grpc_byte_buffer *bb = NULL;
        grpc_op op = {0};
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &bb;
        if (grpc_call_start_batch(call, &op, 1, &tag_msg, NULL) != GRPC_CALL_OK ||
            !pluck(cq, &tag_msg) || !bb)
            break;
        grpc_byte_buffer_reader rd;
        grpc_byte_buffer_reader_init(&rd, bb);
        grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
        grpc_byte_buffer_reader_destroy(&rd);
        const uint8_t *p = GRPC_SLICE_START_PTR(s), *end = GRPC_SLICE_END_PTR(s);
        uint64_t field = varint(&p, end) >> 3;
        uint64_t len = varint(&p, end);
        if (field == 6) { /* Records: count its repeated records */
            const uint8_t *q = p, *qend = p + len;
            while (q < qend) {
                varint(&q, qend);
                q += varint(&q, qend);
                records++;
            }
        } else if (field == 3) {
            checkpoints++;
        } else if (field == 5) {
            tasks++;
        }
        grpc_slice_unref(s);
        grpc_byte_buffer_destroy(bb);
    }
    grpc_status_code status;
    grpc_slice details;
    grpc_op op = {0};
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &trailing;
    op.data.recv_status_on_client.status = &status;
    op.data.recv_status_on_client.status_details = &details;
    grpc_call_start_batch(call, &op, 1, &tag_status, NULL);
    pluck(cq, &tag_status);
    printf("{\"records\": %llu, \"checkpoints\": %llu, \"tasks\": %llu, \"status\": %d}\n",
           (unsigned long long)records, (unsigned long long)checkpoints, (unsigned long long)tasks,
           (int)status);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    grpc_byte_buffer_destroy(request);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
    grpc_channel_destroy(ch);
    grpc_shutdown();
    dc_buf_cleanup(&ca);
    bson_destroy(cfg);
    return status == GRPC_STATUS_OK && tasks == 0 ? 0 : 1;
}
