//! The `Host` header, read strictly (RFC 9110 §7.2: `uri-host [ ":" port ]`). RFC 9112
//! §3.2 has a server answer 400 to a request without exactly one valid `Host`; the
//! WebSocket handshake and the dev endpoints do (`invalid_request`). Refused: userinfo
//! (`user@host`), a path, query or fragment, an empty host, a port that is not 0–65535,
//! percent-encoding and other characters outside letters, digits, `-`, `.` and `_` in a
//! name, and an IPv6 literal that does not parse.

use std::net::{IpAddr, Ipv6Addr};

use axum::http::{header, HeaderMap};

/// A valid `Host`: the name or address, lower-cased (IPv6 without brackets), and the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub port: Option<u16>,
}

impl Host {
    /// Parses one header value; `None` when it is not `host[:port]`.
    pub fn parse(value: &str) -> Option<Self> {
        let (name, port) = if let Some(rest) = value.strip_prefix('[') {
            let (literal, after) = rest.split_once(']')?;
            literal.parse::<Ipv6Addr>().ok()?;
            (literal, after)
        } else {
            let end = value.find(':').unwrap_or(value.len());
            let (name, after) = value.split_at(end);
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !valid {
                return None;
            }
            (name, after)
        };
        let port = match port {
            "" => None,
            text => {
                let digits = text.strip_prefix(':')?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some(digits.parse::<u16>().ok()?)
            }
        };
        Some(Self {
            name: name.to_ascii_lowercase(),
            port,
        })
    }

    /// The request's one `Host`, if it has exactly one and it is valid.
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut values = headers.get_all(header::HOST).iter();
        let value = values.next()?;
        if values.next().is_some() {
            return None;
        }
        Self::parse(value.to_str().ok()?)
    }

    /// Whether it names this machine: `localhost` (or a `.localhost` name), a 127.0.0.0/8
    /// address or `::1`.
    pub fn is_loopback(&self) -> bool {
        self.name == "localhost"
            || self.name.ends_with(".localhost")
            || self.name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::Host;

    #[test]
    fn reads_host_and_port() {
        for (value, name, port) in [
            ("localhost", "localhost", None),
            ("LocalHost:8080", "localhost", Some(8080)),
            ("127.0.0.1:80", "127.0.0.1", Some(80)),
            ("[::1]:8080", "::1", Some(8080)),
            ("[::1]", "::1", None),
            ("app.localhost:1", "app.localhost", Some(1)),
            ("my_host.example:65535", "my_host.example", Some(65535)),
        ] {
            assert_eq!(
                Host::parse(value),
                Some(Host {
                    name: name.into(),
                    port
                }),
                "{value}"
            );
        }
    }

    #[test]
    fn refuses_anything_but_host_and_port() {
        for value in [
            "",
            ":80",
            "user@127.0.0.1",
            "user@127.0.0.1:8080",
            "user:pw@localhost:1",
            "[::1]@evil.example",
            "evil@x.localhost",
            "localhost:80@evil.example",
            "127.0.0.1:",
            "127.0.0.1:8o",
            "127.0.0.1:65536",
            "127.0.0.1:+80",
            "127.0.0.1:80:81",
            "localhost/path",
            "localhost?q",
            "localhost#f",
            "local%68ost",
            "local host",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[evil.example]",
            "[127.0.0.1]",
        ] {
            assert_eq!(Host::parse(value), None, "{value:?}");
        }
    }

    #[test]
    fn loopback_names() {
        for value in ["localhost", "127.1.2.3:1", "[::1]:8080", "app.localhost"] {
            assert!(Host::parse(value).unwrap().is_loopback(), "{value}");
        }
        for value in [
            "evil.example",
            "10.0.0.1:80",
            "localhost.evil.example",
            "[2001:db8::1]:80",
            "0.0.0.0:8080",
        ] {
            assert!(!Host::parse(value).unwrap().is_loopback(), "{value}");
        }
    }
}
