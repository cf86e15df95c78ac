#ifndef PALISADE_CNFTNL_SHIM_H
#define PALISADE_CNFTNL_SHIM_H
/* glibc's netinet/in.h before any linux/ header: linux/libc-compat.h then skips the uapi
 * copies of in_addr & co., which otherwise clash with Glibc's in a Swift file importing both. */
#include <sys/socket.h>
#include <netinet/in.h>
/* netlink.h must come first: nfnetlink.h uses NLMSG_MIN_TYPE without including it. */
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/common.h>
#include <libnftnl/table.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <libnftnl/gen.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

/* Macros Swift cannot import. */
static inline size_t palisade_mnl_socket_buffer_size(void) { return MNL_SOCKET_BUFFER_SIZE; }
static inline size_t palisade_mnl_nlmsg_hdrlen(void) { return MNL_NLMSG_HDRLEN; }
static inline int palisade_errno(void) { return errno; }

/* setns(2) into a network namespace: glibc declares setns and CLONE_NEWNET only under
 * _GNU_SOURCE, which Swift's Glibc module is not built with. */
extern int setns(int fd, int nstype);
static inline int palisade_setns_net(int fd) { return setns(fd, 0x40000000 /* CLONE_NEWNET */); }

#endif
