/* drain.c: the source limit of the benchmarks: a libmongoc client that reads whole collections
 * with large batches and does nothing with the documents. Prints documents, bytes and the
 * rate per collection. */
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    if (argc < 4) {
        fputs("usage: docdb-drain URI DATABASE COLLECTION... (env DRAIN_BATCH, default 50000)\n",
              stderr);
        return 2;
    }
    const char *batch_env = getenv("DRAIN_BATCH");
    int batch = batch_env ? atoi(batch_env) : 50000;
    mongoc_init();
    bson_error_t error;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &error);
    if (!uri) {
        fputs("docdb-drain: invalid URI\n", stderr);
        return 2;
    }
    mongoc_client_t *client = mongoc_client_new_from_uri(uri);
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    int rc = 0;
    for (int i = 3; i < argc; i++) {
        mongoc_collection_t *coll = mongoc_client_get_collection(client, argv[2], argv[i]);
        bson_t filter = BSON_INITIALIZER;
        bson_t *opts = BCON_NEW("batchSize", BCON_INT32(batch));
        double t0 = now_s();
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, &filter, opts, NULL);
        const bson_t *doc;
        uint64_t n = 0, bytes = 0;
        while (mongoc_cursor_next(cur, &doc)) {
            n++;
            bytes += doc->len;
        }
        double dt = now_s() - t0;
        if (mongoc_cursor_error(cur, &error)) {
            fprintf(stderr, "docdb-drain: %s: %s\n", argv[i], error.message);
            rc = 1;
        }
        printf("{\"collection\": \"%s\", \"documents\": %llu, \"bytes\": %llu, \"seconds\": %.3f, "
               "\"docs_per_s\": %.0f}\n",
               argv[i], (unsigned long long)n, (unsigned long long)bytes, dt, n / dt);
        mongoc_cursor_destroy(cur);
        bson_destroy(opts);
        mongoc_collection_destroy(coll);
    }
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return rc;
}
