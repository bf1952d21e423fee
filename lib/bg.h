/* bg.h -- a counted set of short-lived threads for blocking work that must
 * not run on the caller's thread (transport: first dials, link closes).
 *
 * Each thread ends with skci_bg_done; skci_bg_drain waits for all of them
 * and joins them.  lk is a leaf: nothing is called under it.
 */
#ifndef SKC_LIB_BG_H
#define SKC_LIB_BG_H

#include <pthread.h>
#include <stddef.h>

typedef struct skci_bg {
    pthread_mutex_t lk;
    pthread_cond_t idle; /* count reached 0 */
    int count;           /* under lk: threads running */
    pthread_t *fin;      /* under lk: ended, not yet joined */
    size_t nfin, capfin;
} skci_bg;

void skci_bg_init(skci_bg *bg);
/* Runs fn(arg) on a new thread counted in bg; fn must end with
 * skci_bg_done(bg).  0, or SKC_ENOMEM (fn not run). */
int skci_bg_run(skci_bg *bg, void *(*fn)(void *), void *arg);
/* The last thing a background thread does. */
void skci_bg_done(skci_bg *bg);
/* Waits for every thread to end and joins it. */
void skci_bg_drain(skci_bg *bg);
void skci_bg_fini(skci_bg *bg);

#endif
