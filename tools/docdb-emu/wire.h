/* wire.h: MongoDB wire-protocol framing: parsing OP_MSG and OP_QUERY requests into one command
 * document, and building OP_MSG / OP_REPLY answers (../shared/research/docdb-wire.md §2.1-2.3).
 * No sockets here: bytes in, bytes out. */
#ifndef EMU_WIRE_H
#define EMU_WIRE_H

#include "emu.h"

#include <stddef.h>

#define EMU_OP_REPLY    1
#define EMU_OP_QUERY    2004
#define EMU_OP_MSG      2013
#define EMU_HEADER_SIZE 16

typedef struct {
    int32_t length;
    int32_t request_id;
    int32_t response_to;
    int32_t opcode;
} emu_header_t;

/* A parsed request. */
typedef struct {
    bson_t cmd;         /* owned: the kind-0 document with kind-1 sequences appended as arrays */
    bool legacy;        /* OP_QUERY */
    bool more_to_come;  /* OP_MSG moreToCome: the client wants no reply */
    char db[128];       /* OP_QUERY: database of the namespace; OP_MSG: empty ($db is in cmd) */
    bool not_a_command; /* OP_QUERY on a collection rather than db.$cmd */
} emu_msg_t;

/* Decodes the 16-byte little-endian header. */
void emu_wire_header(const uint8_t *buf, emu_header_t *h);

/* Parses the body (len bytes after the header) of an OP_MSG or OP_QUERY message. Every BSON
 * document is validated (framing, element sizes, nesting). False with *why set when the
 * message is malformed: the caller closes the connection. On success msg->cmd must be
 * destroyed by the caller. */
bool emu_wire_parse(const emu_header_t *h, const uint8_t *body, size_t len, emu_msg_t *msg,
                    const char **why);

/* Writes the header and the fixed part preceding the reply document into prefix and returns its
 * length: 21 bytes for OP_MSG (header, flagBits, section kind 0), 36 for OP_REPLY. */
size_t emu_wire_reply_prefix(uint8_t *prefix, bool legacy, int32_t request_id, int32_t response_to,
                             uint32_t doc_len, bool query_failure);

/* Nesting depth of a document: 1 for a flat document. Stops counting past limit. */
int emu_bson_depth(const bson_t *doc, int limit);

#endif
