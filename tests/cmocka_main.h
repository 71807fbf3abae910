/* cmocka_main.h: the one main() every unit-test binary shares. With an argument it runs only the
 * case of that name (ctest registers one test per case); without, it runs them all. */
#ifndef DC_CMOCKA_MAIN_H
#define DC_CMOCKA_MAIN_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define DC_CMOCKA_MAIN(tests)                                                                      \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        if (argc > 1)                                                                              \
            cmocka_set_test_filter(argv[1]);                                                       \
        return cmocka_run_group_tests(tests, NULL, NULL);                                          \
    }

/* The same, with a group setup and teardown (e.g. starting docdb-emu once per process). */
#define DC_CMOCKA_GROUP_MAIN(tests, setup, teardown)                                               \
    int main(int argc, char **argv)                                                                \
    {                                                                                              \
        if (argc > 1)                                                                              \
            cmocka_set_test_filter(argv[1]);                                                       \
        return cmocka_run_group_tests(tests, setup, teardown);                                     \
    }

#endif
