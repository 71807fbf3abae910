/* server.c: the listener and one thread per connection: TLS, reading whole messages, handing
 * commands to emu_dispatch and writing replies. A malformed message closes only its own
 * connection. SIGTERM/SIGINT stop the accept loop; open connections are shut down and joined. */
#define _GNU_SOURCE /* accept4, pipe2 */
#include "cursor.h"
#include "failpoint.h"
#include "server.h"
#include "store.h"
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

emu_config_t emu_config;

static SSL_CTX *tls_ctx;
static int stop_pipe[2] = {-1, -1};
static atomic_llong next_conn_id = 1;

/* Open connections, so that shutdown can wake their threads. */
static pthread_mutex_t conns_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t conns_cv = PTHREAD_COND_INITIALIZER;
static emu_conn_t **conns;
static size_t nconns, conns_cap;
static size_t nthreads;      /* connection threads started and not yet finished */
static emu_conn_t *finished; /* finished connection threads, to be joined */
static bool stopping;

int64_t
emu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    if (write(stop_pipe[1], "x", 1) < 0) {
        /* nothing to do: the pipe is only a wake-up */
    }
    errno = saved;
}

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
logf_(const char *fmt, ...)
{
    if (!emu_config.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("docdb-emu: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Reads exactly n bytes; false on EOF, error or shutdown. */
static bool
read_full(emu_conn_t *c, uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t r;
        if (c->ssl) {
            int chunk = n > INT32_MAX ? INT32_MAX : (int)n;
            r = SSL_read(c->ssl, buf, chunk);
            if (r <= 0)
                return false;
        } else {
            r = recv(c->fd, buf, n, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                return false;
        }
        buf += r;
        n -= (size_t)r;
    }
    return true;
}

static bool
write_full(emu_conn_t *c, const uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t w;
        if (c->ssl) {
            int chunk = n > INT32_MAX ? INT32_MAX : (int)n;
            w = SSL_write(c->ssl, buf, chunk);
            if (w <= 0)
                return false;
        } else {
            w = send(c->fd, buf, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return false;
        }
        buf += w;
        n -= (size_t)w;
    }
    return true;
}

static bool
send_reply(emu_conn_t *c, const emu_header_t *h, bool legacy, const bson_t *reply,
           bool query_failure)
{
    static atomic_int next_request_id = 1;
    uint8_t prefix[64];
    size_t plen = emu_wire_reply_prefix(prefix, legacy, atomic_fetch_add(&next_request_id, 1),
                                        h->request_id, reply->len, query_failure);
    if (c->ssl) {
        /* One TLS record for small replies; two writes would cost a second record. */
        if (reply->len < 16384) {
            uint8_t buf[16384 + 64];
            memcpy(buf, prefix, plen);
            memcpy(buf + plen, bson_get_data(reply), reply->len);
            return write_full(c, buf, plen + reply->len);
        }
        return write_full(c, prefix, plen) && write_full(c, bson_get_data(reply), reply->len);
    }
    struct iovec iov[2] = {{prefix, plen}, {(void *)bson_get_data(reply), reply->len}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
    size_t total = plen + reply->len;
    while (total > 0) {
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        total -= (size_t)w;
        while (w > 0 && mh.msg_iovlen > 0) {
            if ((size_t)w >= mh.msg_iov[0].iov_len) {
                w -= (ssize_t)mh.msg_iov[0].iov_len;
                mh.msg_iov++;
                mh.msg_iovlen--;
            } else {
                mh.msg_iov[0].iov_base = (uint8_t *)mh.msg_iov[0].iov_base + w;
                mh.msg_iov[0].iov_len -= (size_t)w;
                w = 0;
            }
        }
    }
    return true;
}

/* Handles one parsed request; false when the connection must be closed. */
static bool
handle(emu_conn_t *c, const emu_header_t *h, emu_msg_t *m)
{
    bson_t reply = BSON_INITIALIZER;
    bool ok = true;
    if (m->not_a_command) {
        /* Legacy OP_QUERY finds are gone from mongod 5.1 and DocumentDB refuses them. */
        BSON_APPEND_UTF8(&reply, "$err", "Legacy opcodes are not supported");
        BSON_APPEND_INT32(&reply, "code", 352);
        ok = send_reply(c, h, true, &reply, true);
        bson_destroy(&reply);
        return ok;
    }
    emu_cmd_t cmd = {.conn = c, .cmd = &m->cmd, .legacy = m->legacy};
    bson_iter_t it;
    cmd.name = bson_iter_init(&it, &m->cmd) && bson_iter_next(&it) ? bson_iter_key(&it) : "";
    if (m->legacy) {
        cmd.db = m->db;
    } else if (bson_iter_init_find(&it, &m->cmd, "$db") && BSON_ITER_HOLDS_UTF8(&it)) {
        cmd.db = bson_iter_utf8(&it, NULL);
    } else {
        cmd.db = NULL;
    }
    emu_dispatch(&cmd, &reply);
    if (c->closed)
        ok = false;
    else if (!m->more_to_come)
        ok = send_reply(c, h, m->legacy, &reply, false);
    bson_destroy(&reply);
    return ok;
}

static void
serve_connection(emu_conn_t *c)
{
    uint8_t hdr[EMU_HEADER_SIZE];
    uint8_t *body = NULL;
    size_t cap = 0;
    while (read_full(c, hdr, sizeof hdr)) {
        emu_header_t h;
        emu_msg_t m;
        const char *why = NULL;
        emu_wire_header(hdr, &h);
        if (h.length < EMU_HEADER_SIZE + 5 || h.length > EMU_MAX_MESSAGE_SIZE) {
            logf_("connection %lld: message length %d out of bounds; closing", (long long)c->id,
                  h.length);
            break;
        }
        size_t n = (size_t)h.length - EMU_HEADER_SIZE;
        if (n > cap) {
            /* Grow as the client proves it sends: a header alone reserves nothing large. */
            uint8_t *nb = realloc(body, n);
            if (!nb)
                break;
            body = nb;
            cap = n;
        }
        if (!read_full(c, body, n))
            break;
        if (!emu_wire_parse(&h, body, n, &m, &why)) {
            logf_("connection %lld: %s; closing", (long long)c->id, why);
            break;
        }
        bool ok = handle(c, &h, &m);
        bson_destroy(&m.cmd);
        if (!ok)
            break;
        if (cap > 1024 * 1024) {
            /* Do not keep a large buffer for an idle connection. */
            free(body);
            body = NULL;
            cap = 0;
        }
    }
    free(body);
}

static void
conn_register(emu_conn_t *c)
{
    pthread_mutex_lock(&conns_mu);
    if (nconns == conns_cap) {
        conns_cap = conns_cap ? conns_cap * 2 : 64;
        conns = realloc(conns, conns_cap * sizeof *conns);
        if (!conns)
            abort();
    }
    conns[nconns++] = c;
    if (stopping)
        shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&conns_mu);
}

/* Called by a connection thread as its last act: the main thread joins and frees it, so that
 * no thread (and no thread-local OpenSSL state) outlives the server. */
static void
conn_finished(emu_conn_t *c)
{
    pthread_mutex_lock(&conns_mu);
    for (size_t i = 0; i < nconns; i++)
        if (conns[i] == c) {
            conns[i] = conns[--nconns];
            break;
        }
    c->next_done = finished;
    finished = c;
    nthreads--;
    pthread_cond_broadcast(&conns_cv);
    pthread_mutex_unlock(&conns_mu);
}

/* Joins and frees the connection threads that have finished. */
static void
reap_finished(void)
{
    pthread_mutex_lock(&conns_mu);
    emu_conn_t *list = finished;
    finished = NULL;
    pthread_mutex_unlock(&conns_mu);
    while (list) {
        emu_conn_t *next = list->next_done;
        pthread_join(list->thread, NULL);
        free(list);
        list = next;
    }
}

static void
format_addr(const struct sockaddr *sa, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        snprintf(out, n, "%s:%d", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        snprintf(out, n, "[%s]:%d", host, port);
    } else {
        snprintf(out, n, "?");
    }
}

static void *
conn_thread(void *arg)
{
    emu_conn_t *c = arg;
    conn_register(c);
    if (tls_ctx) {
        c->ssl = SSL_new(tls_ctx);
        if (!c->ssl || !SSL_set_fd(c->ssl, c->fd) || SSL_accept(c->ssl) != 1) {
            unsigned long e = ERR_get_error();
            char buf[256] = "";
            if (e)
                ERR_error_string_n(e, buf, sizeof buf);
            logf_("connection %lld: TLS handshake failed: %s", (long long)c->id, buf);
            ERR_clear_error();
            goto done;
        }
        /* Replica-set hosts must be what the client dialled: SNI tells the name. */
        const char *sni = SSL_get_servername(c->ssl, TLSEXT_NAMETYPE_host_name);
        const char *colon = strrchr(c->local_addr, ':');
        if (sni && colon) {
            char port[16];
            snprintf(port, sizeof port, "%s", colon + 1);
            snprintf(c->local_addr, sizeof c->local_addr, "%s:%s", sni, port);
            for (char *p = c->local_addr; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
        }
    }
    serve_connection(c);
done:
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    ERR_clear_error();
    close(c->fd);
    conn_finished(c);
    return NULL;
}

static SSL_CTX *
tls_context(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, emu_config.tls_cert) != 1) {
        fprintf(stderr, "docdb-emu: cannot load TLS certificate '%s'\n", emu_config.tls_cert);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, emu_config.tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        fprintf(stderr,
                "docdb-emu: cannot load TLS key '%s' (or it does not match the "
                "certificate)\n",
                emu_config.tls_key);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int
open_listener(char *shown, size_t shown_len)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", emu_config.port);
    int rc = getaddrinfo(emu_config.bind, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "docdb-emu: cannot resolve bind address '%s': %s\n", emu_config.bind,
                gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0)
            break;
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        fprintf(stderr, "docdb-emu: cannot listen on %s:%d: %s\n", emu_config.bind, emu_config.port,
                strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    int actual = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                : ((struct sockaddr_in *)&ss)->sin_port);
    if (strchr(emu_config.bind, ':'))
        snprintf(shown, shown_len, "[%s]:%d", emu_config.bind, actual);
    else
        snprintf(shown, shown_len, "%s:%d", emu_config.bind, actual);
    return fd;
}

int
emu_server_run(void)
{
    char shown[300];
    int lfd = -1;
    int rc = 1;

    if (pipe2(stop_pipe, O_CLOEXEC) != 0) {
        perror("docdb-emu: pipe");
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (emu_config.tls_cert && !(tls_ctx = tls_context()))
        goto done;
    emu_store_init();
    if ((lfd = open_listener(shown, sizeof shown)) < 0)
        goto done;
    printf("listening on %s\n", shown);
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1024 * 1024);
    for (;;) {
        struct pollfd p[2] = {{lfd, POLLIN, 0}, {stop_pipe[0], POLLIN, 0}};
        if (poll(p, 2, 1000) < 0) {
            if (errno == EINTR)
                continue;
            perror("docdb-emu: poll");
            break;
        }
        if (p[1].revents)
            break;
        emu_cursor_reap(emu_now_ms(), (int64_t)emu_config.cursor_timeout_s * 1000);
        reap_finished();
        if (!(p[0].revents & POLLIN))
            continue;
        struct sockaddr_storage peer;
        socklen_t pl = sizeof peer;
        int fd = accept4(lfd, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
                logf_("accept: %s", strerror(errno));
            if (errno == EMFILE || errno == ENFILE)
                usleep(10000);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
        emu_conn_t *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->id = atomic_fetch_add(&next_conn_id, 1);
        struct sockaddr_storage local;
        socklen_t ll = sizeof local;
        if (getsockname(fd, (struct sockaddr *)&local, &ll) == 0)
            format_addr((struct sockaddr *)&local, c->local_addr, sizeof c->local_addr);
        pthread_mutex_lock(&conns_mu);
        nthreads++;
        pthread_mutex_unlock(&conns_mu);
        if (pthread_create(&c->thread, &attr, conn_thread, c) != 0) {
            pthread_mutex_lock(&conns_mu);
            nthreads--;
            pthread_mutex_unlock(&conns_mu);
            close(fd);
            free(c);
        }
    }
    pthread_attr_destroy(&attr);
    rc = 0;

    /* Stop: wake every connection thread and wait for them to finish. */
    pthread_mutex_lock(&conns_mu);
    stopping = true;
    for (size_t i = 0; i < nconns; i++)
        shutdown(conns[i]->fd, SHUT_RDWR);
    while (nthreads > 0)
        pthread_cond_wait(&conns_cv, &conns_mu);
    pthread_mutex_unlock(&conns_mu);
    reap_finished();
done:
    if (lfd >= 0)
        close(lfd);
    free(conns);
    emu_cursor_cleanup();
    emu_failpoint_cleanup();
    emu_store_cleanup();
    if (tls_ctx)
        SSL_CTX_free(tls_ctx);
    return rc;
}
