/* scram.h: the server side of SCRAM-SHA-1 and SCRAM-SHA-256 as mongod speaks them (RFC 5802;
 * ../shared/research/docdb-wire.md §2.6). Credentials are derived once at start-up; a
 * conversation is a small state machine per connection. */
#ifndef EMU_SCRAM_H
#define EMU_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { EMU_SCRAM_SHA_1 = 0, EMU_SCRAM_SHA_256 = 1 } emu_scram_mech_t;

typedef struct {
    uint8_t salt[28];
    size_t salt_len; /* 16 for SHA-1, 28 for SHA-256: hash length - 4, as mongoc requires */
    int iterations;  /* 10000 (SHA-1) and 15000 (SHA-256), mongod's defaults */
    uint8_t stored_key[32];
    uint8_t server_key[32];
} emu_scram_cred_t;

typedef struct {
    char name[128];
    emu_scram_cred_t cred[2]; /* indexed by emu_scram_mech_t */
} emu_user_t;

/* Derives both credentials of `user` from `password` with fresh random salts. SHA-1 hashes
 * hex(md5(user ":mongo:" password)) as mongod does; SHA-256 uses the password itself (ASCII
 * passwords only: SASLprep of non-ASCII input is not implemented, see docs/test-server.md). */
bool emu_scram_user_init(emu_user_t *u, const char *user, const char *password);

/* As emu_scram_user_init but with a given salt and iteration count for one mechanism (tests). */
bool emu_scram_cred_derive(emu_scram_cred_t *c, emu_scram_mech_t mech, const char *user,
                           const char *password, const uint8_t *salt, size_t salt_len,
                           int iterations);

typedef struct {
    int step; /* 0 idle, 1 server-first sent, 2 server-final sent, 3 done */
    emu_scram_mech_t mech;
    const emu_user_t *user;
    char user_name[128];
    char client_first_bare[512];
    char server_first[512];
    char nonce[256];
} emu_scram_t;

/* Handles client-first `in` (payload of saslStart). On success writes server-first into out
 * (NUL-terminated, at most out_size) and returns true. `find_user` resolves a name to its
 * credentials (NULL: unknown). On failure `*why` says what was wrong (for the server log only;
 * the client always gets "Authentication failed.") and the caller answers code 18. */
bool emu_scram_start(emu_scram_t *s, emu_scram_mech_t mech, const char *in, size_t in_len,
                     const emu_user_t *(*find_user)(const char *name), const char *fixed_nonce,
                     char *out, size_t out_size, const char **why);

/* Handles client-final `in` (payload of saslContinue). Verifies the proof and writes
 * "v=<server signature>" into out. On success the conversation's user is authenticated. */
bool emu_scram_continue(emu_scram_t *s, const char *in, size_t in_len, char *out, size_t out_size,
                        const char **why);

#endif
