/* test_scram.c: the server side of SCRAM against published test vectors (RFC 5802's exchange
 * with mongod's MD5 pre-hash for SHA-1, recomputed in ../shared/research/docdb-wire.md §2.6,
 * and RFC 7677's SCRAM-SHA-256 exchange), plus the refusals. */
#include <openssl/evp.h>
#include <string.h>

#include "scram.h"

#include "cmocka_main.h"

static emu_user_t vector_user;

static const emu_user_t *
find_vector_user(const char *name)
{
    return strcmp(name, vector_user.name) == 0 ? &vector_user : NULL;
}

static void
setup_user(emu_scram_mech_t mech, const char *salt64, int iterations)
{
    uint8_t salt[32];
    int n = EVP_DecodeBlock(salt, (const unsigned char *)salt64, (int)strlen(salt64));
    assert_true(n > 0);
    n -= (salt64[strlen(salt64) - 1] == '=') + (salt64[strlen(salt64) - 2] == '=');
    memset(&vector_user, 0, sizeof vector_user);
    strcpy(vector_user.name, "user");
    assert_true(emu_scram_cred_derive(&vector_user.cred[mech], mech, "user", "pencil", salt,
                                      (size_t)n, iterations));
}

/* Runs client-first / client-final and returns the server's final message in out. */
static bool
exchange(emu_scram_mech_t mech, const char *client_first, const char *snonce,
         const char *client_final, char *out, size_t out_size)
{
    emu_scram_t s;
    char server_first[512];
    const char *why = NULL;
    if (!emu_scram_start(&s, mech, client_first, strlen(client_first), find_vector_user, snonce,
                         server_first, sizeof server_first, &why))
        return false;
    return emu_scram_continue(&s, client_final, strlen(client_final), out, out_size, &why);
}

static void
test_sha1_vector(void **state)
{
    (void)state;
    char out[128];
    setup_user(EMU_SCRAM_SHA_1, "rQ9ZY3MntBeuP3E1TDVC4w==", 10000);
    assert_true(exchange(EMU_SCRAM_SHA_1, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
                         "Ho+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE",
                         "c=biws,r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,"
                         "p=MC2T8BvbmWRckDw8oWl5IVghwCY=",
                         out, sizeof out));
    assert_string_equal(out, "v=UMWeI25JD1yNYZRMpZ4VHvhZ9e0=");
}

static void
test_sha256_vector(void **state)
{
    (void)state;
    char out[128];
    setup_user(EMU_SCRAM_SHA_256, "W22ZaJ0SNY7soEsUEjb6gQ==", 4096);
    assert_true(exchange(EMU_SCRAM_SHA_256, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                         "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
                         "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                         out, sizeof out));
    assert_string_equal(out, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

static void
test_wrong_proof_refused(void **state)
{
    (void)state;
    char out[128];
    setup_user(EMU_SCRAM_SHA_1, "rQ9ZY3MntBeuP3E1TDVC4w==", 10000);
    assert_false(exchange(EMU_SCRAM_SHA_1, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
                          "Ho+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE",
                          "c=biws,r=fyko+d2lbbFgONRv9qkxdawLHo+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE,"
                          "p=NC2T8BvbmWRckDw8oWl5IVghwCY=",
                          out, sizeof out));
    /* A nonce that is not the combined one. */
    assert_false(exchange(
        EMU_SCRAM_SHA_1, "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", "Ho+Vgk7qvUOKUwuWLIWg4l/9SraGMHEE",
        "c=biws,r=fyko+d2lbbFgONRv9qkxdawL,p=MC2T8BvbmWRckDw8oWl5IVghwCY=", out, sizeof out));
}

static void
test_bad_client_first_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",                               /* empty */
        "p=tls-unique,,n=user,r=abcdefg", /* channel binding */
        "n,,n=nobody,r=abcdefgh",         /* unknown user */
        "n,,n=user,r=abc",                /* nonce too short */
        "n,,m=ext,n=user,r=abcdefgh",     /* mandatory extension */
        "n,,n=us=ZZer,r=abcdefgh",        /* bad saslname escape */
        "x,,n=user,r=abcdefgh",           /* bad gs2 flag */
        "n,n=user,r=abcdefgh",            /* truncated gs2 header */
    };
    setup_user(EMU_SCRAM_SHA_1, "rQ9ZY3MntBeuP3E1TDVC4w==", 10000);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        emu_scram_t s;
        char out[512];
        const char *why = NULL;
        if (emu_scram_start(&s, EMU_SCRAM_SHA_1, bad[i], strlen(bad[i]), find_vector_user, NULL,
                            out, sizeof out, &why))
            fail_msg("accepted client-first '%s'", bad[i]);
        assert_non_null(why);
    }
}

static void
test_fresh_credentials_shape(void **state)
{
    (void)state;
    emu_user_t u;
    assert_true(emu_scram_user_init(&u, "alice", "s3cret"));
    /* libmongoc requires salts of hash length - 4 and refuses fewer than 4096 iterations. */
    assert_int_equal(u.cred[EMU_SCRAM_SHA_1].salt_len, 16);
    assert_int_equal(u.cred[EMU_SCRAM_SHA_256].salt_len, 28);
    assert_true(u.cred[EMU_SCRAM_SHA_1].iterations >= 4096);
    assert_true(u.cred[EMU_SCRAM_SHA_256].iterations >= 4096);
    /* A continue without a start is refused. */
    emu_scram_t s;
    char out[64];
    const char *why = NULL;
    memset(&s, 0, sizeof s);
    assert_false(emu_scram_continue(&s, "c=biws,r=x,p=y", 14, out, sizeof out, &why));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_sha1_vector),
    cmocka_unit_test(test_sha256_vector),
    cmocka_unit_test(test_wrong_proof_refused),
    cmocka_unit_test(test_bad_client_first_refused),
    cmocka_unit_test(test_fresh_credentials_shape),
};

DC_CMOCKA_MAIN(tests)
