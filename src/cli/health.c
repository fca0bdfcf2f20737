/* leadpulse health: asks a running worker's /healthz (or /readyz) over HTTP, for container
 * health checks in images without curl. Exit 0 when it answers 200, 1 otherwise. */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli/cli.h"
#include "leadpulse/config.h"

/* GET path from host:port; returns the status code, or -1 with a reason. */
static int http_get(const char *listen, const char *path, int timeout_ms, char *body,
                    size_t body_size, char *why, size_t why_size) {
    char host[256];
    const char *colon = strrchr(listen, ':');
    struct sockaddr_in addr;
    if (colon == NULL || (size_t)(colon - listen) >= sizeof(host)) {
        snprintf(why, why_size, "%s: expected host:port", listen);
        return -1;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(colon + 1));
    /* A worker listening on every address answers on loopback. */
    if (inet_pton(AF_INET, host[0] && strcmp(host, "0.0.0.0") != 0 ? host : "127.0.0.1",
                  &addr.sin_addr) != 1) {
        snprintf(why, why_size, "'%s' is not an IPv4 address", host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        snprintf(why, why_size, "cannot connect to %s: %m", listen);
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, listen);
    size_t got = 0;
    if (write(fd, req, (size_t)n) != n) {
        snprintf(why, why_size, "write: %m");
        close(fd);
        return -1;
    }
    struct pollfd pfd = {fd, POLLIN, 0};
    while (got + 1 < body_size && poll(&pfd, 1, timeout_ms) > 0) {
        ssize_t r = read(fd, body + got, body_size - 1 - got);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    body[got] = '\0';
    int code = 0;
    if (sscanf(body, "HTTP/%*s %d", &code) != 1) {
        snprintf(why, why_size, "no HTTP answer from %s within %d ms", listen, timeout_ms);
        return -1;
    }
    return code;
}

int lp_cmd_health(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"ready", no_argument, NULL, 'r'},
        {"listen", required_argument, NULL, 'l'}, {"timeout-ms", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
    const char *path = getenv("LEADPULSE_CONFIG");
    const char *listen = NULL;
    const char *what = "/healthz";
    int timeout_ms = 2000, c;
    char errstr[LP_ERRSTR], body[4096];
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:rl:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'r':
            what = "/readyz";
            break;
        case 'l':
            listen = optarg;
            break;
        case 't':
            timeout_ms = atoi(optarg);
            break;
        default:
            fprintf(c == 'h' ? stdout : stderr,
                    "usage: leadpulse health [--config FILE] [--listen HOST:PORT] [--ready] "
                    "[--timeout-ms N]\n\n"
                    "Asks the worker's /healthz (--ready: /readyz) at http.listen of the\n"
                    "configuration (or --listen); exit 0 when it answers 200, 1 otherwise.\n");
            return c == 'h' ? 0 : 2;
        }
    }
    lp_config_t *config = NULL;
    if (listen == NULL) {
        config = lp_config_load(path, errstr, sizeof(errstr));
        if (config == NULL) {
            fprintf(stderr, "leadpulse health: %s\n", errstr);
            return 1;
        }
        listen = config->http_listen;
        if (listen[0] == '\0') {
            fprintf(stderr, "leadpulse health: http.listen is off\n");
            lp_config_destroy(config);
            return 1;
        }
    }
    int code = http_get(listen, what, timeout_ms, body, sizeof(body), errstr, sizeof(errstr));
    if (code < 0) {
        fprintf(stderr, "leadpulse health: %s\n", errstr);
    } else {
        const char *text = strstr(body, "\r\n\r\n");
        fprintf(code == 200 ? stdout : stderr, "%d %s", code, text != NULL ? text + 4 : "\n");
    }
    lp_config_destroy(config);
    return code == 200 ? 0 : 1;
}
