/* waits.h -- the clock and the bounded, scaled waits the api tests share
 * (header-only; each test is one program).  Waits are multiplied by
 * SKC_SYS_SLOW (default 1), as the system tests' are. */
#ifndef SKC_TEST_API_WAITS_H
#define SKC_TEST_API_WAITS_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline int
scaled(int ms)
{
    const char *s = getenv("SKC_SYS_SLOW");
    int k = s != NULL ? atoi(s) : 1;
    return ms * (k > 0 ? k : 1);
}

static inline int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

#endif
