/* addrclass.c -- the class of an IP address (see addrclass.h). */
#include "net/addrclass.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static enum net_addr_class v4_class(uint32_t a)
{
    if (a == 0xa9fea9fe || a == 0xa9feaa02 || a == 0x646464c8 || a == 0xa83f8110)
        return NET_ADDR_METADATA; /* 169.254.169.254, 169.254.170.2, 100.100.100.200, 168.63.129.16 */
    if ((a >> 24) == 127 || (a >> 24) == 0)
        return NET_ADDR_LOOPBACK;
    if ((a >> 16) == 0xa9fe)
        return NET_ADDR_LINKLOCAL;
    if ((a >> 24) == 10 || (a >> 20) == 0xac1 || (a >> 16) == 0xc0a8 || (a >> 22) == (0x64400000u >> 22))
        return NET_ADDR_PRIVATE;
    return NET_ADDR_PUBLIC;
}

static enum net_addr_class v6_class(const uint8_t *b)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const uint8_t ec2[16] = {0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54}; /* fd00:ec2::254 */
    static const uint8_t zero[15] = {0};
    if (memcmp(b, mapped, 12) == 0)
        return v4_class((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15]);
    if (memcmp(b, ec2, 16) == 0)
        return NET_ADDR_METADATA;
    if (memcmp(b, zero, 15) == 0 && b[15] <= 1)
        return NET_ADDR_LOOPBACK; /* ::1 and :: */
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
        return NET_ADDR_LINKLOCAL;
    if ((b[0] & 0xfe) == 0xfc)
        return NET_ADDR_PRIVATE;
    return NET_ADDR_PUBLIC;
}

enum net_addr_class net_addr_classify(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_class(ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return v6_class(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
    return NET_ADDR_PUBLIC;
}

const char *net_addr_class_name(enum net_addr_class c)
{
    static const char *const names[] = {"public", "loopback", "private", "link-local", "metadata"};
    return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "unknown";
}

enum net_addr_class net_addr_peer(int fd, char *addr, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    snprintf(addr, cap, "?");
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return NET_ADDR_PUBLIC;
    const void *a = ss.ss_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
                                             : (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
    if (!inet_ntop(ss.ss_family, a, addr, (socklen_t)cap))
        snprintf(addr, cap, "?");
    return net_addr_classify((const struct sockaddr *)&ss);
}
