//! Image references in Docker's grammar, as SwarmKit checks them (with
//! distribution's `reference` package) before a spec is stored: a name no
//! engine could pull is refused at create, not when a node tries.

/// An image reference in Docker's grammar (distribution's `reference`
/// package, which SwarmKit parses it with): `[DOMAIN[:PORT]/]PATH[:TAG][@DIGEST]`,
/// the path lower-case components joined by `/`.
pub(crate) fn check(image: &str) -> Result<(), String> {
    let (rest, digest) = match image.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (image, None),
    };
    let (name, tag) = match rest.rfind(':') {
        Some(colon) if !rest[colon..].contains('/') => (&rest[..colon], Some(&rest[colon + 1..])),
        _ => (rest, None),
    };
    if name.is_empty() {
        return Err("names no repository".into());
    }
    if name.len() > 255 {
        return Err("the name is longer than 255 characters".into());
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    let has_domain = components.len() > 1
        && (first.contains(['.', ':']) || first == "localhost" || first.chars().any(|c| c.is_ascii_uppercase()));
    if has_domain {
        domain(first)?;
        components.remove(0);
    }
    for component in components {
        path_component(component)?;
    }
    if let Some(tag) = tag {
        let mut chars = tag.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !first_ok || tag.len() > 128 || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
            return Err(format!(
                "tag {tag:?} is not 1-128 letters, digits, '_', '.' or '-' (not starting with '.' or '-')"
            ));
        }
    }
    if let Some(digest) = digest {
        let valid = digest.split_once(':').is_some_and(|(algorithm, hex)| {
            algorithm.starts_with(|c: char| c.is_ascii_alphabetic())
                && algorithm
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_+.".contains(c))
                && hex.len() >= 32
                && hex.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !valid {
            return Err(format!("digest {digest:?} is not ALGORITHM:HEX"));
        }
    }
    Ok(())
}

/// A registry's `host[:port]`, the host a name or an IP address (IPv6 in
/// brackets, as in a URL).
fn domain(domain: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "registry {domain:?} is not HOST[:PORT] (an IPv6 HOST in brackets)"
        ))
    };
    let (host_ok, port) = match domain.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((address, port)) => (address.parse::<std::net::Ipv6Addr>().is_ok(), port),
            None => return bad(),
        },
        None => {
            let (host, port) = domain.find(':').map_or((domain, ""), |colon| domain.split_at(colon));
            (host.split('.').all(host_label), port)
        }
    };
    let port_ok = port.is_empty() || port.strip_prefix(':').is_some_and(|port| port.parse::<u16>().is_ok());
    if !host_ok || !port_ok {
        return bad();
    }
    Ok(())
}

/// One dot-separated label of a registry's host name.
fn host_label(label: &str) -> bool {
    !label.is_empty()
        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// A path component: lower-case letters and digits, in runs joined by one
/// separator (`.`, `_`, `__` or dashes).
fn path_component(component: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "{component:?} is not a path component: lower-case letters and digits joined by '.', '_', '__' or '-'"
        ))
    };
    let alphanumeric = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !component.starts_with(alphanumeric) || !component.ends_with(alphanumeric) {
        return bad();
    }
    let mut separator = String::new();
    for c in component.chars() {
        if alphanumeric(c) {
            let allowed = separator.is_empty()
                || separator == "."
                || separator == "_"
                || separator == "__"
                || separator.chars().all(|s| s == '-');
            if !allowed {
                return bad();
            }
            separator.clear();
        } else if ".-_".contains(c) {
            separator.push(c);
        } else {
            return bad();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_follow_docker_s_reference_grammar() {
        let digest = format!("sha256:{}", "a".repeat(64));
        for good in [
            "busybox".to_string(),
            "busybox:local".into(),
            "library/busybox:1.36".into(),
            "localhost:5000/app:v1".into(),
            format!("registry.example.com/team/app@{digest}"),
            format!("app:v2@{digest}"),
            "a__b/c.d/e-f--g:Tag_1.x-y".into(),
            "Registry.Example.com/app".into(),
            "[::1]:5000/app:v1".into(),
            "[fe80::1]/team/app".into(),
            "10.0.0.2:5000/app".into(),
        ] {
            assert_eq!(check(&good), Ok(()), "{good}");
        }
        for bad in [
            "Foo Bar",
            "UPPER",
            "app:",
            ":tag",
            "a/",
            "a..b",
            "a_-b",
            "-a",
            "app:-x",
            "app@sha256:short",
            "registry.example.com:port/app",
            "bad_host.com/app",
            "::1/app",
            "[::1/app",
            "[not-ipv6]/app",
            "[::1]5000/app",
            "[::1]:99999/app",
            "host:5000:1/app",
        ] {
            assert!(check(bad).is_err(), "{bad} accepted");
        }
    }
}
