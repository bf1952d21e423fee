/* bg.c -- background threads for NNG work that must not run under
 * call_lock or on NNG's own threads (dials, link closes); see skci_bg.
 */
#include "core.h"

#include <stdlib.h>

void
skci_bg_init(skc_node *n)
{
    pthread_mutex_init(&n->bg.lk, NULL);
    pthread_cond_init(&n->bg.idle, NULL);
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
skci_bg_run(skc_node *n, void *(*fn)(void *), void *arg)
{
    skci_bg *bg = &n->bg;
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
skci_bg_done(skc_node *n)
{
    skci_bg *bg = &n->bg;
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
skci_bg_drain(skc_node *n)
{
    skci_bg *bg = &n->bg;
    pthread_mutex_lock(&bg->lk);
    while (bg->count > 0) {
        pthread_cond_wait(&bg->idle, &bg->lk);
    }
    pthread_mutex_unlock(&bg->lk);
    bg_join_finished(bg);
}

void
skci_bg_fini(skc_node *n)
{
    free(n->bg.fin);
    pthread_cond_destroy(&n->bg.idle);
    pthread_mutex_destroy(&n->bg.lk);
}
