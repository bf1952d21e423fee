/* watch.c -- a map file that reloads itself: a thread waits (inotify) for
 * changes in the file's directory and reloads the map when the file's
 * identity or contents changed (in-place edits, atomic renames, symlink
 * swaps), then tells the node's reload callback.
 *
 * The thread takes no skc lock while it waits; a reload is an ordinary
 * merge (mapapply.c).  watch.lock guards the fields below and is taken
 * with no other skc lock held.
 */
#include "core.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

/* Changes that come in a burst (an editor writing in steps) are read
 * once they have been quiet this long. */
#define SETTLE_MS 100

/* A reload's outcome, handed to the callback by a dispatch task. */
typedef struct reload_note {
    skci_task task;
    skc_map_reload_fn fn;
    void *arg;
    int status;
    char detail[];
} reload_note;

static void
note_run(skc_node *n, skci_task *t)
{
    reload_note *r = (reload_note *)t;
    skc_node *prev = skci_current_node;
    skci_current_node = n;
    r->fn(r->arg, r->status, r->detail);
    skci_current_node = prev;
    free(r);
}

/* What identifies the file's contents for us: a rename or an edit changes
 * one of these. */
struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    int exists;
};

static struct file_id
file_id_of(const char *path)
{
    struct file_id id = { 0 };
    struct stat st;
    if (stat(path, &st) == 0) {
        id.dev = st.st_dev;
        id.ino = st.st_ino;
        id.size = st.st_size;
        id.mtime = st.st_mtim;
        id.exists = 1;
    }
    return id;
}

static int
file_id_same(const struct file_id *a, const struct file_id *b)
{
    return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
        a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
        a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static void
reload_now(skc_node *n, const char *path)
{
    int rc = skci_map_reload_from(n, path);
    char detail[SKCI_DETAIL_MAX];
    snprintf(detail, sizeof(detail), "%s", rc ? skc_last_error() : path);
    if (rc != 0) {
        skci_node_log(n, SKC_LOG_WARN,
            "cluster map %s changed but was not applied: %s", path, detail);
    } else {
        skci_node_log(n, SKC_LOG_INFO, "cluster map reloaded from %s", path);
    }
    pthread_mutex_lock(&n->watch.lock);
    skc_map_reload_fn fn = n->watch.fn;
    void *arg = n->watch.arg;
    pthread_mutex_unlock(&n->watch.lock);
    if (fn == NULL) {
        return;
    }
    size_t dl = strlen(detail) + 1;
    reload_note *r = calloc(1, sizeof(*r) + dl);
    if (r == NULL) {
        return;
    }
    r->task.run = note_run;
    r->fn = fn;
    r->arg = arg;
    r->status = rc;
    memcpy(r->detail, detail, dl);
    skci_dispatch_push(n, &r->task);
}

/* Drains the inotify descriptor: 0 nothing read, 1 events about other
 * names only, 2 an event about the file's own name. */
static int
drain(int fd, const char *base)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    int seen = 0;
    ssize_t len;
    while ((len = read(fd, buf, sizeof(buf))) > 0) {
        for (char *p = buf; p < buf + len;) {
            struct inotify_event *e = (struct inotify_event *)p;
            int mine = e->len > 0 && strcmp(e->name, base) == 0;
            seen = mine ? 2 : seen > 1 ? seen : 1;
            p += sizeof(*e) + e->len;
        }
    }
    return seen;
}

static void *
watch_main(void *arg)
{
    skc_node *n = arg;
    struct pollfd pf[2] = {
        { .fd = n->watch.ifd, .events = POLLIN },
        { .fd = n->watch.efd, .events = POLLIN },
    };
    const char *slash = strrchr(n->watch.path, '/');
    const char *base = slash != NULL ? slash + 1 : n->watch.path;
    struct file_id last = file_id_of(n->watch.path);
    int pending = 0; /* 1: something in the directory; 2: the file */
    for (;;) {
        int r = poll(pf, 2, pending ? SETTLE_MS : -1);
        if (r < 0 && errno != EINTR) {
            break;
        }
        if (pf[1].revents != 0) {
            break; /* stop */
        }
        int got =
            r > 0 && (pf[0].revents & POLLIN) ? drain(pf[0].fd, base) : 0;
        if (got > 0) {
            pending = got > pending ? got : pending;
            continue; /* wait until the burst settles */
        }
        if (r == 0 && pending) {
            /* The file's own name changed, or another name (a symlink the
             * path goes through) made it another file. */
            struct file_id now = file_id_of(n->watch.path);
            int changed =
                now.exists && (pending == 2 || !file_id_same(&now, &last));
            pending = 0;
            last = now;
            if (changed) {
                reload_now(n, n->watch.path);
            }
        }
    }
    return NULL;
}

/* Stops the thread (watch.lock not held). */
static void
watch_stop(skc_node *n)
{
    if (!n->watch.running) {
        return;
    }
    uint64_t one = 1;
    if (write(n->watch.efd, &one, sizeof(one)) < 0) {
        /* an eventfd write only fails on overflow; the thread is woken */
    }
    pthread_join(n->watch.thread, NULL);
    close(n->watch.ifd);
    close(n->watch.efd);
    free(n->watch.path);
    n->watch.path = NULL;
    n->watch.running = 0;
}

/* Starts watching path's directory.  0 or an error (detail set). */
static int
watch_start(skc_node *n, const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == path) {
        snprintf(dir, sizeof(dir), "/");
    } else {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    }
    n->watch.ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (n->watch.ifd < 0) {
        return skci_error(SKC_EIO, "inotify: %s", strerror(errno));
    }
    if (inotify_add_watch(n->watch.ifd, dir,
            IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY | IN_ATTRIB |
                IN_DELETE) < 0) {
        int e = errno;
        close(n->watch.ifd);
        return skci_error(SKC_EIO, "watch %s: %s", dir, strerror(e));
    }
    n->watch.efd = eventfd(0, EFD_CLOEXEC);
    if (n->watch.efd < 0 || (n->watch.path = skci_strdup(path)) == NULL) {
        close(n->watch.ifd);
        if (n->watch.efd >= 0) {
            close(n->watch.efd);
        }
        return skci_error(SKC_ENOMEM, "map watch");
    }
    if (pthread_create(&n->watch.thread, NULL, watch_main, n) != 0) {
        close(n->watch.ifd);
        close(n->watch.efd);
        free(n->watch.path);
        n->watch.path = NULL;
        return skci_error(SKC_ENOMEM, "cannot start the map watch thread");
    }
    n->watch.running = 1;
    return 0;
}

void
skci_watch_init(skc_node *n)
{
    pthread_mutex_init(&n->watch.lock, NULL);
    pthread_mutex_init(&n->watch.ctl, NULL);
}

void
skci_watch_fini(skc_node *n)
{
    pthread_mutex_lock(&n->watch.ctl);
    watch_stop(n);
    pthread_mutex_unlock(&n->watch.ctl);
    /* the mutexes go with the node (core.c) */
}

int
skc_node_map_watch(skc_node *node, int on, skc_map_reload_fn fn, void *arg)
{
    int rc;
    if ((rc = skci_node_check(node)) != 0) {
        return rc;
    }
    char *path = NULL;
    if (on) {
        skci_call_lock(node);
        path = skci_strdup(node->peers.map_path);
        skci_call_unlock(node);
        if (path == NULL) {
            return skci_error(SKC_ESTATE,
                "node '%s' has no cluster map file to watch (load one with skc_node_map_load)",
                node->name);
        }
    }
    pthread_mutex_lock(&node->watch.ctl);
    watch_stop(node);
    pthread_mutex_lock(&node->watch.lock);
    node->watch.fn = on ? fn : NULL;
    node->watch.arg = on ? arg : NULL;
    pthread_mutex_unlock(&node->watch.lock);
    rc = on ? watch_start(node, path) : 0;
    pthread_mutex_unlock(&node->watch.ctl);
    free(path);
    return rc;
}

void
skci_watch_path_changed(skc_node *n)
{
    pthread_mutex_lock(&n->watch.ctl);
    int running = n->watch.running;
    pthread_mutex_unlock(&n->watch.ctl);
    if (!running) {
        return;
    }
    pthread_mutex_lock(&n->watch.lock);
    skc_map_reload_fn fn = n->watch.fn;
    void *arg = n->watch.arg;
    pthread_mutex_unlock(&n->watch.lock);
    if (skc_node_map_watch(n, 1, fn, arg) != 0) {
        skci_node_log(
            n, SKC_LOG_WARN, "cluster map watch: %s", skc_last_error());
    }
}
