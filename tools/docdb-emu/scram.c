/* scram.c: SCRAM-SHA-1/-256 server conversations on OpenSSL (HMAC, PBKDF2, digests, base64).
 * Written here rather than taken from a SASL library because Cyrus SASL's server plugins need a
 * user database and cannot apply mongod's MD5 pre-hash of SHA-1 passwords. */
#include "scram.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

static const EVP_MD *
md_of(emu_scram_mech_t mech)
{
    return mech == EMU_SCRAM_SHA_1 ? EVP_sha1() : EVP_sha256();
}

static size_t
hash_len(emu_scram_mech_t mech)
{
    return mech == EMU_SCRAM_SHA_1 ? 20 : 32;
}

static void
hmac(emu_scram_mech_t mech, const uint8_t *key, size_t key_len, const void *data, size_t len,
     uint8_t *out)
{
    unsigned int olen = 0;
    HMAC(md_of(mech), key, (int)key_len, data, len, out, &olen);
}

static void
digest(emu_scram_mech_t mech, const void *data, size_t len, uint8_t *out)
{
    unsigned int olen = 0;
    EVP_Digest(data, len, out, &olen, md_of(mech), NULL);
}

/* Base64 into out (NUL-terminated); returns the length. out needs 4*ceil(n/3)+1 bytes. */
static size_t
b64_encode(const uint8_t *in, size_t n, char *out)
{
    return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Decodes base64 `in` (n chars) into out (capacity cap); returns the byte count or -1. */
static long
b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4 != 0 || n / 4 * 3 > cap)
        return -1;
    int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (len < 0)
        return -1;
    /* EVP_DecodeBlock counts padding as zero bytes. */
    if (n >= 1 && in[n - 1] == '=')
        len--;
    if (n >= 2 && in[n - 2] == '=')
        len--;
    return len;
}

bool
emu_scram_cred_derive(emu_scram_cred_t *c, emu_scram_mech_t mech, const char *user,
                      const char *password, const uint8_t *salt, size_t salt_len, int iterations)
{
    char pw[64];
    const char *secret = password;
    if (mech == EMU_SCRAM_SHA_1) {
        /* mongod's SHA-1 credentials hash hex(md5(user:mongo:password)). */
        uint8_t md5[16];
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx)
            return false;
        EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
        EVP_DigestUpdate(ctx, user, strlen(user));
        EVP_DigestUpdate(ctx, ":mongo:", 7);
        EVP_DigestUpdate(ctx, password, strlen(password));
        EVP_DigestFinal_ex(ctx, md5, NULL);
        EVP_MD_CTX_free(ctx);
        for (int i = 0; i < 16; i++)
            snprintf(pw + 2 * i, 3, "%02x", md5[i]);
        secret = pw;
    }
    size_t hl = hash_len(mech);
    uint8_t salted[32], client_key[32];
    if (salt_len > sizeof c->salt ||
        !PKCS5_PBKDF2_HMAC(secret, (int)strlen(secret), salt, (int)salt_len, iterations,
                           md_of(mech), (int)hl, salted))
        return false;
    memcpy(c->salt, salt, salt_len);
    c->salt_len = salt_len;
    c->iterations = iterations;
    hmac(mech, salted, hl, "Client Key", 10, client_key);
    digest(mech, client_key, hl, c->stored_key);
    hmac(mech, salted, hl, "Server Key", 10, c->server_key);
    OPENSSL_cleanse(pw, sizeof pw);
    OPENSSL_cleanse(salted, sizeof salted);
    return true;
}

bool
emu_scram_user_init(emu_user_t *u, const char *user, const char *password)
{
    uint8_t salt[28];
    memset(u, 0, sizeof *u);
    if (strlen(user) >= sizeof u->name)
        return false;
    strcpy(u->name, user);
    if (RAND_bytes(salt, 16) != 1 ||
        !emu_scram_cred_derive(&u->cred[EMU_SCRAM_SHA_1], EMU_SCRAM_SHA_1, user, password, salt, 16,
                               10000))
        return false;
    if (RAND_bytes(salt, 28) != 1 ||
        !emu_scram_cred_derive(&u->cred[EMU_SCRAM_SHA_256], EMU_SCRAM_SHA_256, user, password, salt,
                               28, 15000))
        return false;
    return true;
}

/* Finds attribute `key` ("r", "p", ...) in a comma-separated SCRAM message; returns a pointer to
 * its value and its length in *len, or NULL. */
static const char *
attr(const char *msg, size_t n, char key, size_t *len)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && msg[j] != ',')
            j++;
        if (j - i >= 2 && msg[i] == key && msg[i + 1] == '=') {
            *len = j - i - 2;
            return msg + i + 2;
        }
        i = j + 1;
    }
    return NULL;
}

/* Decodes a SCRAM saslname (",=2C" and "==3D") into out; false on a bad escape. */
static bool
decode_saslname(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == '=') {
            if (i + 2 >= n)
                return false;
            if (in[i + 1] == '2' && in[i + 2] == 'C')
                ch = ',';
            else if (in[i + 1] == '3' && in[i + 2] == 'D')
                ch = '=';
            else
                return false;
            i += 2;
        }
        if (o + 1 >= cap)
            return false;
        out[o++] = ch;
    }
    out[o] = '\0';
    return true;
}

bool
emu_scram_start(emu_scram_t *s, emu_scram_mech_t mech, const char *in, size_t in_len,
                const emu_user_t *(*find_user)(const char *name), const char *fixed_nonce,
                char *out, size_t out_size, const char **why)
{
    memset(s, 0, sizeof *s);
    s->mech = mech;
    /* gs2 header: "n,," or "y,," with an optional "a=authzid" that mongod ignores. */
    if (in_len < 3 || (in[0] != 'n' && in[0] != 'y')) {
        *why = in_len && in[0] == 'p' ? "Server does not support channel binding"
                                      : "invalid gs2 header";
        return false;
    }
    if (in[1] != ',') {
        *why = "invalid gs2 header";
        return false;
    }
    const char *second = memchr(in + 2, ',', in_len - 2);
    if (!second) {
        *why = "invalid gs2 header";
        return false;
    }
    const char *bare = second + 1;
    size_t bare_len = in_len - (size_t)(bare - in);
    if (bare_len >= sizeof s->client_first_bare) {
        *why = "client-first message too long";
        return false;
    }
    if (bare_len >= 2 && bare[0] == 'm' && bare[1] == '=') {
        *why = "SCRAM mandatory extensions are not supported";
        return false;
    }
    size_t ulen = 0, nlen = 0;
    const char *uname = attr(bare, bare_len, 'n', &ulen);
    const char *cnonce = attr(bare, bare_len, 'r', &nlen);
    if (!uname || ulen == 0 || !cnonce || nlen < 4 || nlen > 128 ||
        !decode_saslname(uname, ulen, s->user_name, sizeof s->user_name)) {
        *why = "invalid client-first message";
        return false;
    }
    memcpy(s->client_first_bare, bare, bare_len);
    s->client_first_bare[bare_len] = '\0';
    s->user = find_user(s->user_name);
    if (!s->user) {
        *why = "unknown user";
        return false;
    }
    char snonce[64];
    if (fixed_nonce) {
        snprintf(snonce, sizeof snonce, "%s", fixed_nonce);
    } else {
        uint8_t rnd[24];
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            *why = "no random bytes";
            return false;
        }
        b64_encode(rnd, sizeof rnd, snonce);
    }
    snprintf(s->nonce, sizeof s->nonce, "%.*s%s", (int)nlen, cnonce, snonce);
    const emu_scram_cred_t *c = &s->user->cred[mech];
    char salt64[64];
    b64_encode(c->salt, c->salt_len, salt64);
    int w = snprintf(s->server_first, sizeof s->server_first, "r=%s,s=%s,i=%d", s->nonce, salt64,
                     c->iterations);
    if (w < 0 || (size_t)w >= sizeof s->server_first || (size_t)w >= out_size) {
        *why = "server-first message too long";
        return false;
    }
    memcpy(out, s->server_first, (size_t)w + 1);
    s->step = 1;
    return true;
}

bool
emu_scram_continue(emu_scram_t *s, const char *in, size_t in_len, char *out, size_t out_size,
                   const char **why)
{
    if (s->step != 1 || !s->user) {
        *why = "no SCRAM conversation in progress";
        return false;
    }
    s->step = 0; /* any failure ends the conversation */
    size_t plen = 0, rlen = 0, clen = 0;
    const char *proof = attr(in, in_len, 'p', &plen);
    const char *nonce = attr(in, in_len, 'r', &rlen);
    const char *cbind = attr(in, in_len, 'c', &clen);
    if (!proof || !nonce || !cbind || proof < in + 3 || proof[-3] != ',') {
        *why = "invalid client-final message";
        return false;
    }
    if (rlen != strlen(s->nonce) || memcmp(nonce, s->nonce, rlen) != 0) {
        *why = "nonce mismatch";
        return false;
    }
    /* "biws" is base64 of "n,,"; "eSws" of "y,,". mongod accepts both (no channel binding). */
    if (!(clen == 4 && (memcmp(cbind, "biws", 4) == 0 || memcmp(cbind, "eSws", 4) == 0))) {
        *why = "channel binding mismatch";
        return false;
    }
    const emu_scram_cred_t *c = &s->user->cred[s->mech];
    size_t hl = hash_len(s->mech);
    uint8_t client_proof[48];
    long n = b64_decode(proof, plen, client_proof, sizeof client_proof);
    if (n != (long)hl) {
        *why = "invalid proof";
        return false;
    }
    /* AuthMessage = client-first-bare "," server-first "," client-final-without-proof. */
    size_t without_proof = (size_t)(proof - 3 - in);
    char auth_msg[1536];
    int w = snprintf(auth_msg, sizeof auth_msg, "%s,%s,%.*s", s->client_first_bare, s->server_first,
                     (int)without_proof, in);
    if (w < 0 || (size_t)w >= sizeof auth_msg) {
        *why = "client-final message too long";
        return false;
    }
    uint8_t signature[32], client_key[32], stored[32];
    hmac(s->mech, c->stored_key, hl, auth_msg, (size_t)w, signature);
    for (size_t i = 0; i < hl; i++)
        client_key[i] = client_proof[i] ^ signature[i];
    digest(s->mech, client_key, hl, stored);
    if (CRYPTO_memcmp(stored, c->stored_key, hl) != 0) {
        *why = "wrong password";
        return false;
    }
    uint8_t server_sig[32];
    hmac(s->mech, c->server_key, hl, auth_msg, (size_t)w, server_sig);
    char sig64[64];
    b64_encode(server_sig, hl, sig64);
    if ((size_t)snprintf(out, out_size, "v=%s", sig64) >= out_size) {
        *why = "output too small";
        return false;
    }
    s->step = 2;
    return true;
}
