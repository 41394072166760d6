//! Flag values in the forms `docker service` takes them: durations as Go
//! writes them (`1m30s`, `1.5s`, `500ms`), memory sizes (`512m`, `1g`), CPU
//! counts (`0.5`), ports (`8080:80/udp` or `published=8080,target=80`),
//! mounts (`type=bind,source=/a,target=/b,readonly`) and placement
//! preferences (`spread=node.labels.zone`). Each parser is a clap value
//! parser: a bad value is refused before anything is sent, with the flag
//! named by clap and the reason given here.

use swarm_proto::v1::{Mount, PlacementPreference, PortConfig, SpreadOver, mount, port_config};

/// Refuses a value of `what` that starts with a hyphen: a negative number,
/// or (these flags take values that start with one, so that a negative
/// one is told so) the next flag, the value having been left out.
fn refuse_hyphen(text: &str, what: &str) -> Result<(), String> {
    if !text.trim_start().starts_with('-') {
        Ok(())
    } else if is_a_flag(text) {
        Err(format!("{what} is missing: the next word is the flag {text:?}"))
    } else {
        Err(format!("{text:?}: {what} must not be negative"))
    }
}

/// Whether `word` is a flag rather than a negative number (`-5`, `-.5s`).
pub fn is_a_flag(word: &str) -> bool {
    word.trim_start()
        .strip_prefix('-')
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
}

/// `SERVICE=REPLICAS`, as docker's `service scale` takes it (a service's
/// name holds no `=`).
pub fn scale(text: &str) -> Result<(String, u64), String> {
    let bad = || format!("{text:?} is not SERVICE=REPLICAS (for example web=3)");
    let (service, replicas) = text.split_once('=').ok_or_else(bad)?;
    let service = service.trim();
    if service.is_empty() {
        return Err(bad());
    }
    let replicas = count(replicas).map_err(|why| format!("{text:?}: {why}"))?;
    Ok((service.to_string(), replicas))
}

/// A count of tasks, attempts or the like: a whole number, 0 or more.
pub fn count(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.starts_with('-') && text[1..].starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("{text:?}: a count must not be negative"));
    }
    text.parse()
        .map_err(|_| format!("{text:?} is not a count (a whole number, 0 or more)"))
}

/// An environment entry as docker takes it: `KEY=VALUE`, or `KEY` alone
/// for the value it has in swarmctl's own environment.
pub fn env_entry(text: &str) -> Result<String, String> {
    if text.is_empty() || text.starts_with('=') {
        return Err(format!(
            "{text:?} names no variable: write KEY=VALUE, or KEY for its value here"
        ));
    }
    if text.contains('=') {
        return Ok(text.to_string());
    }
    match std::env::var(text) {
        Ok(value) => Ok(format!("{text}={value}")),
        Err(std::env::VarError::NotPresent) => {
            Err(format!("{text:?} has no =VALUE and is not set in this environment"))
        }
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{text:?}: its value here is not UTF-8")),
    }
}

/// A Go duration (`300ms`, `1.5h`, `2h45m`; units ns, us, µs, ms, s, m, h;
/// a bare `0` too), not negative.
pub fn duration(text: &str) -> Result<prost_types::Duration, String> {
    let bad = || format!("{text:?} is not a duration such as 10s, 1m30s or 500ms");
    if text == "0" {
        return Ok(prost_types::Duration::default());
    }
    refuse_hyphen(text, "a duration")?;
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return Err(bad());
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(bad()),
        };
        nanos = nanos
            .checked_add(decimal(number, unit_nanos).ok_or_else(bad)?)
            .ok_or_else(|| format!("{text:?} is too long"))?;
        rest = after;
    }
    let seconds = i64::try_from(nanos / 1_000_000_000).map_err(|_| format!("{text:?} is too long"))?;
    Ok(prost_types::Duration {
        seconds,
        nanos: (nanos % 1_000_000_000) as i32,
    })
}

/// `number` (digits with at most one dot) times `unit`, rounded down;
/// `None` if it is not such a number or overflows.
fn decimal(number: &str, unit: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    if !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // Digits past the 18th change nothing the units here can hold.
    let fraction = &fraction[..fraction.len().min(18)];
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let numerator: u128 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
    let denominator = 10u128.pow(fraction.len() as u32);
    whole.checked_mul(unit)?.checked_add(numerator * unit / denominator)
}

/// A memory size in bytes, as Docker's `RAMInBytes`: a number with an
/// optional binary unit, `b`, `k`, `m`, `g`, `t` or `p` (`kb`, `kib`,
/// `KiB` alike): `512m`, `1.5g`, `4096`.
pub fn memory_bytes(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a size such as 512m, 1g or 4096 (bytes)");
    refuse_hyphen(text, "a size")?;
    let lower = text.trim().to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let power = match unit {
        "" => 0,
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        _ => return Err(bad()),
    };
    let bytes = decimal(number, 1024u128.pow(power)).ok_or_else(bad)?;
    // 0 says "no limit"; a size that only rounds down to it was meant as
    // one.
    if bytes == 0 && number.contains(|c: char| ('1'..='9').contains(&c)) {
        return Err(format!("{text:?} is less than one byte"));
    }
    i64::try_from(bytes).map_err(|_| format!("{text:?} is too large"))
}

/// A CPU count (`0.5`, `2`) in billionths of a CPU.
pub fn nano_cpus(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?} is not a number of CPUs such as 0.5 or 2");
    refuse_hyphen(text, "a number of CPUs")?;
    if text.split_once('.').is_some_and(|(_, fraction)| fraction.len() > 9) {
        return Err(format!("{text:?}: CPUs take at most 9 decimal places"));
    }
    let nanos = decimal(text.trim(), 1_000_000_000).ok_or_else(bad)?;
    i64::try_from(nanos).map_err(|_| format!("{text:?} is too large"))
}

/// The ports one `--publish` names: one, or a range in the short form
/// (`8080-8081:80-81`, or `80-81` for the cluster to pick), as docker's.
#[derive(Clone, Debug)]
pub struct Ports(pub Vec<PortConfig>);

/// The most ports one range may publish: docker has no limit, but a range
/// of thousands by mistake would make a spec no one meant.
const MAX_RANGE: u32 = 1024;

/// `--publish` and `--publish-add`: a port as [`port`] reads it, or a
/// range of them in the short form, the published range as long as the
/// target range (or absent).
pub fn ports(text: &str) -> Result<Ports, String> {
    let short_range = !text.contains('=') && text.split('/').next().is_some_and(|ports| ports.contains('-'));
    if !short_range {
        return port(text).map(|port| Ports(vec![port]));
    }
    let (ports, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let protocol = protocol(proto)?;
    let (published, target) = match ports.split_once(':') {
        Some((published, target)) => (Some(port_range(published)?), port_range(target)?),
        None => (None, port_range(ports)?),
    };
    let count = target.1 - target.0 + 1;
    if let Some(published) = published
        && published.1 - published.0 + 1 != count
    {
        return Err(format!(
            "{text:?}: the published range holds {} ports and the target range {count}",
            published.1 - published.0 + 1
        ));
    }
    if count > MAX_RANGE {
        return Err(format!("{text:?}: a range publishes at most {MAX_RANGE} ports"));
    }
    let configs = (0..count)
        .map(|offset| {
            let mut port = PortConfig {
                target_port: target.0 + offset,
                published_port: published.map_or(0, |published| published.0 + offset),
                ..Default::default()
            };
            port.set_protocol(protocol);
            port
        })
        .collect();
    Ok(Ports(configs))
}

/// `FIRST-LAST` (or one port), first no greater than last.
fn port_range(text: &str) -> Result<(u32, u32), String> {
    let (first, last) = text.split_once('-').unwrap_or((text, text));
    let (first, last) = (port_number(first)?, port_number(last)?);
    if first > last || first == 0 {
        return Err(format!("{text:?} is not a port range such as 8080-8081"));
    }
    Ok((first, last))
}

/// A published port: `[PUBLISHED:]TARGET[/PROTOCOL]`, or the long form
/// `published=8080,target=80,protocol=udp,mode=host` (protocol tcp, udp or
/// sctp; mode ingress or host). With no published port the cluster picks
/// one.
pub fn port(text: &str) -> Result<PortConfig, String> {
    let mut port = PortConfig::default();
    if text.contains('=') {
        for (key, value) in options(text)? {
            match key {
                "published" => port.published_port = port_number(value)?,
                "target" => port.target_port = port_number(value)?,
                "protocol" => port.protocol = protocol(value)?.into(),
                "mode" => {
                    port.publish_mode = match value {
                        "ingress" => port_config::PublishMode::Ingress,
                        "host" => port_config::PublishMode::Host,
                        _ => return Err(format!("{value:?} is not a publish mode: ingress or host")),
                    }
                    .into()
                }
                _ => {
                    return Err(format!(
                        "{key:?} is not a port option: published, target, protocol or mode"
                    ));
                }
            }
        }
    } else {
        let (ports, proto) = text.split_once('/').unwrap_or((text, "tcp"));
        port.protocol = protocol(proto)?.into();
        // docker run's HOST_IP:PUBLISHED:TARGET: a service publishes on
        // every node's addresses (swarm mode refuses it too).
        if ports.matches(':').count() > 1 || ports.starts_with('[') {
            return Err(format!(
                "{text:?}: a service's port cannot name a host address; it is published on every node \
                 (PUBLISHED:TARGET, or mode=host to publish on the task's node only)"
            ));
        }
        match ports.split_once(':') {
            Some((published, target)) => {
                port.published_port = port_number(published)?;
                port.target_port = port_number(target)?;
            }
            None => port.target_port = port_number(ports)?,
        }
    }
    if port.target_port == 0 {
        return Err(format!("{text:?} names no target port"));
    }
    Ok(port)
}

fn port_number(text: &str) -> Result<u32, String> {
    match text.parse::<u16>() {
        Ok(port) => Ok(u32::from(port)),
        Err(_) => Err(format!(
            "{text:?} is not a port number (0-65535; a published 0 lets the cluster pick)"
        )),
    }
}

fn protocol(text: &str) -> Result<port_config::Protocol, String> {
    match text.to_ascii_lowercase().as_str() {
        "tcp" => Ok(port_config::Protocol::Tcp),
        "udp" => Ok(port_config::Protocol::Udp),
        "sctp" => Ok(port_config::Protocol::Sctp),
        _ => Err(format!("{text:?} is not a protocol: tcp, udp or sctp")),
    }
}

/// A mount: `type=bind|volume|tmpfs,source=...,target=...[,readonly]`
/// (also `src`, `dst`, `destination`, `ro`, `readonly=true|false`), as
/// `docker service create --mount` takes it. The type defaults to volume.
pub fn mount(text: &str) -> Result<Mount, String> {
    let mut mount = Mount {
        r#type: mount::Type::Volume.into(),
        ..Default::default()
    };
    for (key, value) in options(text)? {
        match key.to_ascii_lowercase().as_str() {
            "type" => {
                mount.r#type = match value.to_ascii_lowercase().as_str() {
                    "bind" => mount::Type::Bind,
                    "volume" => mount::Type::Volume,
                    "tmpfs" => mount::Type::Tmpfs,
                    _ => return Err(format!("{value:?} is not a mount type: bind, volume or tmpfs")),
                }
                .into()
            }
            "source" | "src" => mount.source = value.to_string(),
            "target" | "dst" | "destination" => mount.target = swarm_proto::clean_path(value),
            "readonly" | "ro" => {
                // Go's `ParseBool`, as Docker reads it.
                mount.read_only = match value {
                    "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
                    _ => return Err(format!("{key}={value:?}: true or false")),
                }
            }
            _ => {
                return Err(format!(
                    "{key:?} is not a mount option: type, source, target or readonly"
                ));
            }
        }
    }
    if mount.target.is_empty() {
        return Err(format!("{text:?} names no target"));
    }
    Ok(mount)
}

/// A placement preference: `spread=node.labels.zone`.
pub fn placement_preference(text: &str) -> Result<PlacementPreference, String> {
    match text.split_once('=') {
        Some(("spread", descriptor)) if !descriptor.is_empty() => Ok(PlacementPreference {
            spread: Some(SpreadOver {
                spread_descriptor: descriptor.to_string(),
            }),
        }),
        _ => Err(format!("{text:?} is not a preference such as spread=node.labels.zone")),
    }
}

/// `key=value,key=value,flag` as (key, value) pairs; a bare word has an
/// empty value.
fn options(text: &str) -> Result<Vec<(&str, &str)>, String> {
    text.split(',')
        .map(|part| {
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            if key.trim().is_empty() {
                return Err(format!("{text:?}: an option names no key"));
            }
            Ok((key.trim(), value.trim()))
        })
        .collect()
}

/// Words as a POSIX shell splits a line: `sh -c 'echo hi'` is three. An
/// empty line is no words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Words(pub Vec<String>);

/// Splits `line` into [`Words`].
pub fn words(line: &str) -> Result<Words, String> {
    shlex::split(line)
        .map(Words)
        .ok_or_else(|| format!("{line:?} has an unclosed quote or a trailing backslash"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_range_publishes_each_port_of_it() {
        let pairs = |text: &str| {
            ports(text).map(|ports| {
                ports
                    .0
                    .iter()
                    .map(|p| (p.published_port, p.target_port))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(pairs("8080-8082:80-82"), Ok(vec![(8080, 80), (8081, 81), (8082, 82)]));
        assert_eq!(pairs("80-81"), Ok(vec![(0, 80), (0, 81)]));
        assert_eq!(pairs("8080:80"), Ok(vec![(8080, 80)]));
        let udp = ports("53-54/udp").expect("a udp range");
        assert!(udp.0.iter().all(|port| port.protocol() == port_config::Protocol::Udp));
        for (bad, says) in [
            ("8080-8081:80-82", "holds 2 ports and the target range 3"),
            ("81-80", "not a port range"),
            ("0-5", "not a port range"),
            ("1-2000", "at most 1024"),
            ("80-x", "not a port number"),
        ] {
            let err = ports(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn an_env_entry_names_a_variable() {
        assert_eq!(env_entry("A=1").as_deref(), Ok("A=1"));
        assert_eq!(env_entry("A=").as_deref(), Ok("A="), "an empty value is a value");
        for bad in ["", "=1"] {
            let err = env_entry(bad).expect_err(bad);
            assert!(err.contains("names no variable"), "{err}");
        }
    }

    fn seconds_and_nanos(text: &str) -> (i64, i32) {
        let duration = duration(text).unwrap();
        (duration.seconds, duration.nanos)
    }

    #[test]
    fn durations_read_as_go_writes_them() {
        assert_eq!(seconds_and_nanos("0"), (0, 0));
        assert_eq!(seconds_and_nanos("10s"), (10, 0));
        assert_eq!(seconds_and_nanos("1m30s"), (90, 0));
        assert_eq!(seconds_and_nanos("1.5s"), (1, 500_000_000));
        assert_eq!(seconds_and_nanos("500ms"), (0, 500_000_000));
        assert_eq!(seconds_and_nanos("2h45m"), (9_900, 0));
        assert_eq!(seconds_and_nanos("1us"), (0, 1_000));
        assert_eq!(seconds_and_nanos(".5m"), (30, 0));
        assert_eq!(seconds_and_nanos("1.0000000000000000001s"), (1, 0));
        for bad in [
            "",
            "10",
            "s",
            "1x",
            "1.2.3s",
            "-1s",
            "1 s",
            "1s2",
            "99999999999999999999999h",
        ] {
            assert!(duration(bad).is_err(), "{bad:?} accepted");
        }
        assert!(duration("-1s").unwrap_err().contains("negative"));
        assert_eq!(
            duration("--replicas").unwrap_err(),
            "a duration is missing: the next word is the flag \"--replicas\""
        );
    }

    #[test]
    fn counts_and_scales_say_what_is_wrong() {
        assert_eq!(count("3"), Ok(3));
        assert_eq!(count("-3").unwrap_err(), "\"-3\": a count must not be negative");
        assert!(count("3x").unwrap_err().contains("is not a count"));
        assert_eq!(scale(" web =3"), Ok(("web".to_string(), 3)));
        for bad in ["web", "web=", "=3", "web=3=4", "web=-1"] {
            assert!(scale(bad).is_err(), "{bad:?} accepted");
        }
        assert!(scale("web=-1").unwrap_err().contains("must not be negative"));
    }

    #[test]
    fn memory_sizes_use_binary_units() {
        assert_eq!(memory_bytes("4096"), Ok(4096));
        assert_eq!(memory_bytes("512m"), Ok(512 << 20));
        assert_eq!(memory_bytes("1g"), Ok(1 << 30));
        assert_eq!(memory_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(memory_bytes("1.5k"), Ok(1536));
        assert_eq!(memory_bytes("2 MB"), Ok(2 << 20));
        for bad in ["", "m", "1x", "-1m", "1..5m"] {
            assert!(memory_bytes(bad).is_err(), "{bad:?} accepted");
        }
        assert!(memory_bytes("99999999p").unwrap_err().contains("too large"));
        assert!(memory_bytes("-5m").unwrap_err().contains("must not be negative"));
        // 0 is "no limit"; a fraction of a byte is not.
        assert_eq!(memory_bytes("0"), Ok(0));
        assert_eq!(memory_bytes("0.0g"), Ok(0));
        assert!(memory_bytes("0.1").unwrap_err().contains("less than one byte"));
    }

    #[test]
    fn cpus_are_exact_in_billionths() {
        assert_eq!(nano_cpus("0.5"), Ok(500_000_000));
        assert_eq!(nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(nano_cpus("0.000000001"), Ok(1));
        for bad in ["", "a", "-1", "0.0000000001", "1.2.3"] {
            assert!(nano_cpus(bad).is_err(), "{bad:?} accepted");
        }
        assert!(nano_cpus("-0.5").unwrap_err().contains("must not be negative"));
    }

    #[test]
    fn ports_take_the_short_and_the_long_form() {
        assert!(
            port("127.0.0.1:8080:80")
                .unwrap_err()
                .contains("cannot name a host address")
        );
        assert!(
            port("[::1]:8080:80")
                .unwrap_err()
                .contains("cannot name a host address")
        );
        let short = port("8080:80/udp").unwrap();
        assert_eq!((short.published_port, short.target_port), (8080, 80));
        assert_eq!(short.protocol(), port_config::Protocol::Udp);
        let target_only = port("80").unwrap();
        assert_eq!((target_only.published_port, target_only.target_port), (0, 80));
        assert_eq!(target_only.protocol(), port_config::Protocol::Tcp);
        let long = port("published=8443,target=443,mode=host").unwrap();
        assert_eq!((long.published_port, long.target_port), (8443, 443));
        assert_eq!(long.publish_mode(), port_config::PublishMode::Host);
        for bad in [
            "",
            "x:80",
            "80:70000",
            "8080:80/icmp",
            "published=80",
            "target=80,colour=red",
        ] {
            assert!(port(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mounts_take_docker_s_options() {
        let bind = mount("type=bind,source=/srv/data,target=/data,readonly").unwrap();
        assert_eq!(bind.r#type(), mount::Type::Bind);
        assert_eq!(
            (bind.source.as_str(), bind.target.as_str(), bind.read_only),
            ("/srv/data", "/data", true)
        );
        let volume = mount("src=cache,dst=/cache,ro=False").unwrap();
        assert_eq!(
            mount("Type=BIND,source=/a,target=/b").unwrap().r#type(),
            mount::Type::Bind
        );
        assert_eq!(volume.r#type(), mount::Type::Volume);
        assert!(!volume.read_only);
        for bad in [
            "source=/a",
            "type=nfs,target=/a",
            "target=/a,readonly=maybe",
            "=x,target=/a",
        ] {
            assert!(mount(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn preferences_spread_over_a_descriptor() {
        let preference = placement_preference("spread=node.labels.zone").unwrap();
        assert_eq!(preference.spread.unwrap().spread_descriptor, "node.labels.zone");
        for bad in ["spread=", "pack=node.labels.zone", "node.labels.zone"] {
            assert!(placement_preference(bad).is_err(), "{bad:?} accepted");
        }
    }
}
