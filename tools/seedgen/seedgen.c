/* seedgen.c: fills a MongoDB-compatible server with data shaped like the Fivetran DocumentDB
 * example's collections (users and orders), through the wire protocol, deterministically from
 * a seed. Used by the demo, the benchmarks and the connector's tests. */
#include <errno.h>
#include <getopt.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const first_names[] = {"Ada", "Grace", "Alan",  "Edsger", "Barbara",
                                          "Ken", "Linus", "Radia", "Donald", "Frances"};
static const char *const last_names[] = {"Lovelace", "Hopper",   "Turing",  "Dijkstra", "Liskov",
                                         "Thompson", "Torvalds", "Perlman", "Knuth",    "Allen"};
static const char *const user_status[] = {"active", "inactive", "pending"};
static const char *const order_status[] = {"placed", "paid", "shipped", "delivered", "cancelled"};
static const char *const sources[] = {"web", "ios", "android", "partner"};
static const char *const products[] = {"keyboard", "mouse",  "monitor", "cable", "dock",
                                       "headset",  "webcam", "chair",   "desk",  "lamp"};

/* xorshift64*: small, fast and reproducible across platforms. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t
rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

static int
rnd_int(int lo, int hi)
{
    return lo + (int)(rnd() % (uint64_t)(hi - lo + 1));
}

#define PICK(a) (a[rnd() % (sizeof(a) / sizeof(a[0]))])

/* BSON_APPEND_UTF8 evaluates its value twice (strlen, then the copy): never pass PICK to it. */
static void
append_pick(bson_t *doc, const char *key, const char *value)
{
    bson_append_utf8(doc, key, -1, value, -1);
}

/* 2024-01-01T00:00:00Z plus up to a year, in milliseconds. */
static int64_t
rnd_date(void)
{
    return 1704067200000LL + (int64_t)(rnd() % (365ull * 86400000ull));
}

/* Deterministic ObjectIds: the kind and the sequence number in the 12 bytes. */
static void
make_oid(bson_oid_t *oid, uint8_t kind, uint64_t n)
{
    memset(oid->bytes, 0, 12);
    oid->bytes[0] = 0x65; /* a 2023-2024 timestamp prefix, as real ObjectIds have */
    oid->bytes[3] = kind;
    for (int i = 0; i < 8; i++)
        oid->bytes[11 - i] = (uint8_t)(n >> (8 * i));
}

static void
make_user(bson_t *doc, uint64_t i)
{
    bson_oid_t oid;
    char name[64], email[96];
    const char *first = PICK(first_names), *last = PICK(last_names);
    int64_t created = rnd_date();
    make_oid(&oid, 1, i);
    snprintf(name, sizeof name, "%s %s", first, last);
    snprintf(email, sizeof email, "%s.%s.%llu@example.com", first, last, (unsigned long long)i);
    for (char *p = email; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    BSON_APPEND_OID(doc, "_id", &oid);
    BSON_APPEND_UTF8(doc, "name", name);
    BSON_APPEND_UTF8(doc, "email", email);
    append_pick(doc, "status", PICK(user_status));
    BSON_APPEND_DATE_TIME(doc, "created_at", created);
    BSON_APPEND_DATE_TIME(doc, "updated_at", created + (int64_t)(rnd() % 86400000ull * 30));
    bson_t meta, tags, prefs;
    BSON_APPEND_DOCUMENT_BEGIN(doc, "metadata", &meta);
    append_pick(&meta, "signup_source", PICK(sources));
    BSON_APPEND_ARRAY_BEGIN(&meta, "tags", &tags);
    int ntags = rnd_int(0, 3);
    for (int t = 0; t < ntags; t++) {
        char key[16], tag[16];
        snprintf(key, sizeof key, "%d", t);
        snprintf(tag, sizeof tag, "tag-%d", rnd_int(1, 50));
        BSON_APPEND_UTF8(&tags, key, tag);
    }
    bson_append_array_end(&meta, &tags);
    BSON_APPEND_DOUBLE(&meta, "score", (double)rnd_int(0, 10000) / 100.0);
    BSON_APPEND_DOCUMENT_BEGIN(&meta, "preferences", &prefs);
    BSON_APPEND_BOOL(&prefs, "newsletter", rnd() & 1);
    append_pick(&prefs, "language", rnd() & 1 ? "en" : "de");
    bson_append_document_end(&meta, &prefs);
    bson_append_document_end(doc, &meta);
}

static void
make_order(bson_t *doc, uint64_t i, uint64_t nusers)
{
    bson_oid_t oid, user;
    char number[32];
    int64_t created = rnd_date();
    make_oid(&oid, 2, i);
    make_oid(&user, 1, nusers ? rnd() % nusers : 0);
    snprintf(number, sizeof number, "ORD-%08llu", (unsigned long long)i);
    BSON_APPEND_OID(doc, "_id", &oid);
    BSON_APPEND_OID(doc, "user_id", &user);
    BSON_APPEND_UTF8(doc, "order_number", number);
    append_pick(doc, "status", PICK(order_status));
    BSON_APPEND_DATE_TIME(doc, "created_at", created);
    BSON_APPEND_DATE_TIME(doc, "updated_at", created + (int64_t)(rnd() % 86400000ull * 10));
    bson_t items;
    int nitems = rnd_int(1, 5);
    int64_t total_cents = 0;
    BSON_APPEND_ARRAY_BEGIN(doc, "items", &items);
    for (int k = 0; k < nitems; k++) {
        char key[16];
        bson_t item;
        int qty = rnd_int(1, 4), cents = rnd_int(199, 49999);
        snprintf(key, sizeof key, "%d", k);
        BSON_APPEND_DOCUMENT_BEGIN(&items, key, &item);
        append_pick(&item, "product", PICK(products));
        BSON_APPEND_INT32(&item, "quantity", qty);
        BSON_APPEND_DOUBLE(&item, "price", cents / 100.0);
        bson_append_document_end(&items, &item);
        total_cents += (int64_t)qty * cents;
    }
    bson_append_array_end(doc, &items);
    BSON_APPEND_DOUBLE(doc, "total_amount", (double)total_cents / 100.0);
}

static bool
fill(mongoc_collection_t *coll, uint64_t n, int batch, uint64_t nusers, bool users)
{
    bson_t **docs = bson_malloc0((size_t)batch * sizeof *docs);
    bson_error_t error;
    bool ok = true;
    for (uint64_t start = 0; ok && start < n; start += (uint64_t)batch) {
        size_t k = 0;
        for (uint64_t i = start; i < n && k < (size_t)batch; i++, k++) {
            docs[k] = bson_new();
            if (users)
                make_user(docs[k], i);
            else
                make_order(docs[k], i, nusers);
        }
        bson_t opts = BSON_INITIALIZER;
        BSON_APPEND_BOOL(&opts, "ordered", false);
        ok = mongoc_collection_insert_many(coll, (const bson_t **)docs, k, &opts, NULL, &error);
        bson_destroy(&opts);
        if (!ok)
            fprintf(stderr, "seedgen: inserting into %s failed: %s\n",
                    mongoc_collection_get_name(coll), error.message);
        for (size_t j = 0; j < k; j++)
            bson_destroy(docs[j]);
    }
    bson_free(docs);
    return ok;
}

/* Creates the index {updated_at: 1, _id: 1} that docs/ tell DocumentDB users to create for
 * incremental syncs, through createIndexes on the wire, so that servers (docdb-emu included)
 * answer the connector's incremental queries from it. */
static bool
create_cursor_index(mongoc_collection_t *coll)
{
    bson_error_t error;
    bson_t *cmd = BCON_NEW("createIndexes", BCON_UTF8(mongoc_collection_get_name(coll)), "indexes",
                           "[", "{", "key", "{", "updated_at", BCON_INT32(1), "_id", BCON_INT32(1),
                           "}", "name", BCON_UTF8("updated_at_1__id_1"), "}", "]");
    bool ok = mongoc_collection_command_simple(coll, cmd, NULL, NULL, &error);
    if (!ok)
        fprintf(stderr, "seedgen: creating the index on %s failed: %s\n",
                mongoc_collection_get_name(coll), error.message);
    bson_destroy(cmd);
    return ok;
}

/* Changes n users (every k-th, deterministically): status and updated_at = now. */
static bool
touch(mongoc_collection_t *coll, uint64_t n, uint64_t nusers)
{
    bson_error_t error;
    int64_t now = (int64_t)time(NULL) * 1000;
    uint64_t step = n ? (nusers / n ? nusers / n : 1) : 1;
    for (uint64_t k = 0; k < n; k++) {
        bson_oid_t oid;
        make_oid(&oid, 1, (k * step) % (nusers ? nusers : 1));
        bson_t *sel = BCON_NEW("_id", BCON_OID(&oid));
        bson_t *upd = BCON_NEW("$set", "{", "status", BCON_UTF8("active"), "updated_at",
                               BCON_DATE_TIME(now), "}");
        bool ok = mongoc_collection_update_one(coll, sel, upd, NULL, NULL, &error);
        bson_destroy(sel);
        bson_destroy(upd);
        if (!ok) {
            fprintf(stderr, "seedgen: updating users failed: %s\n", error.message);
            return false;
        }
    }
    printf("seedgen: %llu users changed\n", (unsigned long long)n);
    return true;
}

static void
usage(FILE *out)
{
    fputs("usage: docdb-seedgen --uri URI [--database NAME] [--users N] [--orders N]\n"
          "                     [--seed S] [--batch N] [--drop] [--touch N]\n"
          "Inserts users and orders shaped like the Fivetran DocumentDB example's into\n"
          "the database (default 'app'); the same seed gives the same documents. Then\n"
          "creates the index {updated_at: 1, _id: 1} on both, for incremental syncs.\n"
          "With --touch N, inserts nothing and instead changes N of the --users users\n"
          "(status and updated_at = now), as an application would between two syncs.\n",
          out);
}

static bool
parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return false;
    *out = v;
    return true;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"uri", required_argument, NULL, 'u'},   {"database", required_argument, NULL, 'd'},
        {"users", required_argument, NULL, 'U'}, {"orders", required_argument, NULL, 'O'},
        {"seed", required_argument, NULL, 's'},  {"batch", required_argument, NULL, 'b'},
        {"drop", no_argument, NULL, 'D'},        {"help", no_argument, NULL, 'h'},
        {"touch", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
    };
    const char *uri_s = NULL, *db = "app";
    uint64_t nusers = 1000, norders = 1000, seed = 1, batch = 10000;
    bool drop = false;
    uint64_t ntouch = 0;
    bool touching = false;
    int ch, li = 0;
    while ((ch = getopt_long(argc, argv, "", opts, &li)) != -1) {
        bool ok = true;
        switch (ch) {
        case 'u':
            uri_s = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'U':
            ok = parse_u64(optarg, &nusers);
            break;
        case 'O':
            ok = parse_u64(optarg, &norders);
            break;
        case 's':
            ok = parse_u64(optarg, &seed);
            break;
        case 'b':
            ok = parse_u64(optarg, &batch) && batch > 0 && batch <= 100000;
            break;
        case 'D':
            drop = true;
            break;
        case 'T':
            ok = parse_u64(optarg, &ntouch);
            touching = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "seedgen: invalid value '%s' for --%s\n", optarg, opts[li].name);
            return 2;
        }
    }
    if (!uri_s) {
        usage(stderr);
        return 2;
    }
    rng_state ^= seed * 0x2545f4914f6cdd1dull;
    if (!rng_state)
        rng_state = 1;

    mongoc_init();
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(uri_s, &error);
    if (!uri) {
        /* The parser's message may quote the password: say only that the URI is invalid. */
        fputs("seedgen: invalid --uri\n", stderr);
        mongoc_cleanup();
        return 2;
    }
    mongoc_client_t *client = mongoc_client_new_from_uri(uri);
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(client, "docdb-seedgen");
    mongoc_collection_t *users = mongoc_client_get_collection(client, db, "users");
    mongoc_collection_t *orders = mongoc_client_get_collection(client, db, "orders");
    bool ok = true;
    if (drop) {
        mongoc_collection_drop(users, NULL);
        mongoc_collection_drop(orders, NULL);
    }
    if (touching) {
        ok = touch(users, ntouch, nusers);
        goto done;
    }
    /* Indexes are created after the documents, as one would load a real database: one build
     * instead of upkeep on every insert. Empty collections are left uncreated. */
    ok = fill(users, nusers, (int)batch, nusers, true) &&
         fill(orders, norders, (int)batch, nusers, false) &&
         (nusers == 0 || create_cursor_index(users)) &&
         (norders == 0 || create_cursor_index(orders));
    if (ok)
        printf("seedgen: %llu users and %llu orders in database '%s'\n", (unsigned long long)nusers,
               (unsigned long long)norders, db);
done:
    mongoc_collection_destroy(users);
    mongoc_collection_destroy(orders);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return ok ? 0 : 1;
}
