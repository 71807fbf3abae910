/* server.h: the server's configuration, the per-connection state and the entry points that tie
 * the modules together (listener, connection threads, command dispatch). */
#ifndef EMU_SERVER_H
#define EMU_SERVER_H

#include "emu.h"
#include "scram.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>

#define EMU_MAX_BSON_SIZE    (16 * 1024 * 1024)
#define EMU_MAX_MESSAGE_SIZE 48000000
#define EMU_MAX_WRITE_BATCH  100000
#define EMU_MAX_USERS        16

typedef enum { EMU_DOCUMENTDB, EMU_MONGODB } emu_personality_t;

typedef struct {
    const char *bind;     /* address to listen on, default 127.0.0.1 */
    int port;             /* 0: any free port */
    const char *tls_cert; /* PEM certificate chain, enables TLS for every connection */
    const char *tls_key;  /* PEM private key */
    emu_user_t users[EMU_MAX_USERS];
    int nusers;
    int wire_version;        /* maxWireVersion advertised, default 13 */
    const char *replica_set; /* setName in replica-set mode, NULL for standalone */
    emu_personality_t personality;
    int cursor_timeout_s; /* idle cursors expire after this, default 600 */
    bool verbose;
} emu_config_t;

/* The one configuration of this process, set by main before emu_server_run. */
extern emu_config_t emu_config;

/* Per-connection state, owned by its thread. */
typedef struct emu_conn {
    pthread_t thread;
    struct emu_conn *next_done; /* in the list of finished threads to join */
    int fd;
    SSL *ssl;
    int64_t id;               /* connectionId */
    char local_addr[128];     /* host:port the client dialled (TLS SNI name or socket address) */
    const emu_user_t *user;   /* authenticated user, NULL before authentication */
    emu_scram_t scram;        /* SASL conversation in progress */
    bool skip_empty_exchange; /* saslStart asked for the short conversation */
    char app_name[129];       /* client.application.name from the handshake */
    bool close_after_reply;   /* a fail point asked to drop the connection */
    bool closed;              /* reply must not be sent: connection is to be dropped */
} emu_conn_t;

/* One command to execute. The request keeps ownership of cmd; handlers append their reply to
 * `reply` (without "ok", which dispatch adds) or fill err. */
typedef struct {
    emu_conn_t *conn;
    const char *name; /* first key of cmd */
    const char *db;   /* $db (or the OP_QUERY namespace's database) */
    const bson_t *cmd;
    bool legacy; /* arrived by OP_QUERY: legacy hello answers `ismaster` */
} emu_cmd_t;

/* Runs one command and writes its full reply document into `reply` (initialised, empty):
 * either the handler's fields plus ok: 1, or {ok: 0, errmsg, code, codeName, errorLabels}. */
void emu_dispatch(emu_cmd_t *c, bson_t *reply);

/* Listens, serves until SIGTERM/SIGINT, then returns 0 (or 1 when it cannot start). */
int emu_server_run(void);

/* Monotonic milliseconds. */
int64_t emu_now_ms(void);

#endif
