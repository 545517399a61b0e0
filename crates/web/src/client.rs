//! Whose request this is: the address failure budgets and the log count a
//! request against.
//!
//! Behind a reverse proxy every connection comes from the proxy, so every
//! client would share one failure budget (one attacker's guesses would lock
//! everyone out). A proxy says whom it forwarded for in a header, but so can
//! anyone: the header is believed only from peers in
//! `server.trusted_proxies`, only the one header the proxies append to
//! (a proxy passes on whatever a client sent in the other), and only as far
//! back as the chain of trusted proxies goes. The client is the nearest
//! address in the chain that is not a trusted proxy; a client cannot move its
//! own budget by sending the header itself, because its entries are left of
//! the address its proxy appended.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::http::header::HeaderMap;
use actix_web::HttpRequest;
use ipnet::IpNet;

/// The header trusted proxies record the client in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, …` (nginx, Caddy, HAProxy, most
    /// load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239's `Forwarded: for=client, for=proxy1, …`.
    Forwarded,
}

impl ForwardedHeader {
    fn name(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

/// The networks whose connections may say whom they forward for, and in
/// which header. Register it as app data; without it, a request's client is
/// its peer.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// Trusts connections from any of `networks`, reading `X-Forwarded-For`.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self {
            networks,
            header: ForwardedHeader::default(),
        }
    }

    /// Reads `header` instead (and never the other).
    pub fn forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.header = header;
        self
    }

    /// Whether `address`, already [`canonical`], is a trusted proxy.
    fn trusts(&self, address: IpAddr) -> bool {
        self.networks.iter().any(|network| network.contains(&address))
    }

    /// The client of a connection from `peer` carrying `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let chain = forwarded_chain(headers, self.header);
        // Nearest hop first: the rightmost entry was appended by the proxy
        // that connected to us.
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                // An entry nobody can read ("unknown", an obfuscated name,
                // bytes that are not text): the proxy after it is as close to
                // the client as we can tell.
                None => return client,
                Some(address) => {
                    client = canonical(*address);
                    if !self.trusts(client) {
                        return client;
                    }
                }
            }
        }
        client
    }
}

/// The client address of `req`, by the app's [`TrustedProxies`] if it has
/// them; `None` when the connection has no peer address (a test request).
pub fn client_address(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(match req.app_data::<TrustedProxies>() {
        Some(trusted) => trusted.client(peer, req.headers()),
        None => canonical(peer),
    })
}

/// IPv4 addresses that arrive on an IPv6 socket as `::ffff:a.b.c.d` are the
/// IPv4 address, for trust and for budgets alike.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// The addresses the proxies recorded in `header`, farthest first; `None`
/// for an entry that is not an address. Several header lines are one list, in
/// order. Split on the raw bytes: a line with bytes that are not text (which a
/// client can put before the proxy's entry on the same line) must not hide
/// the entries after them.
fn forwarded_chain(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    headers
        .get_all(header.name())
        .flat_map(|line| line.as_bytes().split(|byte| *byte == b','))
        .map(|element| {
            let element = std::str::from_utf8(element).ok()?;
            match header {
                ForwardedHeader::XForwardedFor => node(element),
                // An element without `for=` says nothing about the client.
                ForwardedHeader::Forwarded => element.split(';').find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim().eq_ignore_ascii_case("for").then(|| node(value))
                })?,
            }
        })
        .collect()
}

/// One node of either header: `192.0.2.1`, `192.0.2.1:4711`,
/// `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn node(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(address) = IpAddr::from_str(text) {
        return Some(address);
    }
    if let Some(rest) = text.strip_prefix('[') {
        return IpAddr::from_str(rest.split(']').next()?).ok();
    }
    let (host, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    IpAddr::from_str(host).ok()
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn proxies(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(networks.iter().map(|n| n.parse().unwrap()).collect())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let spoofed = headers(&[("x-forwarded-for", "203.0.113.9"), ("forwarded", "for=203.0.113.9")]);
        assert_eq!(trusted.client(ip("198.51.100.7"), &spoofed), ip("198.51.100.7"));
        assert_eq!(
            TrustedProxies::default().client(ip("10.1.1.1"), &spoofed),
            ip("10.1.1.1")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client_it_forwarded_for() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1/32"]);
        let xff = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &xff), ip("203.0.113.9"));
        // No header: the proxy itself.
        assert_eq!(trusted.client(ip("10.0.0.2"), &HeaderMap::new()), ip("10.0.0.2"));
        // An IPv4 peer on an IPv6 socket is trusted as itself.
        assert_eq!(trusted.client(ip("::ffff:127.0.0.1"), &xff), ip("203.0.113.9"));
    }

    #[test]
    fn a_client_cannot_move_its_budget_by_sending_the_header_itself() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // The client sent "1.2.3.4"; the proxy appended the address it saw.
        let appended = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &appended), ip("203.0.113.9"));
        // Two proxies: the nearest untrusted hop is the client.
        let chained = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 10.0.0.5")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &chained), ip("203.0.113.9"));
        // Several header lines are one list, in order.
        let split = headers(&[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &split), ip("203.0.113.9"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        let both = headers(&[
            (
                "forwarded",
                r#"for=1.2.3.4, for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.2"#,
            ),
            ("x-forwarded-for", "198.51.100.1"),
        ]);
        // A client's own `Forwarded`, passed on by an X-Forwarded-For proxy,
        // changes nothing.
        let xff = proxies(&["10.0.0.0/8"]);
        assert_eq!(xff.client(ip("10.0.0.2"), &both), ip("198.51.100.1"));
        let only_forwarded = headers(&[("forwarded", "for=1.2.3.4")]);
        assert_eq!(xff.client(ip("10.0.0.2"), &only_forwarded), ip("10.0.0.2"));
        // And the other way round, per RFC 7239.
        let rfc = proxies(&["10.0.0.0/8"]).forwarded_header(ForwardedHeader::Forwarded);
        assert_eq!(rfc.client(ip("10.0.0.2"), &both), ip("2001:db8:cafe::17"));
        let port = headers(&[("forwarded", "For=203.0.113.9:8080")]);
        assert_eq!(rfc.client(ip("10.0.0.2"), &port), ip("203.0.113.9"));
    }

    #[test]
    fn an_unreadable_hop_stops_at_the_nearest_known_proxy() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let rfc = proxies(&["10.0.0.0/8"]).forwarded_header(ForwardedHeader::Forwarded);
        let unknown = headers(&[("forwarded", "for=unknown, for=10.0.0.7")]);
        assert_eq!(rfc.client(ip("10.0.0.2"), &unknown), ip("10.0.0.7"));
        // Bytes that are not text before the proxy's entry on the same line
        // hide nothing after them.
        let mut binary = HeaderMap::new();
        binary.append(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_bytes(b"\x80\xff, 203.0.113.51").unwrap(),
        );
        assert_eq!(trusted.client(ip("10.0.0.2"), &binary), ip("203.0.113.51"));
        let garbage = headers(&[("x-forwarded-for", "not an address")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &garbage), ip("10.0.0.2"));
        // Every hop trusted: the farthest one.
        let internal = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.5")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &internal), ip("10.9.9.9"));
    }
}
