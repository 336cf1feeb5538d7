/* addrclass.h -- which kind of network an IP address belongs to, for the HTTP client's rule
 * on redirects: a redirect may not lead from one class into a loopback, private, link-local
 * or metadata address (the classic server-side request forgery: a public origin answering
 * "302 to http://169.254.169.254/..." to reach a cloud's credentials service).
 */
#ifndef SNAP_NET_ADDRCLASS_H
#define SNAP_NET_ADDRCLASS_H

#include <stddef.h>

struct sockaddr;

enum net_addr_class {
    NET_ADDR_PUBLIC = 0, /* everything not below */
    NET_ADDR_LOOPBACK,   /* 127.0.0.0/8, 0.0.0.0/8, ::1, :: */
    NET_ADDR_PRIVATE,    /* 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier NAT), fc00::/7 */
    NET_ADDR_LINKLOCAL,  /* 169.254/16, fe80::/10 */
    NET_ADDR_METADATA,   /* cloud instance metadata: 169.254.169.254, 169.254.170.2,
                            100.100.100.200, 168.63.129.16, fd00:ec2::254 */
};

/* The class of an AF_INET or AF_INET6 address (IPv4-mapped IPv6 as its IPv4 address);
 * anything else is NET_ADDR_PUBLIC. */
enum net_addr_class net_addr_classify(const struct sockaddr *sa);
/* "public", "loopback", "private", "link-local", "metadata". */
const char *net_addr_class_name(enum net_addr_class c);
/* The class of a connected socket's peer, and that address as text (cap >= 48). */
enum net_addr_class net_addr_peer(int fd, char *addr, size_t cap);

#endif
