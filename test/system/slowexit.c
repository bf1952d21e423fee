/* slowexit.c -- LD_PRELOAD fault injection for sys_exitrace: every
 * detached thread skc starts lingers 1 s after its start routine returns,
 * as a thread may when the scheduler runs something else at that moment.
 * A library that signals "finished" from inside a detached thread and
 * lets the program exit then is caught: the thread is still alive at
 * exit.  Joinable threads are left alone: lingering there would only
 * slow the joiner down, and give the detached ones time to finish.
 *
 * libskc calls pthread_create@GLIBC_2.34 (glibc >= 2.34), a versioned
 * reference that an unversioned definition would not capture, hence the
 * .symver and slowexit.map.  NNG's own threads (GLIBC_2.2.5) are left
 * alone. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *,
    void *(*)(void *), void *);

struct trampoline {
    void *(*fn)(void *);
    void *arg;
};


static void *
linger(void *arg)
{
    struct trampoline t = *(struct trampoline *)arg;
    free(arg);
    void *rv = t.fn(t.arg);
    struct timespec ts = { 1, 0 };
    nanosleep(&ts, NULL);
    return rv;
}

/* default visibility: the build hides symbols unless told otherwise */
__attribute__((visibility("default"))) int slowexit_pthread_create(
    pthread_t *th, const pthread_attr_t *attr, void *(*fn)(void *),
    void *arg);

int
slowexit_pthread_create(pthread_t *th, const pthread_attr_t *attr,
    void *(*fn)(void *), void *arg)
{
    static create_fn real;
    if (real == NULL) {
        real = (create_fn)dlvsym(RTLD_NEXT, "pthread_create", "GLIBC_2.34");
    }
    int detached = PTHREAD_CREATE_JOINABLE;
    if (attr != NULL &&
        pthread_attr_getdetachstate(attr, &detached) != 0) {
        detached = PTHREAD_CREATE_JOINABLE;
    }
    if (detached != PTHREAD_CREATE_DETACHED) {
        return real(th, attr, fn, arg);
    }
    struct trampoline *t = malloc(sizeof(*t));
    if (t == NULL) {
        return real(th, attr, fn, arg);
    }
    t->fn = fn;
    t->arg = arg;
    int rc = real(th, attr, linger, t);
    if (rc != 0) {
        free(t);
    }
    return rc;
}
__asm__(".symver slowexit_pthread_create,pthread_create@@GLIBC_2.34");
