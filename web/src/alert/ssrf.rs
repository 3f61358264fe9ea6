//! The SSRF guard: webhook targets on loopback, private, link-local and other non-public
//! addresses are refused unless an allow-list CIDR (`--webhook-allow`) covers them. Literal IPs
//! are checked when the config loads; host names are resolved at delivery and the connection is
//! pinned to the checked addresses, so DNS cannot swap in a private address in between.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Allow-listed networks.
#[derive(Debug, Clone, Default)]
pub struct Allow {
    nets: Vec<IpNet>,
}

impl Allow {
    /// Parses CIDRs (`127.0.0.1/32`, `10.0.0.0/8`); a bare address means just that address.
    pub fn parse(cidrs: &[String]) -> Result<Self, String> {
        let nets = cidrs
            .iter()
            .map(|c| {
                c.parse::<IpNet>()
                    .or_else(|_| c.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("invalid --webhook-allow {c:?}: expected a CIDR like 10.0.0.0/8")
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    /// Checks one address.
    pub fn check(&self, ip: IpAddr) -> Result<(), String> {
        let ip = canonical(ip);
        match restricted(ip) {
            None => Ok(()),
            Some(_) if self.nets.iter().any(|n| n.contains(&ip)) => Ok(()),
            Some(why) => Err(format!(
                "webhook target {ip} is a {why} address; refused unless allow-listed with --webhook-allow CIDR (or [alerting] webhook_allow)"
            )),
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Why an address is not public, or `None` when it is.
fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(a) => restricted_v4(a),
        IpAddr::V6(a) => restricted_v6(a),
    }
}

fn restricted_v4(a: Ipv4Addr) -> Option<&'static str> {
    let o = a.octets();
    if a.is_loopback() {
        Some("loopback")
    } else if a.is_private() {
        Some("private")
    } else if a.is_link_local() {
        Some("link-local")
    } else if a.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (CGNAT)")
    } else if a.is_broadcast() || a.is_multicast() || o[0] >= 240 {
        Some("broadcast/multicast/reserved")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol")
    } else {
        None
    }
}

fn restricted_v6(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    if a.is_loopback() {
        Some("loopback")
    } else if a.is_unspecified() {
        Some("unspecified")
    } else if (s[0] & 0xfe00) == 0xfc00 {
        Some("private (unique local)")
    } else if (s[0] & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if a.is_multicast() {
        Some("multicast")
    } else if s[0] == 0x64 && s[1] == 0xff9b {
        // NAT64 embeds an IPv4 address in the last 32 bits.
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        restricted_v4(v4)
    } else {
        None
    }
}

/// A parsed webhook target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host as written (name or literal).
    pub host: String,
    /// Port (default 80).
    pub port: u16,
}

/// Parses the URL far enough to check it: `http://host[:port]/path`. (This build has no TLS.)
pub fn target(url: &str) -> Result<Target, String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("invalid webhook url {url:?}: {e}"))?;
    if u.scheme() != "http" {
        return Err(format!(
            "webhook url {url:?}: only http:// is supported by this build (no TLS)"
        ));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "webhook url {url:?}: credentials in the URL are not allowed; use hmac_secret"
        ));
    }
    let host = u
        .host_str()
        .ok_or_else(|| format!("webhook url {url:?} has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok(Target {
        port: u.port_or_known_default().unwrap_or(80),
        host,
    })
}

/// Checks a configured URL: its shape, and a literal IP against the allow-list.
pub fn check_config_url(url: &str, allow: &Allow) -> Result<(), String> {
    let t = target(url)?;
    if let Ok(ip) = t.host.parse::<IpAddr>() {
        allow.check(ip).map_err(|e| format!("{url}: {e}"))?;
    } else if t.host.eq_ignore_ascii_case("localhost") || t.host.ends_with(".localhost") {
        allow
            .check(IpAddr::V4(Ipv4Addr::LOCALHOST))
            .map_err(|e| format!("{url}: {e}"))?;
    }
    Ok(())
}

/// Resolves the target and checks every address; returns the addresses to connect to.
pub async fn resolve(url: &str, allow: &Allow) -> Result<(Target, Vec<SocketAddr>), String> {
    let t = target(url)?;
    let addrs: Vec<SocketAddr> = match t.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, t.port)],
        Err(_) => tokio::net::lookup_host((t.host.as_str(), t.port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", t.host))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("{} resolves to no address", t.host));
    }
    for a in &addrs {
        allow.check(a.ip()).map_err(|e| format!("{url}: {e}"))?;
    }
    Ok((t, addrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_non_public_range_is_refused() {
        let a = Allow::default();
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254", // cloud metadata
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1", // NAT64 of 10.0.0.1
        ] {
            let ip: IpAddr = ip.parse().expect(ip);
            assert!(a.check(ip).is_err(), "{ip} must be refused");
        }
        for ip in ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "172.32.0.1"] {
            let ip: IpAddr = ip.parse().expect(ip);
            assert!(a.check(ip).is_ok(), "{ip} is public");
        }
    }

    #[test]
    fn allow_list_opens_exactly_its_networks() {
        let a = Allow::parse(&["127.0.0.1/32".into(), "10.0.0.0/8".into()]).expect("parse");
        assert!(a.check("127.0.0.1".parse().expect("ip")).is_ok());
        assert!(a.check("::ffff:127.0.0.1".parse().expect("ip")).is_ok());
        assert!(a.check("127.0.0.2".parse().expect("ip")).is_err());
        assert!(a.check("10.9.9.9".parse().expect("ip")).is_ok());
        assert!(a.check("192.168.0.1".parse().expect("ip")).is_err());
        assert!(Allow::parse(&["nonsense".into()]).is_err());
    }

    #[test]
    fn config_urls_are_checked_for_shape_and_literal_addresses() {
        let a = Allow::default();
        assert!(check_config_url("http://hooks.example.com/x", &a).is_ok());
        for (u, needle) in [
            ("http://127.0.0.1:9/x", "loopback"),
            ("http://[::1]:9/x", "loopback"),
            ("http://localhost:9/x", "loopback"),
            ("http://169.254.169.254/latest", "link-local"),
            ("https://hooks.example.com/x", "only http"),
            ("http://user:pw@hooks.example.com/x", "credentials"),
            ("not a url", "invalid webhook url"),
        ] {
            let e = check_config_url(u, &a).expect_err(u);
            assert!(e.contains(needle), "{u}: {e}");
        }
    }
}
