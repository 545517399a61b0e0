//! Which IP addresses are on the public internet, for every outbound call
//! Keymint makes on a customer's say-so (webhook deliveries). One classifier,
//! judged at registration for literal addresses and again after DNS
//! resolution for names, so that no spelling of an internal address slips
//! through one check and not the other.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is a public unicast address: not loopback, private,
/// link-local, shared (CGNAT), multicast, broadcast, documentation,
/// benchmarking, reserved or unspecified (IANA's special-purpose registries).
///
/// IPv6 addresses that carry an IPv4 one are judged by the address they
/// carry, so `::ffff:127.0.0.1` is loopback wherever it appears:
/// IPv4-mapped (`::ffff:0:0/96`), NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`)
/// and Teredo (`2001::/32`, both its server and its obfuscated client).
/// IPv4-compatible (`::/96`, deprecated) and local-use NAT64
/// (`64:ff9b:1::/48`) are never public. Only global unicast (`2000::/3`) can be.
pub fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                     // "this network", 0.0.0.0
        || a == 10                               // private
        || a == 127                              // loopback
        || (a == 100 && (64..128).contains(&b))  // shared address space (CGNAT)
        || (a == 169 && b == 254)                // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))   // private
        || (a == 192 && b == 0 && c == 0)        // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)        // documentation
        || (a == 192 && b == 88 && c == 99)      // 6to4 relay anycast
        || (a == 192 && b == 168)                // private
        || (a == 198 && (b == 18 || b == 19))    // benchmarking
        || (a == 198 && b == 51 && c == 100)     // documentation
        || (a == 203 && b == 0 && c == 113)      // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn v4_at(segments: &[u16]) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(segments[0]) << 16) | u32::from(segments[1]))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    match s {
        // NAT64, well-known prefix: the IPv4 address is the last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => return is_public_v4(v4_at(&s[6..])),
        // 6to4: the IPv4 address follows the prefix.
        [0x2002, ..] => return is_public_v4(v4_at(&s[1..3])),
        // Teredo: the server's IPv4 address, then the client's, inverted.
        [0x2001, 0, ..] => {
            let client = Ipv4Addr::from(!((u32::from(s[6]) << 16) | u32::from(s[7])));
            return is_public_v4(v4_at(&s[2..4])) && is_public_v4(client);
        }
        _ => {}
    }
    let global_unicast = (s[0] & 0xe000) == 0x2000;
    let special = match s[0] {
        // IETF protocol assignments (2001::/23) and documentation (2001:db8::/32).
        0x2001 => s[1] < 0x0200 || s[1] == 0x0db8,
        // Documentation (3fff::/20).
        0x3fff => s[1] < 0x1000,
        // SRv6 segment identifiers (5f00::/16).
        0x5f00 => true,
        _ => false,
    };
    global_unicast && !special
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every way of writing an address that is not on the internet that the
    /// hardening rounds tried, and public ones that must stay callable.
    const TABLE: &[(&str, bool)] = &[
        ("127.0.0.1", false),
        ("127.255.255.254", false),
        ("10.1.2.3", false),
        ("172.16.0.1", false),
        ("172.31.255.255", false),
        ("192.168.1.1", false),
        ("169.254.169.254", false),
        ("100.64.0.1", false),
        ("0.0.0.0", false),
        ("0.1.2.3", false),
        ("255.255.255.255", false),
        ("224.0.0.1", false),
        ("240.0.0.1", false),
        ("192.0.0.8", false),
        ("192.0.2.1", false),
        ("198.18.0.1", false),
        ("198.51.100.7", false),
        ("203.0.113.9", false),
        ("192.88.99.1", false),
        ("::1", false),
        ("::", false),
        ("fc00::1", false),
        ("fd12:3456::1", false),
        ("fe80::1", false),
        ("fec0::1", false),
        ("ff02::1", false),
        ("100::1", false),
        ("2001:db8::1", false),
        ("3fff::1", false),
        ("2001:10::1", false),
        ("2001:20::1", false),
        ("::ffff:127.0.0.1", false),
        ("::ffff:169.254.169.254", false),
        ("::ffff:10.0.0.1", false),
        ("::127.0.0.1", false),
        ("::8.8.8.8", false),
        ("64:ff9b::7f00:1", false),
        ("64:ff9b::a9fe:a9fe", false),
        ("64:ff9b:1::808:808", false),
        ("2002:7f00:1::", false),
        ("2002:a00:1::1", false),
        ("2002:a9fe:a9fe::1", false),
        // Teredo: server 65.54.227.120 (public), client 127.0.0.1 inverted.
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", false),
        // Teredo: server 10.0.0.1, client 8.8.8.8 inverted.
        ("2001:0:a00:1:0:0:f7f7:f7f7", false),
        ("93.184.216.34", true),
        ("8.8.8.8", true),
        ("172.32.0.1", true),
        ("100.128.0.1", true),
        ("2606:4700::1111", true),
        ("2a00:1450:4001:80b::200e", true),
        ("::ffff:8.8.8.8", true),
        ("64:ff9b::808:808", true),
        ("2002:808:808::1", true),
        // Teredo: server 65.54.227.120, client 8.8.8.8 inverted.
        ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", true),
    ];

    #[test]
    fn the_table_is_classified_as_written() {
        for (text, public) in TABLE {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(is_public_address(ip), *public, "{text}");
        }
    }
}
