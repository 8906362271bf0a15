/**
 * @file
 * Frames on the UDP ingest path: classify one received Ethernet frame, and answer ARP.
 *
 * mb_udp_classify() looks at a frame the way the rx lcore needs it: Ethernet, at most one
 * VLAN tag (802.1Q or 802.1ad), then IPv4 (header checksum checked, no IP fragments) and UDP
 * to the configured address and port. It returns where the datagram's payload starts, or
 * why the frame is dropped. An ARP request for the configured address is rewritten in place
 * into the reply, ready to transmit on the same port.
 *
 * IPv6 is not accepted (counted as other_protocol). UDP checksums are not checked here: the
 * rx path enables the NIC's UDP checksum offload where the port offers it and drops what it
 * flags bad (MB_UDP_DROP_BAD_CHECKSUM); kernel peers on the same host (veth) leave them to
 * offload, so a software check would refuse their datagrams.
 *
 * Pure functions over bytes: no allocation, no lock, no syscall. Any thread.
 */
#ifndef MB_UDP_WIRE_H
#define MB_UDP_WIRE_H

#include <stdint.h>

/** Why a frame was dropped; the names (mb_udp_drop_name()) are the metric's reason label. */
enum mb_udp_drop {
	MB_UDP_DROP_OTHER_PROTOCOL, /**< not IPv4/UDP or ARP (IPv6, LLDP, ICMP, TCP, ...) */
	MB_UDP_DROP_NOT_FOR_US,	    /**< IPv4 or ARP for another address */
	MB_UDP_DROP_WRONG_PORT,	    /**< UDP to another port */
	MB_UDP_DROP_MALFORMED_IP,   /**< bad IPv4 header (version, length, checksum) */
	MB_UDP_DROP_IP_FRAGMENT,    /**< IPv4 fragment: requests fragment themselves */
	MB_UDP_DROP_TRUNCATED,	    /**< frame shorter than its headers say */
	MB_UDP_DROP_GARBAGE,	    /**< datagram is not a request (no MBQ1 magic) */
	MB_UDP_DROP_BAD_HEADER,	    /**< request header breaks a rule (reported if it has an id) */
	MB_UDP_DROP_DUPLICATE,	    /**< bytes already received for that request */
	MB_UDP_DROP_CONFLICT,	    /**< header differs from the request's first datagram */
	MB_UDP_DROP_TOO_FRAGMENTED, /**< more holes than a request may have at once */
	MB_UDP_DROP_NO_SLOT,	    /**< max_requests reached (reported OVERLOADED) */
	MB_UDP_DROP_NO_BUFFER,	    /**< no payload buffer of the size (reported OVERLOADED) */
	MB_UDP_DROP_SOURCE,	    /**< udp.sources: its tenant may not send from that address */
	MB_UDP_DROP_BAD_CHECKSUM,   /**< the NIC found the UDP checksum wrong (rx offload) */
	MB_UDP_DROP_COUNT,
};

/** What to do with a frame. */
enum mb_udp_verdict {
	MB_UDP_DATAGRAM,  /**< a UDP datagram for us: see struct mb_udp_datagram */
	MB_UDP_ARP_REPLY, /**< the frame now holds an ARP reply: transmit it (same length) */
	MB_UDP_DROP,	  /**< drop it, for the reason given */
};

/** Our side of the port: where requests are sent. */
struct mb_udp_local {
	uint8_t mac[6];	  /**< the port's MAC address */
	uint32_t ip;	  /**< IPv4 address, network byte order */
	uint16_t port_be; /**< UDP port, network byte order */
};

/** A datagram for us. */
struct mb_udp_datagram {
	uint32_t src_ip;      /**< network byte order */
	uint16_t src_port_be; /**< network byte order */
	const uint8_t *data;  /**< the UDP payload (request header + slice) */
	uint32_t len;
};

/**
 * Classify the @p len bytes of @p frame (writable: an ARP request is turned into its
 * reply in place). Fills @p dg for MB_UDP_DATAGRAM, @p why for MB_UDP_DROP.
 */
enum mb_udp_verdict mb_udp_classify(uint8_t *frame, uint32_t len, const struct mb_udp_local *local,
				    struct mb_udp_datagram *dg, enum mb_udp_drop *why);

/** The metric label of a drop reason ("wrong_port", ...). */
const char *mb_udp_drop_name(enum mb_udp_drop why);

/**
 * Build a frame around a datagram, as a kernel peer would send it (tests, the benchmark's
 * capture): Ethernet (with a VLAN tag if @p vlan != 0), IPv4 with a valid checksum, UDP
 * from @p src_ip:@p src_port (host byte order) to @p local. Returns the frame length, or 0 if @p
 * cap is too small.
 */
uint32_t mb_udp_build_frame(uint8_t *out, uint32_t cap, const uint8_t src_mac[6], uint32_t src_ip,
			    uint16_t src_port, const struct mb_udp_local *local, uint16_t vlan,
			    const void *payload, uint32_t payload_len);

#endif /* MB_UDP_WIRE_H */
