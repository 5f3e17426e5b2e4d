//! Client identification from `X-Forwarded-For`: never a panic; an untrusted peer is
//! always the client whatever the header says; behind a trusted proxy the client is the
//! peer or an address the header names.
#![no_main]

use std::net::IpAddr;

use ingest_api::order::front_door::TrustedProxies;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (bool, &str, &str)| {
    let (trusted_peer, first, second) = input;
    let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.1, 2001:db8::/32").expect("proxies");
    let peer: IpAddr = if trusted_peer {
        "10.1.2.3".parse().expect("ip")
    } else {
        "198.51.100.9".parse().expect("ip")
    };
    let client = proxies.client_ip(peer, [first, second].into_iter());
    if !trusted_peer {
        assert_eq!(client, peer, "an untrusted peer moved by its own header");
    } else if client != peer {
        // The client is one of the hops, written bare, as `[v6]` or `[v6]:port`, or as
        // `v4:port` (an independent reading of the forms the API accepts).
        let named = [first, second]
            .iter()
            .flat_map(|v| v.split(','))
            .any(|hop| {
                let hop = hop.trim();
                let bracketed = hop
                    .strip_prefix('[')
                    .and_then(|r| r.split_once(']'))
                    .filter(|(_, after)| {
                        after.is_empty()
                            || after
                                .strip_prefix(':')
                                .is_some_and(|p| p.parse::<u16>().is_ok())
                    })
                    .map(|(ip, _)| ip);
                let with_port = hop
                    .rsplit_once(':')
                    .filter(|(ip, port)| {
                        port.parse::<u16>().is_ok() && ip.parse::<std::net::Ipv4Addr>().is_ok()
                    })
                    .map(|(ip, _)| ip);
                [Some(hop), bracketed, with_port]
                    .into_iter()
                    .flatten()
                    .any(|form| form.parse::<IpAddr>().is_ok_and(|ip| ip == client))
            });
        assert!(named, "{client} is not in {first:?} / {second:?}");
    }
});
