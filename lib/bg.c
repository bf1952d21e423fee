/* bg.c -- a counted set of short-lived threads for blocking work (the
 * transport's first dials and link closes); see bg.h.
 */
#include "bg.h"

#include "skc/skc.h"

#include <stdlib.h>

void
skci_bg_init(skci_bg *bg)
{
    pthread_mutex_init(&bg->lk, NULL);
    pthread_cond_init(&bg->idle, NULL);
}

/* Joins the threads that have ended (each calls skci_bg_done as its last
 * act and takes no lock after it, so joining never waits long). */
static void
bg_join_finished(skci_bg *bg)
{
    pthread_mutex_lock(&bg->lk);
    pthread_t *v = bg->fin;
    size_t cnt = bg->nfin;
    bg->fin = NULL;
    bg->nfin = bg->capfin = 0;
    pthread_mutex_unlock(&bg->lk);
    for (size_t i = 0; i < cnt; i++) {
        pthread_join(v[i], NULL);
    }
    free(v);
}

int
skci_bg_run(skci_bg *bg, void *(*fn)(void *), void *arg)
{
    bg_join_finished(bg);
    pthread_mutex_lock(&bg->lk);
    bg->count++;
    pthread_mutex_unlock(&bg->lk);
    pthread_t t;
    if (pthread_create(&t, NULL, fn, arg) != 0) {
        pthread_mutex_lock(&bg->lk);
        if (--bg->count == 0) {
            pthread_cond_broadcast(&bg->idle);
        }
        pthread_mutex_unlock(&bg->lk);
        return SKC_ENOMEM;
    }
    return 0;
}

void
skci_bg_done(skci_bg *bg)
{
    pthread_mutex_lock(&bg->lk);
    if (bg->nfin == bg->capfin) {
        size_t nc = bg->capfin ? bg->capfin * 2 : 8;
        pthread_t *v = realloc(bg->fin, nc * sizeof(*v));
        if (v != NULL) {
            bg->fin = v;
            bg->capfin = nc;
        }
    }
    if (bg->nfin < bg->capfin) {
        bg->fin[bg->nfin++] = pthread_self();
    } else {
        pthread_detach(pthread_self()); /* no memory to be joined */
    }
    if (--bg->count == 0) {
        pthread_cond_broadcast(&bg->idle);
    }
    pthread_mutex_unlock(&bg->lk);
}

void
skci_bg_drain(skci_bg *bg)
{
    pthread_mutex_lock(&bg->lk);
    while (bg->count > 0) {
        pthread_cond_wait(&bg->idle, &bg->lk);
    }
    pthread_mutex_unlock(&bg->lk);
    bg_join_finished(bg);
}

void
skci_bg_fini(skci_bg *bg)
{
    free(bg->fin);
    pthread_cond_destroy(&bg->idle);
    pthread_mutex_destroy(&bg->lk);
}
