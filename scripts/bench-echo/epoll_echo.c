// A minimal single-threaded epoll echo server: the baseline for RuntimeBenchmarks' echo ratio.
// Binds 127.0.0.1 on an ephemeral port, prints the port on stdout, echoes until killed.
// Build: cc -O2 -o /tmp/shoal-epoll-echo scripts/bench-echo/epoll_echo.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in address;
    memset(&address, 0, sizeof(address));
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof(address)) != 0 || listen(listener, 1024) != 0) {
        perror("bind/listen");
        return 1;
    }
    socklen_t length = sizeof(address);
    getsockname(listener, (struct sockaddr *)&address, &length);
    printf("%d\n", ntohs(address.sin_port));
    fflush(stdout);
    int epoll = epoll_create1(0);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
    struct epoll_event events[256];
    static char buffer[65536];
    for (;;) {
        int count = epoll_wait(epoll, events, 256, -1);
        for (int i = 0; i < count; i++) {
            int fd = events[i].data.fd;
            if (fd == listener) {
                int client;
                while ((client = accept4(listener, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    int one = 1;
                    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct epoll_event clientEvent = {.events = EPOLLIN, .data.fd = client};
                    epoll_ctl(epoll, EPOLL_CTL_ADD, client, &clientEvent);
                }
                continue;
            }
            ssize_t received = read(fd, buffer, sizeof(buffer));
            if (received <= 0) {
                if (received < 0 && errno == EAGAIN) continue;
                close(fd);
                continue;
            }
            ssize_t offset = 0;
            while (offset < received) {
                ssize_t sent = write(fd, buffer + offset, received - offset);
                if (sent < 0) {
                    if (errno == EAGAIN) continue;  // a benchmark peer always reads; spin briefly
                    break;
                }
                offset += sent;
            }
        }
    }
}
