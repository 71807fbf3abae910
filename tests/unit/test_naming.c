/* test_naming.c: tests of destination naming (naming.c): Fivetran's rules (transliteration,
 * snake_case, '_' handling, table-only rules), SOURCE naming, and concurrent use of the shared
 * ICU transliterator. Expected names follow the rules in docs/types.md. */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/naming.h"

#include "cmocka_main.h"

typedef struct {
    const char *source;
    const char *column; /* Fivetran naming, is_table = false */
    const char *table;  /* Fivetran naming, is_table = true */
} name_case_t;

static const name_case_t name_cases[] = {
    {"Users", "users", "users"},
    {"users", "users", "users"},
    {"UPPER", "upper", "upper"},
    {"orderItems", "order_items", "order_items"},
    {"order", "order", "order"},
    {"createdAt", "created_at", "created_at"},
    {"userID", "user_id", "user_id"},
    {"HTTPServer", "http_server", "http_server"},
    {"ABc", "a_bc", "a_bc"},
    {"MixedCASE_Name", "mixed_case_name", "mixed_case_name"},
    {"item2Name", "item2_name", "item2_name"},
    {"v2Beta", "v2_beta", "v2_beta"},
    {"x1", "x1", "x1"},
    {"already_snake_case", "already_snake_case", "already_snake_case"},
    {"2fa", "_2fa", "_2fa"},
    {"123", "_123", "_123"},
    {"_2fa", "_2fa", "_2fa"}, /* a digit follows: the table keeps its '_' */
    {"_id", "_id", "id"},
    {"__private", "_private", "private"},
    {"_Users", "_users", "users"},
    {"$weird.name here", "_weird_name_here", "weird_name_here"},
    {"a.b.c", "a_b_c", "a_b_c"},
    {"-a", "_a", "a"},
    {"name$", "name_", "name_"},
    {"a--b__c", "a_b_c", "a_b_c"},
    {"a _-_ b", "a_b", "a_b"},
    {"Café Ünïcode", "cafe_unicode", "cafe_unicode"},
    {"Straße", "strasse", "strasse"},
    {"ÆON", "aeon", "aeon"},
    {"über", "uber", "uber"},
    {"日本", "ri_ben", "ri_ben"},
    {"Привет мир", "privet_mir", "privet_mir"},
    {"αβγ", "abg", "abg"},
    {"\xf0\x9f\x99\x82x", "_x", "x"}, /* an emoji has no Latin form */
    {"\xff\xfe", "_", "_"},           /* invalid UTF-8 */
    {"", "_", "_"},                   /* never "" */
    {"_", "_", "_"},
    {"___", "_", "_"},
    {"__1", "_1", "_1"},
    {"$", "_", "_"},
};

static void
check(const char *source, bool is_table, dc_naming_t naming, const char *expected)
{
    char *got = dc_name(source, is_table, naming);
    assert_non_null(got);
    if (strcmp(got, expected) != 0)
        fail_msg("%s name of \"%s\" (%s): got \"%s\", expected \"%s\"",
                 naming == DC_NAMING_SOURCE ? "source" : "Fivetran", source,
                 is_table ? "table" : "column", got, expected);
    free(got);
}

static void
test_fivetran_names(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof name_cases / sizeof name_cases[0]; k++) {
        check(name_cases[k].source, false, DC_NAMING_FIVETRAN, name_cases[k].column);
        check(name_cases[k].source, true, DC_NAMING_FIVETRAN, name_cases[k].table);
    }
}

static void
test_source_names(void **state)
{
    (void)state;
    static const char *const same[] = {
        "orderItems", "$weird.name here", "日本", "__private", "_id", "A b", "\xff"};
    for (size_t k = 0; k < sizeof same / sizeof same[0]; k++) {
        check(same[k], false, DC_NAMING_SOURCE, same[k]);
        check(same[k], true, DC_NAMING_SOURCE, same[k]);
    }
    check("", false, DC_NAMING_SOURCE, "_");
    check("", true, DC_NAMING_SOURCE, "_");
}

static void
test_null_source(void **state)
{
    (void)state;
    char *a = dc_name(NULL, false, DC_NAMING_FIVETRAN), *b = dc_name(NULL, true, DC_NAMING_SOURCE);
    assert_string_equal(a, "_");
    assert_string_equal(b, "_");
    free(a);
    free(b);
}

/* A long name, and one that grows under transliteration (each Han character becomes a
 * syllable). */
static void
test_long_names(void **state)
{
    (void)state;
    enum { N = 2000 };
    char *src = malloc(3 * N + 1), *want = malloc(4 * N + 1);
    assert_non_null(src);
    assert_non_null(want);
    for (int i = 0; i < N; i++)
        memcpy(src + 2 * i, "aB", 2);
    src[2 * N] = '\0';
    /* "aBaB..." splits before every B: "a_ba_b..." */
    for (int i = 0; i < N; i++)
        memcpy(want + 3 * i, "a_b", 3);
    want[3 * N] = '\0';
    check(src, false, DC_NAMING_FIVETRAN, want);

    for (int i = 0; i < N; i++)
        memcpy(src + 3 * i, "\xe6\x97\xa5", 3); /* 日 */
    src[3 * N] = '\0';
    char *got = dc_name(src, false, DC_NAMING_FIVETRAN);
    /* "ri_ri_..._ri" */
    assert_int_equal(strlen(got), 3 * N - 1);
    for (int i = 0; i < N; i++) {
        assert_memory_equal(got + 3 * i, "ri", 2);
        if (i + 1 < N)
            assert_int_equal(got[3 * i + 2], '_');
    }
    free(got);
    free(src);
    free(want);
}

/* Many threads share the one transliterator. */
enum { THREADS = 8, ROUNDS = 200 };

static void *
naming_thread(void *arg)
{
    int *failures = arg;
    for (int i = 0; i < ROUNDS; i++) {
        char *a = dc_name("Café Ünïcode", false, DC_NAMING_FIVETRAN);
        char *b = dc_name("日本", true, DC_NAMING_FIVETRAN);
        if (strcmp(a, "cafe_unicode") != 0 || strcmp(b, "ri_ben") != 0)
            (*failures)++;
        free(a);
        free(b);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    int failures[THREADS] = {0};
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, naming_thread, &failures[i]), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(failures[i], 0);
    }
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fivetran_names), cmocka_unit_test(test_source_names),
    cmocka_unit_test(test_null_source),    cmocka_unit_test(test_long_names),
    cmocka_unit_test(test_threads),
};

DC_CMOCKA_MAIN(tests)
